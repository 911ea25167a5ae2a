/**
 * The server end of a SPDY/3.1 port-forward (`portforward.k8s.io`): one upgraded connection that
 * carries any number of forwarded TCP connections, each as a pair of streams the client opens —
 * `streamType: error` and `streamType: data`, both with headers `port` and `requestID`.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/portforward/httpstream.go` (handleHttpStreams,
 * httpStreamHandler: every stream is answered; streams are paired by requestID, or for clients
 * that send none by stream id — error = id, data = id + 2; a pair not complete within the stream
 * creation timeout gets "timed out waiting for streams" on its error stream; a duplicate or unknown
 * stream type is reported on the pair's error stream). The caller gets each complete pair and
 * forwards it; this module does not dial.
 * Differences: the number of half-open pairs is bounded (MAX_PENDING_PAIRS); a pair whose `port`
 * header does not parse is answered on its error stream here rather than by the forwarder.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { SpdyConnection, type CloseReason, type SpdyConnectionOptions } from '../spdy/connection.js';
import { headerValue } from '../spdy/header-block.js';
import type { SpdyStream } from '../spdy/stream.js';
import { DEFAULT_STREAM_CREATION_TIMEOUT_MS, acceptSpdyUpgrade } from '../spdy/upgrade.js';
import {
  HEADER_PORT,
  HEADER_REQUEST_ID,
  HEADER_STREAM_TYPE,
  parsePort,
  PORT_FORWARD_PROTOCOL_V1,
  STREAM_TYPE_DATA,
  STREAM_TYPE_ERROR,
} from './protocol.js';
import type { PortStreams } from './websocket-server.js';

/** Pairs waiting for their second stream; beyond this, new pairs are refused. */
export const MAX_PENDING_PAIRS = 128;

export interface SpdyPortForwardOptions {
  /** How long the second stream of a pair may take (kubelet: 30 s). */
  streamCreationTimeoutMs?: number;
  connection?: Omit<SpdyConnectionOptions, 'role' | 'head'>;
}

export interface SpdyPortStreams extends PortStreams {
  requestId: string;
  data: SpdyStream;
  error: SpdyStream;
}

interface PendingPair {
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

interface SessionEvents {
  /** A complete pair: forward `data` to `port`, write failures on `error`, end both when done. */
  pair: [pair: SpdyPortStreams];
  close: [reason: CloseReason];
}

/**
 * Completes the upgrade. Refusals (not a SPDY upgrade, no or no common protocol version) are a
 * Status written to the socket, and undefined.
 */
export function acceptSpdyPortForward(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  opts: SpdyPortForwardOptions = {},
): SpdyPortForwardSession | undefined {
  if (!acceptSpdyUpgrade(req, socket, [PORT_FORWARD_PROTOCOL_V1])) return undefined;
  const conn = new SpdyConnection(socket, { ...opts.connection, role: 'server', head });
  return new SpdyPortForwardSession(conn, opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS);
}

export class SpdyPortForwardSession extends EventEmitter<SessionEvents> {
  private readonly pending = new Map<string, PendingPair>();

  constructor(
    readonly conn: SpdyConnection,
    private readonly creationTimeoutMs: number,
  ) {
    super();
    conn.on('stream', (s) => this.onStream(s));
    conn.on('close', (reason) => {
      for (const p of this.pending.values()) clearTimeout(p.timer);
      this.pending.clear();
      this.emit('close', reason);
    });
  }

  close(): Promise<CloseReason> {
    return this.conn.close();
  }

  private onStream(s: SpdyStream): void {
    const type = headerValue(s.headers, HEADER_STREAM_TYPE) ?? '';
    let requestId = headerValue(s.headers, HEADER_REQUEST_ID) ?? '';
    if (!requestId) {
      // Clients before Kubernetes 1.6 send no requestID: best effort, as upstream (consecutive ids).
      if (type === STREAM_TYPE_ERROR) requestId = String(s.id);
      else if (type === STREAM_TYPE_DATA) requestId = String(s.id - 2);
    }
    s.accept();
    let pair = this.pending.get(requestId);
    if (!pair) {
      if (this.pending.size >= MAX_PENDING_PAIRS) {
        s.reset();
        return;
      }
      const created: PendingPair = {
        timer: setTimeout(() => this.expire(requestId, created), this.creationTimeoutMs),
      };
      pair = created;
      this.pending.set(requestId, pair);
    }
    const problem = (msg: string): void => {
      const text = `error processing stream for request ${requestId}: ${msg}`;
      if (pair.error && !pair.error.writableEnded) pair.error.write(text);
      s.resume(); // drained and ignored, so it cannot stall the connection
      s.end();
    };
    if (type === STREAM_TYPE_ERROR) {
      if (pair.error) return problem('error stream already assigned');
      pair.error = s;
      s.resume(); // clients write nothing here; drain anyway
    } else if (type === STREAM_TYPE_DATA) {
      if (pair.data) return problem('data stream already assigned');
      pair.data = s;
    } else {
      return problem(`unexpected stream type "${type}"`);
    }
    if (pair.data && pair.error) {
      clearTimeout(pair.timer);
      this.pending.delete(requestId);
      const { data, error } = pair;
      let port: number;
      try {
        port = parsePort(headerValue(data.headers, HEADER_PORT) ?? '');
      } catch (err) {
        error.end(`error forwarding port to request ${requestId}: ${(err as Error).message}`);
        data.end();
        return;
      }
      this.emit('pair', { requestId, port, data, error });
    }
  }

  private expire(requestId: string, pair: PendingPair): void {
    if (this.pending.get(requestId) !== pair) return;
    this.pending.delete(requestId);
    pair.error?.end(`timed out waiting for streams (request ${requestId})`);
    pair.data?.reset();
  }
}
