/**
 * The CRI streaming server: where Exec/Attach URLs point. The kubelet proxies the client's
 * upgrade here; we consume the token, finish the remotecommand handshake and serve the session.
 *
 * Mirrors kubelet `pkg/cri/streaming/server.go`: routes `/exec/{token}`, `/attach/{token}`,
 * `/portforward/{token}`; the stream options come from the cached CRI request, not from the
 * query string; an unknown, used or expired token is 404 (and a token issued for exec does not
 * open an attach). Differences: WebSocket (GET) only for now — a SPDY POST gets a 400 Status
 * without consuming its token (the router is ready for the SPDY handler); port-forward tokens are
 * never issued yet. Every refusal is a Kubernetes Status, written before any upgrade.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { failureStatus, writeStatus, writeStatusToSocket } from '../shared/status.js';
import { acceptChannelSession, type ChannelServerSession } from '../shared/remotecommand/websocket-server.js';
import { serveAttach } from './attach-session.js';
import { serveExec } from './exec-session.js';
import type { RequestCache } from './request-cache.js';
import type { ContainerRuntime } from './runtime.js';

const ROUTE = /^\/(exec|attach|portforward)\/([A-Za-z0-9_-]{1,128})$/;

export interface StreamingServerOptions {
  runtime: ContainerRuntime;
  cache: RequestCache;
  log: (line: string) => void;
}

export class StreamingServer {
  readonly server: http.Server;
  private readonly sessions = new Set<ChannelServerSession>();
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
    await Promise.all([...this.sessions].map((s) => s.close(1001, 'server shutting down')));
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
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const m = ROUTE.exec(path);
    if (!m) {
      writeStatusToSocket(
        socket,
        failureStatus(404, `the server could not find the requested resource (${path})`),
      );
      return;
    }
    const [, kind, token] = m as unknown as [string, 'exec' | 'attach' | 'portforward', string];
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
    const entry = this.opts.cache.consume(token);
    if (!entry || entry.kind !== kind) {
      writeStatusToSocket(
        socket,
        failureStatus(404, `streaming request not found or expired: ${kind} token`),
      );
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
}
