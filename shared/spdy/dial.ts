/**
 * The client side of a SPDY/3.1 upgrade: a POST with `Connection: Upgrade`, `Upgrade: SPDY/3.1`
 * and one `X-Stream-Protocol-Version` line per protocol offered. Every SPDY client here (exec and
 * attach, port-forward, the apiserver's StreamTranslator) dials through this one function.
 *
 * Mirrors client-go `transport/spdy/spdy.go` and apimachinery `pkg/util/httpstream/spdy/roundtripper.go`
 * (the 101 names the chosen protocol; none means the first/legacy one; any other answer is an
 * upgrade failure carrying the server's Status, never followed when it is a redirect).
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { resumingTlsOptions } from '../tls/client-sessions.js';
import { readRefusal } from '../httpstream/upgrade-refusal.js';
import { HEADER_PROTOCOL_VERSION, isSpdyUpgrade, SPDY_31 } from './upgrade.js';

export interface SpdyDialOptions {
  /** http(s) URL (ws(s) is accepted and turned into http(s)). */
  url: string;
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
  /** Time allowed for the upgrade; default 30 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SpdyDialed {
  socket: Duplex;
  /** Bytes read past the 101 (the first frames). */
  head: Buffer;
  /** The protocol the server chose ('' when it named none). */
  protocol: string;
  /** The 101's status line and headers (for a client's -v). */
  response?: { statusCode?: number; statusMessage?: string; headers: IncomingHttpHeaders };
}

/** Resolves with the upgraded socket; a non-101 answer rejects with an UpgradeRefusedError. */
export function dialSpdy(opts: SpdyDialOptions, protocols: readonly string[]): Promise<SpdyDialed> {
  const url = new URL(opts.url.replace(/^ws(s?):/, 'http$1:'));
  const request = url.protocol === 'https:' ? https.request : http.request;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  // As the UpgradeAwareHandler: the certificate is checked against the URL's host, whatever Host
  // header the caller sends, and a resumed session (not checked again) is kept per that name.
  const servername = opts.tls?.servername ?? (isIP(host) ? '' : host);
  const secure =
    url.protocol === 'https:' ? resumingTlsOptions(opts.tls, host, url.port || 443, servername) : undefined;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ...secure?.options,
      ...(secure ? { servername } : {}),
      method: 'POST',
      agent: false,
      headers: {
        ...opts.headers,
        Connection: 'Upgrade',
        Upgrade: SPDY_31,
        [HEADER_PROTOCOL_VERSION]: [...protocols],
      },
    });
    if (secure) req.once('socket', (s) => secure.remember(s as TLSSocket));
    const timer = setTimeout(
      () => req.destroy(new Error(`upgrade timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    const abort = (): void => void req.destroy(new Error('aborted'));
    opts.signal?.addEventListener('abort', abort, { once: true });
    const settle = (): void => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', abort);
    };
    req.on('error', (err) => {
      settle();
      reject(err);
    });
    req.on('upgrade', (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      settle();
      if (!isSpdyUpgrade(res.headers)) {
        socket.destroy();
        reject(new Error(`server switched to ${JSON.stringify(res.headers.upgrade)}, not ${SPDY_31}`));
        return;
      }
      const chosen = res.headers[HEADER_PROTOCOL_VERSION.toLowerCase()];
      const response = { statusCode: res.statusCode, statusMessage: res.statusMessage, headers: res.headers };
      resolve({ socket, head, protocol: (Array.isArray(chosen) ? chosen[0] : chosen) ?? '', response });
    });
    req.on('response', (res) => {
      settle();
      void readRefusal(res).then((refused) => {
        reject(refused);
        req.destroy();
      });
    });
    req.end();
  });
}
