/**
 * The client end of a SPDY/3.1 port-forward: one upgraded connection, then a stream pair per
 * forwarded TCP connection. What kubectl port-forward does (client-go `tools/portforward`), and
 * what `kexec port-forward --protocol spdy` uses (kexec/spdy-port-forwarder.ts).
 *
 * Mirrors client-go `portforward.go` (ForwardPorts dials once with `X-Stream-Protocol-Version:
 * portforward.k8s.io` as a POST upgrade, transport/spdy; handleConnection: for each local
 * connection a new requestID from 0; an `error` stream opened first and half-closed at once (the
 * client never writes there), then a `data` stream, both with `streamType`, `port` and
 * `requestID`; whatever the server writes on the error stream is the failure for that
 * connection). Unlike WebSocket v4, SPDY half-closes: the data stream's end() is a FIN, so the
 * target sees EOF while its answer still comes back.
 */
import type { ConnectionOptions } from 'node:tls';
import { SpdyConnection } from '../spdy/connection.js';
import { dialSpdy } from '../spdy/dial.js';
import type { SpdyStream } from '../spdy/stream.js';
import { DEFAULT_STREAM_CREATION_TIMEOUT_MS } from '../spdy/upgrade.js';
import {
  HEADER_PORT,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  PORT_FORWARD_PROTOCOL_V1,
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

/** Reads a stream to its end (or close), keeping at most MAX_ERROR_TEXT bytes. */
function readErrorText(stream: SpdyStream): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (c: Buffer) => {
    if (size + c.length <= MAX_ERROR_TEXT) chunks.push(c);
    size += c.length;
  });
  return new Promise((resolve) => {
    const done = () => resolve(Buffer.concat(chunks).toString('utf8'));
    stream.once('end', done);
    stream.once('close', done);
  });
}

export class SpdyPortForwardClient {
  private nextRequestId = 0;

  constructor(readonly conn: SpdyConnection) {}

  /** Opens the stream pair for one connection to `port`; resolves once the server answered both. */
  async forward(port: number, timeoutMs = DEFAULT_STREAM_CREATION_TIMEOUT_MS): Promise<ForwardedConnection> {
    const requestId = String(this.nextRequestId++);
    const common = { [HEADER_PORT]: String(port), [HEADER_REQUEST_ID]: requestId };
    const error = this.conn.createStream({ [HEADER_STREAM_TYPE]: STREAM_TYPE_ERROR, ...common });
    error.end(); // the client never writes on the error stream
    const errorText = readErrorText(error);
    const data = this.conn.createStream({ [HEADER_STREAM_TYPE]: STREAM_TYPE_DATA, ...common });
    try {
      await Promise.all([error.waitReply(timeoutMs), data.waitReply(timeoutMs)]);
    } catch (err) {
      error.destroy();
      data.destroy();
      throw err;
    }
    return { requestId, data, errorText };
  }

  close(): Promise<unknown> {
    return this.conn.close();
  }
}

/**
 * POSTs the SPDY upgrade offering `portforward.k8s.io`; resolves with the client once upgraded.
 * A refused upgrade rejects with the dialler's UpgradeRefusedError (its Status and HTTP code).
 */
export async function dialSpdyPortForward(
  opts: SpdyPortForwardClientOptions,
): Promise<SpdyPortForwardClient> {
  const { socket, head, protocol } = await dialSpdy(
    { url: opts.url, headers: opts.headers, tls: opts.tls, timeoutMs: opts.handshakeTimeoutMs },
    [PORT_FORWARD_PROTOCOL_V1],
  );
  if (protocol !== PORT_FORWARD_PROTOCOL_V1) {
    socket.destroy();
    throw new Error(
      `unable to negotiate protocol: client supports "${PORT_FORWARD_PROTOCOL_V1}", server returned "${protocol}"`,
    );
  }
  return new SpdyPortForwardClient(new SpdyConnection(socket, { role: 'client', head }));
}
