/**
 * UpgradeAwareHandler: a reverse proxy that also carries upgraded (SPDY, WebSocket) connections.
 *
 * Mirrors apimachinery `pkg/util/proxy/upgradeaware.go` (options and the order of the upgrade
 * path) and Go's `net/http/httputil/reverseproxy.go` (hop-by-hop headers, protocol checks). Both
 * the apiserver (towards a kubelet) and the kubelet (towards the runtime's streaming server) use it.
 *
 * Node hands an upgrade request to the server's 'upgrade' event with the raw socket, and any other
 * request to 'request'; so the handler has two entry points, `handleUpgrade` and `handle`.
 * Differences from upstream, on purpose:
 * - the backend's response head is parsed by Node's own HTTP client parser (bounded by
 *   `maxResponseHeaderBytes`) rather than by hand;
 * - a refused upgrade's body is re-sent close-delimited (Node has already de-chunked it).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket, type ConnectionOptions } from 'node:tls';
import { writeStatus, writeStatusToSocket, type Status } from '../status.js';
import {
  appendForwardedFor,
  isPrintableAscii,
  isUpgradeRequest,
  removeHopByHop,
  setHeaders,
  withoutHeaders,
  type RawHeaders,
} from './hop-headers.js';
import { backendError, ProxyError } from './proxy-error.js';
import { splice, type SpliceStats } from './splice.js';
import { resumingTlsOptions } from '../tls/client-sessions.js';

export interface UpgradeAwareHandlerOptions {
  /** The backend: scheme (http or https), host, port, path and query. */
  location: URL;
  /** Refuse anything that is not an upgrade with 400 "Upgrade request required". */
  upgradeRequired?: boolean;
  /** Join the request's path onto the location's path. */
  appendLocationPath?: boolean;
  /** Use the request's path and query; only scheme and host come from the location. */
  useRequestLocation?: boolean;
  /** Send the location's host as the Host header (otherwise the client's Host is kept). */
  useLocationHost?: boolean;
  /** TLS settings for an https backend (CA, client certificate, server name …). */
  tls?: ConnectionOptions;
  /** Headers set on the request to the backend, replacing the client's (credentials of this hop). */
  backendHeaders?: Record<string, string>;
  /** Client headers (any case) that never cross this hop, e.g. the client's own Authorization. */
  stripHeaders?: string[];
  /** Non-upgrade responses: coalesce and flush at most this often (ms); 0 or less writes each chunk at once. */
  flushIntervalMs?: number;
  /** Rate limit for each direction of a spliced stream; 0 means unlimited (`--max-connection-bytes-per-sec`). */
  maxBytesPerSec?: number;
  /** Turn a non-upgrade 3xx with Location into 502 instead of passing it on (CVE-2020-8559). */
  rejectForwardingRedirects?: boolean;
  /** Maps a proxy failure to the Status the client receives (the Responder). */
  responder?: (err: ProxyError, req: IncomingMessage) => Status;
  /** Time allowed to connect and to receive the backend's response head. */
  backendTimeoutMs?: number;
  /** Largest backend response head accepted. */
  maxResponseHeaderBytes?: number;
  /**
   * Called when a splice starts, with both sockets (for metrics and accounting) and the stream
   * bytes already passed on before it: the client's over-read `up`, the backend's `down`.
   */
  onSplice?: (client: Duplex, backend: Duplex, before: { up: number; down: number }) => void;
  /** Called when a spliced stream has closed, with its byte counts. */
  onSpliceClose?: (stats: SpliceStats) => void;
}

const DEFAULTS = {
  flushIntervalMs: 200,
  backendTimeoutMs: 30_000,
  maxResponseHeaderBytes: 16 * 1024,
};

export class UpgradeAwareHandler {
  private readonly opts: UpgradeAwareHandlerOptions & typeof DEFAULTS;
  private readonly strip: Set<string>;

  constructor(opts: UpgradeAwareHandlerOptions) {
    // An option passed as undefined keeps its default.
    const given = Object.fromEntries(Object.entries(opts).filter(([, v]) => v !== undefined));
    this.opts = { ...DEFAULTS, ...(given as UpgradeAwareHandlerOptions) };
    this.strip = new Set((opts.stripHeaders ?? []).map((h) => h.toLowerCase()));
  }

  /** For a server's 'upgrade' event. Pause the socket first if anything async ran before this. */
  handleUpgrade(req: IncomingMessage, client: Duplex, clientHead: Buffer): void {
    client.pause();
    client.on('error', () => client.destroy());
    const fail = (err: ProxyError): void => writeStatusToSocket(client, this.statusFor(err, req));

    const upgrade = req.headers.upgrade ?? '';
    if (!isPrintableAscii(upgrade) || upgrade === '') {
      fail(
        new ProxyError(
          'INVALID_PROTOCOL',
          `client tried to switch to invalid protocol ${JSON.stringify(upgrade)}`,
        ),
      );
      return;
    }

    let headers = withoutHeaders(req.rawHeaders, this.strip);
    if (!hasHeader(headers, 'content-length') && !hasHeader(headers, 'transfer-encoding')) {
      // Without this Node would send a body-less POST as chunked and append a terminator that the
      // backend would read as the first bytes of the upgraded stream.
      headers.push('Content-Length', '0');
    }
    headers = this.finishHeaders(headers, req);

    const backendReq = this.request(req.method ?? 'GET', this.target(req, true), headers);
    const timer = this.startTimer(backendReq);
    let settled = false;
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      clearTimeout(timer);
      return true;
    };
    client.once('close', () => {
      if (settle()) backendReq.destroy();
    });

    backendReq.on('error', (err: NodeJS.ErrnoException) => {
      if (!settle()) return;
      fail(backendError(err, connected(backendReq) ? 'response' : 'dial'));
    });

    backendReq.on('upgrade', (res: IncomingMessage, backend: Duplex, backendHead: Buffer) => {
      if (!settle()) return void backend.destroy();
      const switched = res.headers.upgrade ?? '';
      if (switched.toLowerCase() !== upgrade.toLowerCase()) {
        backend.destroy();
        fail(
          new ProxyError(
            'PROTOCOL_MISMATCH',
            `backend tried to switch protocol ${JSON.stringify(switched)} when ${JSON.stringify(upgrade)} was requested`,
          ),
        );
        return;
      }
      // The connection is hijacked from here on: nothing can report an error as a response.
      client.write(responseHead(res, res.rawHeaders));
      if (backendHead.length) client.write(backendHead);
      if (clientHead.length) backend.write(clientHead);
      this.opts.onSplice?.(client, backend, { up: clientHead.length, down: backendHead.length });
      splice(client, backend, {
        maxBytesPerSec: this.opts.maxBytesPerSec,
        onClose: this.opts.onSpliceClose,
      });
      client.resume();
    });

    backendReq.on('response', (res: IncomingMessage) => {
      if (!settle()) return void res.destroy();
      if (res.statusCode! < 400) {
        // A redirect or a success is never passed on, nor followed (CVE-2020-8559).
        res.destroy();
        fail(
          new ProxyError(
            'INVALID_UPGRADE_RESPONSE',
            `invalid upgrade response: status code ${res.statusCode}`,
          ),
        );
        return;
      }
      // A refused upgrade: pass the answer on and close BOTH connections, so that nothing the
      // client sends next can reach the backend over this hop's connection (CVE-2018-1002105).
      const kept = withoutHeaders(res.rawHeaders, new Set(['connection', 'keep-alive', 'transfer-encoding']));
      kept.push('Connection', 'close');
      client.write(responseHead(res, kept));
      const backendSocket = res.socket;
      res.on('error', () => client.destroy());
      res.pipe(client);
      res.on('end', () => {
        backendSocket?.destroy();
        backendReq.destroy();
        client.end(() => client.destroy());
      });
    });

    backendReq.end();
  }

  /** For a server's 'request' event. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    const fail = (err: ProxyError): void => writeStatus(res, this.statusFor(err, req));
    if (isUpgradeRequest(req)) {
      // Node routes a request with an Upgrade header to 'upgrade'; one here names no protocol.
      const upgrade = req.headers.upgrade ?? '';
      fail(
        new ProxyError(
          'INVALID_PROTOCOL',
          `client tried to switch to invalid protocol ${JSON.stringify(upgrade)}`,
        ),
      );
      return;
    }
    if (this.opts.upgradeRequired) {
      fail(new ProxyError('UPGRADE_REQUIRED', 'Upgrade request required'));
      return;
    }

    const headers = this.finishHeaders(removeHopByHop(req.rawHeaders, this.strip), req);
    const backendReq = this.request(req.method ?? 'GET', this.target(req, false), headers);
    const timer = this.startTimer(backendReq);
    res.once('close', () => {
      clearTimeout(timer);
      if (!res.writableFinished) backendReq.destroy();
    });
    backendReq.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (res.headersSent) res.destroy();
      else fail(backendError(err, connected(backendReq) ? 'response' : 'dial'));
    });
    backendReq.on('response', (backendRes: IncomingMessage) => {
      clearTimeout(timer);
      const code = backendRes.statusCode!;
      if (this.opts.rejectForwardingRedirects && code >= 300 && code < 400 && backendRes.headers.location) {
        backendRes.destroy();
        fail(
          new ProxyError(
            'REDIRECT_REJECTED',
            'the backend attempted to redirect this request, which is not permitted',
          ),
        );
        return;
      }
      res.writeHead(code, backendRes.statusMessage, removeHopByHop(backendRes.rawHeaders));
      this.streamBody(backendRes, res);
    });
    req.pipe(backendReq);
  }

  /** Copies a response body, flushing at least every flushIntervalMs (Go's FlushInterval). */
  private streamBody(from: IncomingMessage, to: ServerResponse): void {
    const interval = this.opts.flushIntervalMs;
    let flushTimer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      flushTimer = undefined;
      to.uncork();
    };
    from.on('data', (chunk: Buffer) => {
      if (interval > 0 && !flushTimer) {
        to.cork();
        flushTimer = setTimeout(flush, interval);
      }
      if (!to.write(chunk)) from.pause();
    });
    to.on('drain', () => from.resume());
    from.on('end', () => {
      if (flushTimer) clearTimeout(flushTimer);
      to.end();
    });
    from.on('error', () => to.destroy());
    from.on('aborted', () => to.destroy());
  }

  private statusFor(err: ProxyError, req: IncomingMessage): Status {
    return this.opts.responder ? this.opts.responder(err, req) : err.toStatus();
  }

  private finishHeaders(raw: RawHeaders, req: IncomingMessage): RawHeaders {
    let headers = raw;
    if (this.opts.useLocationHost || !hasHeader(headers, 'host')) {
      headers = setHeaders(headers, { Host: this.opts.location.host });
    }
    if (this.opts.backendHeaders) headers = setHeaders(headers, this.opts.backendHeaders);
    return appendForwardedFor(headers, req.socket.remoteAddress);
  }

  /** The backend path and query, by the same rules as upstream tryUpgrade / ServeHTTP. */
  private target(req: IncomingMessage, upgrade: boolean): string {
    const loc = this.opts.location;
    const reqUrl = new URL(req.url ?? '/', 'http://placeholder');
    if (this.opts.useRequestLocation) return reqUrl.pathname + reqUrl.search;
    let path = loc.pathname;
    if (this.opts.appendLocationPath) path = joinSlash(path, reqUrl.pathname);
    else if (!upgrade && reqUrl.pathname.endsWith('/') && !path.endsWith('/')) path += '/';
    const query = upgrade ? loc.search : reqUrl.search || loc.search;
    return path + query;
  }

  private request(method: string, path: string, headers: RawHeaders): http.ClientRequest {
    const loc = this.opts.location;
    const common = {
      host: loc.hostname.replace(/^\[|\]$/g, ''),
      port: loc.port || (loc.protocol === 'https:' ? 443 : 80),
      method,
      path,
      headers,
      agent: false as const,
      maxHeaderSize: this.opts.maxResponseHeaderBytes,
    };
    if (loc.protocol === 'https:') {
      // The name checked against the backend's certificate is the location's, never the client's
      // Host header (Node's https would take that when `servername` is unset, as Go's transport
      // never does); a resumed session skips the check, so the session cache is keyed by it too.
      const servername = this.opts.tls?.servername ?? (isIP(common.host) ? '' : common.host);
      const t = resumingTlsOptions(this.opts.tls, common.host, common.port, servername);
      const req = https.request({ ...t.options, ...common, servername });
      req.once('socket', (s) => t.remember(s as TLSSocket));
      return watchDial(req);
    }
    if (loc.protocol !== 'http:') throw new Error(`unsupported backend scheme ${loc.protocol}`);
    return watchDial(http.request(common));
  }

  private startTimer(backendReq: http.ClientRequest): NodeJS.Timeout {
    const ms = this.opts.backendTimeoutMs;
    return setTimeout(() => {
      backendReq.destroy(
        new ProxyError(
          'BACKEND_TIMEOUT',
          connected(backendReq)
            ? `timed out after ${ms}ms waiting for the backend's response`
            : `error dialing backend: timed out after ${ms}ms`,
        ),
      );
    }, ms);
  }
}

const dialed = new WeakSet<http.ClientRequest>();

/** Remembers when the backend connection (TCP, and TLS if any) is up, to tell dial errors apart. */
function watchDial(req: http.ClientRequest): http.ClientRequest {
  req.once('socket', (s) => {
    s.once(s instanceof TLSSocket ? 'secureConnect' : 'connect', () => dialed.add(req));
  });
  return req;
}

function connected(req: http.ClientRequest): boolean {
  return dialed.has(req);
}

function hasHeader(raw: RawHeaders, name: string): boolean {
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) return true;
  return false;
}

function joinSlash(a: string, b: string): string {
  if (a.endsWith('/') && b.startsWith('/')) return a + b.slice(1);
  if (!a.endsWith('/') && !b.startsWith('/')) return `${a}/${b}`;
  return a + b;
}

function responseHead(res: IncomingMessage, raw: RawHeaders): string {
  let head = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  return head + '\r\n';
}
