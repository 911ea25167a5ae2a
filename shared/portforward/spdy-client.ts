/**
 * The client end of a SPDY/3.1 port-forward: one upgraded connection, then a stream pair per
 * forwarded TCP connection. What kubectl port-forward does (client-go `tools/portforward`).
 *
 * Mirrors client-go `portforward.go` (handleConnection): for each local connection, a new
 * requestID; an `error` stream opened first and half-closed at once (the client never writes
 * there), then a `data` stream, both with `port` and `requestID`; whatever the server writes on
 * the error stream is the failure for that connection. Unlike WebSocket v4, SPDY half-closes: the
 * data stream's end() is a FIN, so the target sees EOF while its answer still comes back.
 */
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { SpdyConnection } from '../spdy/connection.js';
import type { SpdyStream } from '../spdy/stream.js';
import { HEADER_PROTOCOL_VERSION, isSpdyUpgrade, SPDY_31 } from '../spdy/upgrade.js';
import {
  HEADER_PORT,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  PORT_FORWARD_PROTOCOL_V1,
  PortForwardError,
  STREAM_TYPE_DATA,
  STREAM_TYPE_ERROR,
} from './protocol.js';

export interface SpdyPortForwardClientOptions {
  url: string;
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
  handshakeTimeoutMs?: number;
}

export interface ForwardedConnection {
  requestId: string;
  /** The bytes of the TCP connection in the pod. */
  data: SpdyStream;
  /** Resolves with the server's error text for this connection ('' when none) once it ends. */
  errorText: Promise<string>;
}

const MAX_ERROR_TEXT = 64 * 1024;

export class SpdyPortForwardClient {
  private nextRequestId = 0;

  constructor(readonly conn: SpdyConnection) {}

  /** Opens the stream pair for one connection to `port`; resolves once the server answered both. */
  async forward(port: number, timeoutMs = 30_000): Promise<ForwardedConnection> {
    const requestId = String(this.nextRequestId++);
    const common = { [HEADER_PORT]: String(port), [HEADER_REQUEST_ID]: requestId };
    const error = this.conn.createStream({ [HEADER_STREAM_TYPE]: STREAM_TYPE_ERROR, ...common });
    error.end(); // the client never writes on the error stream
    const errorText = new Promise<string>((resolve) => {
      let text = '';
      error.on('data', (c: Buffer) => {
        if (text.length < MAX_ERROR_TEXT) text += c.toString('utf8');
      });
      error.on('end', () => resolve(text));
      error.on('close', () => resolve(text));
    });
    const data = this.conn.createStream({ [HEADER_STREAM_TYPE]: STREAM_TYPE_DATA, ...common });
    await Promise.all([error.waitReply(timeoutMs), data.waitReply(timeoutMs)]);
    return { requestId, data, errorText };
  }

  close(): Promise<unknown> {
    return this.conn.close();
  }
}

/** POSTs the SPDY upgrade offering `portforward.k8s.io`; resolves with the client once upgraded. */
export function dialSpdyPortForward(opts: SpdyPortForwardClientOptions): Promise<SpdyPortForwardClient> {
  const url = new URL(opts.url.replace(/^ws(s?):/, 'http$1:'));
  const request = url.protocol === 'https:' ? https.request : http.request;
  const timeoutMs = opts.handshakeTimeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ...opts.tls,
      method: 'POST',
      agent: false,
      headers: {
        ...opts.headers,
        Connection: 'Upgrade',
        Upgrade: SPDY_31,
        [HEADER_PROTOCOL_VERSION]: PORT_FORWARD_PROTOCOL_V1,
      },
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`upgrade timed out after ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('upgrade', (res: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      clearTimeout(timer);
      if (!isSpdyUpgrade(res.headers)) {
        socket.destroy();
        reject(new PortForwardError('UPGRADE_REFUSED', `server switched to ${String(res.headers.upgrade)}`));
        return;
      }
      resolve(new SpdyPortForwardClient(new SpdyConnection(socket, { role: 'client', head })));
    });
    req.on('response', (res) => {
      clearTimeout(timer);
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('error', () => {});
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        let message = body.trim() || `HTTP ${res.statusCode}`;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // plain text
        }
        reject(new PortForwardError('UPGRADE_REFUSED', message, res.statusCode));
      });
    });
    req.end();
  });
}
