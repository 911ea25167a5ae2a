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
 * Exec and attach speak both transports — a WebSocket GET (channel.k8s.io v1–v5) or a SPDY/3.1
 * upgrade (v1–v4, one stream per channel) — and then run the same code with the session typed as
 * a RemoteCommandSession. A token is spent only on a well-formed upgrade of either kind (for SPDY:
 * with a protocol version we speak), so a malformed attempt does not cost the client its URL.
 * `spdyOnly` (`--spdy-only`) refuses WebSocket upgrades with a 400 Status, as real CRI runtimes
 * do, which only speak SPDY (the apiserver's StreamTranslator bridges a v5 WebSocket client).
 * Every refusal is a Kubernetes Status, written before any upgrade.
 * `streamingConnectionIdleTimeoutMs` (`--streaming-connection-idle-timeout`, 4h by default, 0 =
 * none) ends any of these sessions whose connection carried no bytes either way for that long
 * (idle-timeout.ts): exec and attach with an InternalError Status (an exec's process is then
 * killed, as when its client leaves), port-forward by closing the connection.
 * `tls` (`--streaming-tls-cert-file`, `--streaming-tls-private-key-file`; containerd's
 * `enable_tls_streaming` with `x509_key_pair_streaming`) serves every route over https, and the
 * base URL, hence every URL CRI Exec/Attach/PortForward returns, is `https://` (upstream
 * streaming.NewServer: a TLSConfig makes the BaseURL scheme https). The token in the URL is then
 * no longer readable on the node's loopback, and a kubelet that verifies the certificate cannot be
 * sent to an impostor listening on the URL's address. Plain http to that port gets no session: the
 * bytes fail the TLS handshake and the connection is closed before any request is read.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { failureStatus, writeStatus, writeStatusToSocket } from '../shared/status.js';
import { internalErrorStatus } from '../shared/remotecommand/exit-status.js';
import { negotiateProtocol } from '../shared/remotecommand/protocol.js';
import type { RemoteCommandSession } from '../shared/remotecommand/session.js';
import {
  acceptChannelSession,
  ChannelServerSession,
  type RemoteCommandOptions,
} from '../shared/remotecommand/websocket-server.js';
import { acceptSpdySession, type SpdySessionOptions } from '../shared/remotecommand/spdy-server.js';
import {
  isSpdyUpgrade,
  negotiate,
  offeredProtocols,
  SPDY_31,
  SPDY_SERVER_PROTOCOLS,
} from '../shared/spdy/upgrade.js';
import { parsePortsQuery, PortForwardError } from '../shared/portforward/protocol.js';
import { acceptSpdyPortForward, type SpdyPortForwardSession } from '../shared/portforward/spdy-server.js';
import {
  acceptPortForwardSession,
  type PortForwardServerSession,
} from '../shared/portforward/websocket-server.js';
import { serveAttach } from './attach-session.js';
import { serveExec } from './exec-session.js';
import { DEFAULT_STREAMING_IDLE_TIMEOUT_MS, idleTimeoutMessage, watchIdle } from './idle-timeout.js';
import { nsexecPath } from './isolation.js';
import { forwardPort, type ForwardTarget } from './port-forward.js';
import type {
  AttachRequestEntry,
  ExecRequestEntry,
  PortForwardRequestEntry,
  RequestCache,
} from './request-cache.js';
import type { ContainerRuntime } from './runtime.js';
import type { CriShimMetrics } from './metrics.js';
import { structured } from '../shared/logging.js';
import { serveMetrics } from '../shared/metrics/registry.js';
import { bytesWritten } from '../shared/metrics/stream-sessions.js';
import { onResponseHead } from '../shared/httpstream/response-head.js';
import { type Logger } from '../shared/logging.js';

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})$/;

export interface StreamingServerOptions {
  runtime: ContainerRuntime;
  cache: RequestCache;
  log: Logger;
  /** Refuse WebSocket upgrades with a 400 Status, as CRI runtimes (SPDY only) do. */
  spdyOnly?: boolean;
  /** SPDY session options (stream creation timeout: 30 s by default, as the kubelet). */
  spdy?: SpdySessionOptions;
  /** End sessions idle (no bytes either way) this long; default 4 h as the kubelet; 0 = never. */
  streamingConnectionIdleTimeoutMs?: number;
  /** Serve https with this serving certificate and key (PEM); plain http without. */
  tls?: StreamingTlsOptions;
  /** Where sessions are counted; `/metrics` and `/debug/sessions` on this server serve it. */
  metrics?: CriShimMetrics;
}

export interface StreamingTlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
}

/** After an idle timeout, how long the client has to take the Status before the connection goes. */
const IDLE_FINISH_GRACE_MS = 5000;

const NO_STREAMS: RemoteCommandOptions = { stdin: false, stdout: false, stderr: false, tty: false };

/** Which upgrade a request asks for: a WebSocket handshake (a GET) or SPDY/3.1 (a POST, or GET). */
function upgradeTransport(req: IncomingMessage): 'websocket' | 'spdy' | undefined {
  if (isSpdyUpgrade(req.headers)) return 'spdy';
  if (req.method === 'GET' && (req.headers.upgrade ?? '').toLowerCase() === 'websocket') return 'websocket';
  return undefined;
}

/** Whether a SPDY upgrade offers a remotecommand version we speak (else the handshake refuses it). */
function spdyVersionAcceptable(req: IncomingMessage): boolean {
  const offered = offeredProtocols(req);
  return !!offered && negotiate(offered, SPDY_SERVER_PROTOCOLS) !== undefined;
}

/** Whether a WebSocket handshake offers no subprotocol, or one of the channel protocols we speak. */
function websocketProtocolAcceptable(req: IncomingMessage): boolean {
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  return offered.length === 0 || negotiateProtocol(offered) !== undefined;
}

/** The Audit-Id header of the upgrade request a socket carried (the kubelet passes it on). */
function auditIdOf(socket: Duplex): string | undefined {
  const id = upgradeAuditIds.get(socket);
  return id && /^[A-Za-z0-9._:-]{1,64}$/.test(id) ? id : undefined;
}
const upgradeAuditIds = new WeakMap<Duplex, string>();
const streamStarts = new WeakMap<Duplex, number>();

/** A WebSocket session closes with a code and reason; a SPDY one with GOAWAY. */
function closeSession(session: RemoteCommandSession, code: number, reason: string): Promise<void> {
  return session instanceof ChannelServerSession ? session.close(code, reason) : session.close();
}

export class StreamingServer {
  readonly server: http.Server | https.Server;
  private readonly sessions = new Set<RemoteCommandSession>();
  private readonly portForwards = new Set<PortForwardServerSession>();
  private readonly spdySessions = new Set<SpdyPortForwardSession>();
  private readonly sockets = new Set<net.Socket>();
  private baseUrl = '';
  private readonly idleTimeoutMs: number;

  constructor(private readonly opts: StreamingServerOptions) {
    this.idleTimeoutMs = opts.streamingConnectionIdleTimeoutMs ?? DEFAULT_STREAMING_IDLE_TIMEOUT_MS;
    const onRequest = (req: IncomingMessage, res: ServerResponse) => this.onRequest(req, res);
    if (opts.tls) {
      const server = https.createServer({ cert: opts.tls.cert, key: opts.tls.key }, onRequest);
      // A failed handshake (plain http, a client that does not trust the certificate): the
      // connection is closed; one line says so, as Go's "http: TLS handshake error from …".
      server.on('tlsClientError', (err, s) =>
        opts.log(`TLS handshake error from ${s.remoteAddress ?? '?'}:${s.remotePort ?? '?'}: ${err.message}`),
      );
      this.server = server;
    } else {
      this.server = http.createServer(onRequest);
    }
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
  }

  /** The base URL the Exec/Attach responses point at, e.g. `https://127.0.0.1:43210` with tls. */
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
    this.baseUrl = `${this.opts.tls ? 'https' : 'http'}://${host}:${a.port}`;
    return this.baseUrl;
  }

  /** Ends every session and connection, then stops listening. */
  async close(): Promise<void> {
    await Promise.all([
      ...[...this.sessions].map((s) => closeSession(s, 1001, 'server shutting down')),
      ...[...this.portForwards].map((s) => s.close(1001, 'server shutting down')),
      ...[...this.spdySessions].map((s) => s.close()),
    ]);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    // Unauthenticated, as containerd's metrics address: the streaming server listens on loopback.
    const metrics = this.opts.metrics;
    if (metrics && req.method === 'GET' && path === '/metrics')
      return void serveMetrics(metrics.registry, res);
    if (metrics && req.method === 'GET' && path === '/debug/sessions') {
      const body = JSON.stringify(metrics.streams.snapshot());
      res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      return void res.end(body);
    }
    if (ROUTE.test(path)) writeStatus(res, failureStatus(400, 'Upgrade request required'));
    else writeStatus(res, failureStatus(404, `the server could not find the requested resource (${path})`));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const header = req.headers['audit-id'];
    if (typeof header === 'string') upgradeAuditIds.set(socket, header);
    // Where the stream's bytes start: after the 101 head, whoever writes it.
    onResponseHead(socket, {}, (_code, headBytes) =>
      streamStarts.set(socket, bytesWritten(socket) + headBytes),
    );
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
    const transport = upgradeTransport(req);
    if (!transport) {
      writeStatusToSocket(
        socket,
        failureStatus(
          400,
          `unable to upgrade: expected a websocket GET or a ${SPDY_31} upgrade, got ${JSON.stringify(req.headers.upgrade)}`,
        ),
      );
      return;
    }
    if (transport === 'websocket' && this.opts.spdyOnly) {
      // Real CRI runtimes speak SPDY only; the apiserver's StreamTranslator copes with that.
      writeStatusToSocket(
        socket,
        failureStatus(400, `unable to upgrade: this streaming server only speaks ${SPDY_31} (--spdy-only)`),
      );
      return;
    }
    if (transport === 'spdy' && kind === 'portforward') {
      this.serveSpdyPortForward(req, socket, head, token);
      return;
    }
    // A version we cannot speak is refused before the token is spent; the handshake functions
    // write the refusal (400/403 Status) themselves.
    if (transport === 'spdy' && !spdyVersionAcceptable(req)) {
      void acceptSpdySession(req, socket, head, NO_STREAMS);
      return;
    }
    if (transport === 'websocket' && kind !== 'portforward' && !websocketProtocolAcceptable(req)) {
      acceptChannelSession(req, socket, head, NO_STREAMS);
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
    const streams = {
      stdin: entry.stdin,
      stdout: entry.stdout,
      stderr: entry.stderr && !entry.tty,
      tty: entry.tty,
    };
    if (transport === 'websocket') {
      const session = acceptChannelSession(req, socket, head, streams);
      if (session) this.serveRemoteCommand(entry, session, socket, 'WebSocket');
      return;
    }
    acceptSpdySession(req, socket, head, streams, this.opts.spdy).then(
      (session) => {
        if (session) this.serveRemoteCommand(entry, session, socket, 'SPDY/3.1');
      },
      (err: unknown) => {
        // TIMEOUT (streams not created in time) or CONNECTION_CLOSED: the connection is closed.
        this.opts.log(`${entry.kind} over SPDY not started: ${String(err)}`);
        socket.destroy();
      },
    );
  }

  /** Exec and attach, whichever transport carries the session. */
  private serveRemoteCommand(
    entry: ExecRequestEntry | AttachRequestEntry,
    session: RemoteCommandSession,
    socket: Duplex,
    transport: 'WebSocket' | 'SPDY/3.1',
  ): void {
    // One line a session, so a student can see which protocol reached the runtime; this and every
    // line of the session carry the request's Audit-Id (from the CRI call, else the header).
    const proto = session.protocol.name || 'channel.k8s.io';
    const auditID = entry.auditID ?? auditIdOf(socket);
    const log = structured(this.opts.log).with({ auditID });
    log(`${entry.kind} in ${entry.containerId.slice(0, 12)} over ${transport} (${proto})`);
    this.opts.metrics?.session(entry.kind, transport);
    const counted = this.opts.metrics?.streams.open(
      { auditID, kind: entry.kind, target: entry.containerId.slice(0, 12), protocol: proto, path: 'served' },
      socket,
      undefined,
      undefined,
      streamStarts.get(socket),
    );
    if (counted) session.once('close', counted);
    this.sessions.add(session);
    const stopIdle = watchIdle(socket, this.idleTimeoutMs, () => {
      const message = idleTimeoutMessage(this.idleTimeoutMs);
      log(`${entry.kind} in ${entry.containerId.slice(0, 12)}: ${message}; ending the session`);
      void session.finish(internalErrorStatus(message));
      // A client that does not take even the Status is cut off, as for any shutdown.
      setTimeout(() => void closeSession(session, 1001, 'idle timeout'), IDLE_FINISH_GRACE_MS).unref();
    });
    session.once('close', () => {
      stopIdle();
      this.sessions.delete(session);
    });
    const served =
      entry.kind === 'exec'
        ? serveExec(this.opts.runtime, entry, session, log)
        : serveAttach(this.opts.runtime, entry, session, log);
    served.catch((err: unknown) => {
      log(`${entry.kind} session failed: ${String(err)}`);
      void closeSession(session, 1011, 'internal error');
    });
  }

  /** SPDY port-forward: the ports come from each stream pair's `port` header, as upstream. */
  /** Where a port-forward dials: the pod's network namespace under bwrap, else the host. */
  private forwardTarget(sandboxId: string): ForwardTarget {
    const initPid = this.opts.runtime.sandboxes.get(sandboxId)?.initPid;
    return {
      sandboxId,
      log: this.opts.log,
      netns: initPid ? { pid: initPid, helper: nsexecPath() } : undefined,
    };
  }

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
    const stopIdle = watchIdle(socket, this.idleTimeoutMs, () => {
      this.opts.log(`port-forward over SPDY: ${idleTimeoutMessage(this.idleTimeoutMs)}; closing`);
      void session.close();
    });
    session.on('close', () => {
      stopIdle();
      this.spdySessions.delete(session);
    });
    const target = this.forwardTarget(entry.sandboxId);
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
    this.portForwards.add(session);
    const stopIdle = watchIdle(socket, this.idleTimeoutMs, () => {
      this.opts.log(`port-forward: ${idleTimeoutMessage(this.idleTimeoutMs)}; closing`);
      void session.close(1001, 'idle timeout');
    });
    session.on('close', () => {
      stopIdle();
      this.portForwards.delete(session);
    });
    const target = this.forwardTarget(entry.sandboxId);
    // Upstream runs one forwarder per port and closes the connection when all have returned.
    void Promise.all(session.streams.map((s) => forwardPort(s, target))).then(() => session.finish());
  }
}
