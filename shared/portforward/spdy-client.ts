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
import type { ConnectionOptions } from 'node:tls';
import { UpgradeRefusedError } from '../httpstream/upgrade-refusal.js';
import { SpdyConnection } from '../spdy/connection.js';
import { dialSpdy } from '../spdy/dial.js';
import type { SpdyStream } from '../spdy/stream.js';
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
export async function dialSpdyPortForward(
  opts: SpdyPortForwardClientOptions,
): Promise<SpdyPortForwardClient> {
  try {
    const { socket, head } = await dialSpdy(
      { url: opts.url, headers: opts.headers, tls: opts.tls, timeoutMs: opts.handshakeTimeoutMs },
      [PORT_FORWARD_PROTOCOL_V1],
    );
    return new SpdyPortForwardClient(new SpdyConnection(socket, { role: 'client', head }));
  } catch (err) {
    if (err instanceof UpgradeRefusedError) {
      throw new PortForwardError('UPGRADE_REFUSED', err.message, err.httpCode);
    }
    throw err;
  }
}
