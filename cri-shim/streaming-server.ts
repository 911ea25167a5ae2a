/**
 * The CRI streaming server: where Exec/Attach URLs point. The kubelet proxies the client's
 * upgrade here; we consume the token, finish the remotecommand handshake and serve the session.
 *
 * Mirrors kubelet `pkg/cri/streaming/server.go`: routes `/exec/{token}`, `/attach/{token}`,
 * `/portforward/{token}`; the stream options come from the cached CRI request, not from the
 * query string; an unknown, used or expired token is 404 (and a token issued for exec does not
 * open an attach). Port-forward: the ports come from the request's `?port=` query (upstream reads
 * only the query; the kubelet passes the client's through), else from the CRI PortForward request;
 * each port is dialled once per connection (`port-forward.ts`), and the session closes once every
 * port's connection is done. Over SPDY (a POST, `portforward.k8s.io`) one connection carries any
 * number of forwarded connections, one stream pair each, the port in the pair's headers.
 * Differences: exec/attach are WebSocket (GET) only for now — their SPDY POST gets a 400 Status
 * without consuming its token. Every refusal is a Kubernetes Status, written before any upgrade.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { failureStatus, writeStatus, writeStatusToSocket } from '../shared/status.js';
import { acceptChannelSession, type ChannelServerSession } from '../shared/remotecommand/websocket-server.js';
import { parsePortsQuery, PortForwardError } from '../shared/portforward/protocol.js';
import { acceptSpdyPortForward, type SpdyPortForwardSession } from '../shared/portforward/spdy-server.js';
import {
  acceptPortForwardSession,
  type PortForwardServerSession,
} from '../shared/portforward/websocket-server.js';
import { serveAttach } from './attach-session.js';
import { serveExec } from './exec-session.js';
import { forwardPort } from './port-forward.js';
import type { PortForwardRequestEntry, RequestCache } from './request-cache.js';
import type { ContainerRuntime } from './runtime.js';

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})$/;

export interface StreamingServerOptions {
  runtime: ContainerRuntime;
  cache: RequestCache;
  log: (line: string) => void;
}

export class StreamingServer {
  readonly server: http.Server;
  private readonly sessions = new Set<ChannelServerSession | PortForwardServerSession>();
  private readonly spdySessions = new Set<SpdyPortForwardSession>();
  private readonly sockets = new Set<net.Socket>();
  private baseUrl = '';

  constructor(private readonly opts: StreamingServerOptions) {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** The base URL the Exec/Attach responses point at, e.g. `http://127.0.0.1:43210`. */
  get url(): string {
    return this.baseUrl;
  }

  async listen(address: string, port: number): Promise<string> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    const a = this.server.address() as net.AddressInfo;
    const host = a.family === 'IPv6' || a.address.includes(':') ? `[${a.address}]` : a.address;
    this.baseUrl = `http://${host}:${a.port}`;
    return this.baseUrl;
  }

  /** Ends every session and connection, then stops listening. */
  async close(): Promise<void> {
    await Promise.all([
      ...[...this.sessions].map((s) => s.close(1001, 'server shutting down')),
      ...[...this.spdySessions].map((s) => s.close()),
    ]);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (ROUTE.test(path)) writeStatus(res, failureStatus(400, 'Upgrade request required'));
    else writeStatus(res, failureStatus(404, `the server could not find the requested resource (${path})`));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const m = ROUTE.exec(path);
    if (!m) {
      writeStatusToSocket(
        socket,
        failureStatus(404, `the server could not find the requested resource (${path})`),
      );
      return;
    }
    const [, kind, token] = m as unknown as [string, 'exec' | 'attach' | 'portforward', string];
    if (req.method !== 'GET' && kind === 'portforward') {
      this.serveSpdyPortForward(req, socket, head, token);
      return;
    }
    if (req.method !== 'GET') {
      // SPDY/3.1 upgrades come as POST; they get their handler in a later issue.
      writeStatusToSocket(
        socket,
        failureStatus(
          400,
          `unable to upgrade: SPDY is not supported yet by this streaming server; use a WebSocket GET`,
        ),
      );
      return;
    }
    let queryPorts: number[] = [];
    if (kind === 'portforward') {
      // Checked before the token is spent, so a typo does not cost the client its URL.
      try {
        queryPorts = parsePortsQuery(url.searchParams);
      } catch (err) {
        if (!(err instanceof PortForwardError)) throw err;
        writeStatusToSocket(socket, failureStatus(400, err.message));
        return;
      }
    }
    const entry = this.opts.cache.consume(token);
    if (!entry || entry.kind !== kind) {
      writeStatusToSocket(
        socket,
        failureStatus(404, `streaming request not found or expired: ${kind} token`),
      );
      return;
    }
    if (entry.kind === 'portforward') {
      this.servePortForward(req, socket, head, entry, queryPorts.length ? queryPorts : entry.ports);
      return;
    }
    const session = acceptChannelSession(req, socket, head, {
      stdin: entry.stdin,
      stdout: entry.stdout,
      stderr: entry.stderr && !entry.tty,
      tty: entry.tty,
    });
    if (!session) return;
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    const served =
      entry.kind === 'exec'
        ? serveExec(this.opts.runtime, entry, session, this.opts.log)
        : serveAttach(this.opts.runtime, entry, session);
    served.catch((err: unknown) => {
      this.opts.log(`${kind} session failed: ${String(err)}`);
      void session.close(1011, 'internal error');
    });
  }

  /** SPDY port-forward: the ports come from each stream pair's `port` header, as upstream. */
  private serveSpdyPortForward(req: IncomingMessage, socket: Duplex, head: Buffer, token: string): void {
    const entry = this.opts.cache.consume(token);
    if (!entry || entry.kind !== 'portforward' || !this.opts.runtime.sandboxes.has(entry.sandboxId)) {
      writeStatusToSocket(
        socket,
        failureStatus(404, 'streaming request not found or expired: portforward token'),
      );
      return;
    }
    const session = acceptSpdyPortForward(req, socket, head);
    if (!session) return;
    this.spdySessions.add(session);
    session.on('close', () => this.spdySessions.delete(session));
    const target = { sandboxId: entry.sandboxId, log: this.opts.log };
    session.on('pair', (pair) => {
      void forwardPort(pair, target).then(() => {
        pair.error.end();
        pair.data.end();
      });
    });
  }

  private servePortForward(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    entry: PortForwardRequestEntry,
    ports: number[],
  ): void {
    if (ports.length === 0) {
      writeStatusToSocket(socket, failureStatus(400, 'query parameter "port" is required'));
      return;
    }
    if (!this.opts.runtime.sandboxes.has(entry.sandboxId)) {
      writeStatusToSocket(socket, failureStatus(404, `sandbox ${entry.sandboxId} not found`));
      return;
    }
    const session = acceptPortForwardSession(req, socket, head, ports);
    if (!session) return;
    this.sessions.add(session);
    session.on('close', () => this.sessions.delete(session));
    const target = { sandboxId: entry.sandboxId, log: this.opts.log };
    // Upstream runs one forwarder per port and closes the connection when all have returned.
    void Promise.all(session.streams.map((s) => forwardPort(s, target))).then(() => session.finish());
  }
}
