/**
 * A fake apiserver on loopback for kexec's tests: pods from a table, and the exec, attach and
 * portforward subresources over WebSocket and/or SPDY (each can be refused with a 400, as an old
 * server or a proxy that splices only one kind of upgrade would).
 *
 * Remotecommand sessions (shared/remotecommand and shared/spdy server ends): stdout gets
 * `<subresource>: <command or "attached">`, stdin is echoed as `stdin: …` until it ends, then the
 * Status (`exit N` exits N). Port-forward (shared/portforward's WebSocket server end, and a SPDY
 * server written here as the kubelet's httpstream.go handler does it) dials 127.0.0.1:PORT for
 * real and splices; a refused dial goes on the error stream as the kubelet words it.
 */
import http from 'node:http';
import net from 'node:net';
import type { Duplex, Writable } from 'node:stream';
import { failureStatus, writeStatusToSocket, type Status } from '../../shared/status.js';
import { acceptChannelSession } from '../../shared/remotecommand/websocket-server.js';
import type { RemoteCommandSession } from '../../shared/remotecommand/session.js';
import { acceptSpdySession } from '../../shared/remotecommand/spdy-server.js';
import { acceptSpdyPortForward } from '../../shared/portforward/spdy-server.js';
import { headerValue } from '../../shared/spdy/header-block.js';
import { isSpdyUpgrade } from '../../shared/spdy/upgrade.js';
import { parsePortsQuery } from '../../shared/portforward/protocol.js';
import { acceptPortForwardSession, type PortStreams } from '../../shared/portforward/websocket-server.js';
import { closeServer, listen } from '../../shared/test-support/loopback.js';

export interface SeenRequest {
  method: string;
  url: string;
  upgrade?: string;
  /** The WebSocket subprotocols offered (Sec-WebSocket-Protocol). */
  protocols?: string;
  auth?: string;
}

export interface FakeApiserverOptions {
  token: string;
  /** Which upgrades are accepted (the other kind is refused with 400). */
  accept: { websocket: boolean; spdy: boolean };
}

export interface FakePod {
  name: string;
  phase?: string;
  containers?: { name: string; tty?: boolean; stdin?: boolean }[];
}

export interface FakeApiserver {
  url: string;
  port: number;
  seen: SeenRequest[];
  pods: Map<string, FakePod>;
  accept: { websocket: boolean; spdy: boolean };
  /** SPDY port-forward connections opened so far, and streams seen on them (headers). */
  spdyPortForward: { connections: number; streams: Record<string, string>[]; sockets: Set<Duplex> };
  close(): Promise<void>;
}

export async function startFakeApiserver(opts: FakeApiserverOptions): Promise<FakeApiserver> {
  const seen: SeenRequest[] = [];
  const pods = new Map<string, FakePod>();
  const sockets = new Set<Duplex>();
  const spdyPortForward = {
    connections: 0,
    streams: [] as Record<string, string>[],
    sockets: new Set<Duplex>(),
  };
  const accept = { ...opts.accept };
  const authorized = (req: http.IncomingMessage) => req.headers.authorization === `Bearer ${opts.token}`;

  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', auth: req.headers.authorization });
    const send = (code: number, body: unknown) => {
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (!authorized(req)) return send(401, failureStatus(401, 'Unauthorized'));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)$/.exec(req.url ?? '');
    const pod = m && m[1] === 'default' ? pods.get(m[2]) : undefined;
    if (!m || !pod) {
      const name = m?.[2] ?? '';
      return send(404, failureStatus(404, `pods "${name}" not found`, 'NotFound', { name, kind: 'pods' }));
    }
    send(200, {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name: pod.name, namespace: 'default' },
      spec: { nodeName: 'node-1', containers: pod.containers ?? [{ name: 'demo' }] },
      status: { phase: pod.phase ?? 'Running' },
    });
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const spdy = isSpdyUpgrade(req.headers);
    seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      upgrade: String(req.headers.upgrade ?? ''),
      protocols: req.headers['sec-websocket-protocol'],
      auth: req.headers.authorization,
    });
    if (!authorized(req)) return writeStatusToSocket(socket, failureStatus(401, 'Unauthorized'));
    if (spdy ? !accept.spdy : !accept.websocket) {
      return writeStatusToSocket(
        socket,
        failureStatus(400, `unable to upgrade: ${spdy ? 'SPDY' : 'WebSocket'} is not served here`),
      );
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/namespaces\/default\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(url.pathname);
    if (!m || !pods.has(m[1])) return writeStatusToSocket(socket, failureStatus(404, 'pod not found'));
    const [, pod, sub] = m;
    if (sub === 'portforward') {
      if (spdy) serveSpdyPortForward(req, socket, head, pod, spdyPortForward);
      else serveWebSocketPortForward(req, socket, head, url, pod);
      return;
    }
    const q = url.searchParams;
    const streams = {
      stdin: q.get('stdin') === 'true',
      stdout: q.get('stdout') === 'true',
      stderr: q.get('stderr') === 'true',
      tty: q.get('tty') === 'true',
    };
    const words = sub === 'exec' ? q.getAll('command') : ['attached'];
    if (spdy) {
      acceptSpdySession(req, socket, head, streams).then(
        (s) => s && runSession(s, sub, words),
        () => socket.destroy(),
      );
    } else {
      const s = acceptChannelSession(req, socket, head, streams);
      if (s) runSession(s, sub, words);
    }
  });

  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    seen,
    pods,
    accept,
    spdyPortForward,
    close: () => closeServer(server, sockets as Set<net.Socket>),
  };
}

function exitStatus(code: number): Status {
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: exit status ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

function runSession(s: RemoteCommandSession, sub: string, words: string[]): void {
  const code = words[0] === 'exit' ? Number(words[1]) : 0;
  s.stdout?.write(`${sub}: ${words.join(' ')}\n`);
  const finish = () => void s.finish(exitStatus(code));
  if (!s.stdin) return finish();
  s.stdin.on('data', (c: Buffer) => s.stdout?.write(`stdin: ${c.toString()}`));
  s.stdin.once('end', finish);
}

/** Dials the port on loopback and splices; a failed dial is reported as the kubelet does. */
function forwardTo(port: number, pod: string, data: Duplex, error: Writable, done: () => void): void {
  const target = net.connect({ host: '127.0.0.1', port });
  let connected = false;
  target.once('connect', () => {
    connected = true;
    data.pipe(target);
    target.pipe(data);
  });
  target.on('error', (err: NodeJS.ErrnoException) => {
    const why = err.code === 'ECONNREFUSED' ? 'connection refused' : err.message;
    const detail = connected ? why : `dial tcp4 127.0.0.1:${port}: connect: ${why}`;
    error.end(`error forwarding port ${port} to pod ${pod}, uid : ${detail}`);
    data.end();
  });
  target.once('close', () => {
    if (!error.writableEnded) error.end();
    done();
  });
}

function serveWebSocketPortForward(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  url: URL,
  pod: string,
): void {
  const session = acceptPortForwardSession(req, socket, head, parsePortsQuery(url.searchParams, 'ports'));
  if (!session) return;
  let pending = session.streams.length;
  const done = () => {
    if (--pending === 0) void session.finish();
  };
  for (const s of session.streams as PortStreams[]) forwardTo(s.port, pod, s.data, s.error, done);
}

/** The kubelet's SPDY port-forward handler (shared/portforward/spdy-server.ts), recording what it sees. */
function serveSpdyPortForward(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
  pod: string,
  record: FakeApiserver['spdyPortForward'],
): void {
  const session = acceptSpdyPortForward(req, socket, head);
  if (!session) return;
  record.connections++;
  record.sockets.add(socket);
  socket.once('close', () => record.sockets.delete(socket));
  session.conn.on('stream', (stream) => {
    const h: Record<string, string> = {};
    for (const k of ['streamType', 'port', 'requestID']) h[k] = headerValue(stream.headers, k) ?? '';
    record.streams.push(h);
  });
  session.on('pair', ({ port, data, error }) =>
    forwardTo(port, pod, data, error, () => {
      if (!data.writableEnded) data.end();
    }),
  );
}
