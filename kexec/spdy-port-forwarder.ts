/**
 * Port-forward over SPDY/3.1: one upgraded connection for the whole `kexec port-forward`, and per
 * local TCP connection an `error` stream and a `data` stream.
 *
 * Mirrors client-go `tools/portforward/portforward.go` (ForwardPorts dials once with
 * `X-Stream-Protocol-Version: portforward.k8s.io`; handleConnection: request ids from 0, the
 * error stream opened first and half-closed at once, then the data stream, both with headers
 * `streamType`, `port`, `requestID`; copy both ways, FIN the data stream when the local side
 * ends, reset it once the remote side is done, then read the error stream to its end) and
 * `transport/spdy` (a POST upgrade).
 *
 * Difference, on purpose (kubectl #1169, kubernetes#74551): an error on one connection is
 * reported and that connection closed, but the SPDY connection stays up (upstream closes it, and
 * kubectl then exits with "lost connection to pod"); and if the connection is lost anyway, the
 * next local connection dials a new one.
 */
import type { Duplex } from 'node:stream';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import { SpdyConnection } from '../shared/spdy/connection.js';
import { dialSpdy, type SpdyDialOptions } from '../shared/spdy/dial.js';
import type { SpdyStream } from '../shared/spdy/stream.js';
import { DEFAULT_STREAM_CREATION_TIMEOUT_MS } from '../shared/spdy/upgrade.js';
import {
  HEADER_PORT,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  PORT_FORWARD_PROTOCOL_V1,
  STREAM_TYPE_DATA,
  STREAM_TYPE_ERROR,
} from '../shared/portforward/protocol.js';
import { ApiStatusError } from './errors.js';

const MAX_ERROR_TEXT = 64 * 1024;

/** Reads a stream to its end, keeping at most `limit` bytes. */
function readAll(stream: SpdyStream, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (c: Buffer) => {
    if (size + c.length <= limit) chunks.push(c);
    size += c.length;
  });
  return new Promise((resolve) => stream.once('end', () => resolve(Buffer.concat(chunks).toString('utf8'))));
}

export class SpdyPortForwarder {
  private conn: SpdyConnection | undefined;
  private dialing: Promise<SpdyConnection> | undefined;
  private nextRequestId = 0;
  private stopped = false;

  constructor(
    private readonly opts: SpdyDialOptions & { streamCreationTimeoutMs?: number },
    /** Told when a connection is lost (not when we close it). */
    private readonly onLost: (message: string) => void = () => {},
  ) {}

  /** Dials now (kubectl dials before it listens, so a refused upgrade fails the command). */
  async connect(): Promise<void> {
    await this.connection();
  }

  private connection(): Promise<SpdyConnection> {
    if (this.conn && !this.conn.isClosed) return Promise.resolve(this.conn);
    this.dialing ??= (async () => {
      try {
        let dialed;
        try {
          dialed = await dialSpdy(this.opts, [PORT_FORWARD_PROTOCOL_V1]);
        } catch (err) {
          throw err instanceof UpgradeRefusedError
            ? new ApiStatusError(err.status, err.httpCode)
            : new Error(`error upgrading connection: ${(err as Error).message}`);
        }
        if (dialed.protocol !== PORT_FORWARD_PROTOCOL_V1) {
          dialed.socket.destroy();
          throw new Error(
            `unable to negotiate protocol: client supports "${PORT_FORWARD_PROTOCOL_V1}", server returned "${dialed.protocol}"`,
          );
        }
        const conn = new SpdyConnection(dialed.socket, { role: 'client', head: dialed.head });
        conn.once('close', (reason) => {
          if (this.conn === conn) this.conn = undefined;
          if (!this.stopped && reason.by === 'remote')
            this.onLost(`lost connection to pod: ${reason.message}`);
        });
        if (this.stopped) {
          await conn.close();
          throw new Error('port-forward stopped');
        }
        this.conn = conn;
        return conn;
      } finally {
        this.dialing = undefined;
      }
    })();
    return this.dialing;
  }

  /**
   * Forwards one local connection to `remotePort`; resolves when it is over, with the text of the
   * error stream (empty when none). Rejects when the streams could not be opened.
   */
  async forward(local: Duplex, remotePort: number): Promise<string> {
    // Listen from the start: the local side may go away while the streams are being opened.
    const localGone = new Promise<void>((resolve) => {
      if (local.destroyed) resolve();
      else local.once('close', resolve);
    });
    const conn = await this.connection();
    const headers = {
      [HEADER_STREAM_TYPE]: STREAM_TYPE_ERROR,
      [HEADER_PORT]: String(remotePort),
      [HEADER_REQUEST_ID]: String(this.nextRequestId++),
    };
    const errorStream = conn.createStream(headers);
    errorStream.end(); // we never write on it
    const errorText = readAll(errorStream, MAX_ERROR_TEXT);
    const data = conn.createStream({ ...headers, [HEADER_STREAM_TYPE]: STREAM_TYPE_DATA });
    const timeout = this.opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS;
    try {
      await Promise.all([errorStream.waitReply(timeout), data.waitReply(timeout)]);
    } catch (err) {
      errorStream.destroy();
      data.destroy();
      throw err;
    }

    const remoteDone = new Promise<void>((resolve) => data.once('end', resolve));
    // Remote → local: the peer's FIN ends our local writable side (the client sees EOF).
    data.pipe(local);
    // Local → remote: the local EOF becomes our FIN on the data stream.
    local.pipe(data);
    local.on('error', () => data.reset());
    await Promise.race([remoteDone, localGone]);
    // Anything we still had to send is of no use now (upstream resets the data stream here too).
    if (!data.localFin) data.reset();
    local.unpipe(data);
    return errorText;
  }

  /** Closes the SPDY connection; later forward() calls fail. */
  async close(): Promise<void> {
    this.stopped = true;
    await this.conn?.close();
  }
}
