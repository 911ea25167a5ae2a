/**
 * One SPDY stream as a Node Duplex: writes become DATA frames, end() sends a FIN (half-close),
 * reads deliver the peer's DATA until its FIN.
 *
 * Mirrors moby/spdystream `stream.go`: a stream we open waits for the peer's SYN_REPLY before
 * sending data (`waitWriteReply`); a stream the peer opens is answered with SYN_REPLY (`SendReply`)
 * or refused with RST_STREAM (`Refuse`); `Close` is an empty DATA frame with FIN; `Reset` is a
 * RST_STREAM CANCEL.
 *
 * Differences:
 * - reading is backpressured: when the readable buffer is over its high-water mark the connection
 *   stops reading the socket until it drains (spdystream blocks a frame worker instead);
 * - an RST_STREAM from the peer or the end of the connection ends the readable side AFTER the data
 *   received before it (as spdystream's reader sees EOF after the queued frames), and writes from
 *   then on are discarded: the stream never emits 'error' on its own. `remoteEnd` says which of
 *   FIN, reset or connection loss ended it, so a client can tell a clean end from a lost one.
 */
import { Duplex } from 'node:stream';
import { RstStatus, SpdyError } from './errors.js';
import type { Frame } from './frames.js';
import { toSpdyHeaders, type HeaderInput, type SpdyHeaders } from './header-block.js';

/** What a stream needs from its connection. */
export interface StreamHost {
  /** Queues a frame in order; resolves once it is written (and the socket drained, if it had to). */
  sendFrame(frame: Frame): Promise<void>;
  readonly maxDataFrameSize: number;
  onReadBlocked(stream: SpdyStream): void;
  onReadResumed(stream: SpdyStream): void;
  /** Our side sent FIN, or the stream is gone: the connection may forget it. */
  onStreamStateChange(stream: SpdyStream): void;
}

export type RemoteEnd = 'fin' | 'reset' | 'closed';

/**
 * Besides the Duplex events: 'reply' (headers) when the peer answers a stream we opened, 'headers'
 * (headers) for a HEADERS frame, 'reset' (status) when the peer resets it.
 */
export class SpdyStream extends Duplex {
  /** How the peer's side ended: its FIN, its RST_STREAM, or the connection going away. */
  remoteEnd: RemoteEnd | undefined;
  /** The RST_STREAM status, when the peer reset the stream. */
  resetStatus: number | undefined;
  replyHeaders: SpdyHeaders | undefined;
  /** We sent FIN (or may not send at all: unidirectional from the peer). */
  localFin = false;
  /** Reset or orphaned: nothing more is sent on it. */
  private dead = false;
  private answered = false;
  private readonly ready: Promise<boolean>;
  private settleReady!: (ok: boolean) => void;

  constructor(
    private readonly host: StreamHost,
    readonly id: number,
    /** The headers of the SYN_STREAM that opened it. */
    readonly headers: SpdyHeaders,
    /** Who opened it. */
    readonly initiator: 'local' | 'remote',
    highWaterMark: number,
  ) {
    super({ highWaterMark, allowHalfOpen: true, decodeStrings: true });
    this.ready = new Promise((resolve) => (this.settleReady = resolve));
  }

  /** Answers a stream the peer opened (SYN_REPLY). */
  accept(headers: HeaderInput = {}): void {
    if (this.initiator !== 'remote' || this.answered || this.dead) return;
    const h = toSpdyHeaders(headers); // throws SpdyError INVALID_HEADER before anything is sent
    this.answered = true;
    void this.host.sendFrame({ type: 'SYN_REPLY', streamId: this.id, fin: false, headers: h });
    this.settleReady(true);
  }

  /** Refuses a stream the peer opened (RST_STREAM REFUSED_STREAM). */
  refuse(status: number = RstStatus.RefusedStream): void {
    if (this.initiator !== 'remote' || this.answered) return;
    this.answered = true;
    this.reset(status);
  }

  /** Resolves once the peer answered a stream we opened; rejects on refusal, loss or timeout. */
  waitReply(timeoutMs: number): Promise<void> {
    if (this.replyHeaders) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new SpdyError('TIMEOUT', `no reply to stream ${this.id} within ${timeoutMs} ms`, this.id)),
        timeoutMs,
      );
      void this.ready.then((ok) => {
        clearTimeout(timer);
        if (ok) resolve();
        else if (this.resetStatus !== undefined) {
          reject(
            new SpdyError(
              'STREAM_RESET',
              `stream ${this.id} reset by the peer (status ${this.resetStatus})`,
              this.id,
            ),
          );
        } else
          reject(
            new SpdyError(
              'CONNECTION_CLOSED',
              `connection closed before stream ${this.id} was answered`,
              this.id,
            ),
          );
      });
    });
  }

  /** Sends RST_STREAM and tears the stream down both ways. */
  reset(status: number = RstStatus.Cancel): void {
    if (this.dead) return;
    this.dead = true;
    void this.host.sendFrame({ type: 'RST_STREAM', streamId: this.id, status });
    this.endRemote('reset');
    this.settleReady(false);
    this.host.onStreamStateChange(this);
  }

  /** True once the stream is finished both ways (or dead); the connection then forgets it. */
  get isDone(): boolean {
    return (this.localFin || this.dead) && this.remoteEnd !== undefined;
  }

  // --- called by the connection ---------------------------------------------------------------

  /** @internal The peer's SYN_REPLY for a stream we opened. */
  onReply(headers: SpdyHeaders): void {
    if (this.replyHeaders) return;
    this.replyHeaders = headers;
    this.settleReady(true);
    this.emit('reply', headers);
  }

  /** @internal DATA from the peer. */
  onData(data: Buffer): void {
    if (this.remoteEnd || this.destroyed || data.length === 0) return;
    if (!this.push(data)) this.host.onReadBlocked(this);
  }

  /** @internal The peer's FIN. */
  onRemoteFin(): void {
    this.endRemote('fin');
  }

  /** @internal The peer's RST_STREAM. */
  onReset(status: number): void {
    if (this.remoteEnd === undefined) this.resetStatus = status;
    this.dead = true;
    this.endRemote('reset');
    this.settleReady(false);
    if (this.resetStatus !== undefined) this.emit('reset', status);
  }

  /** @internal The connection is gone. */
  onConnectionClosed(): void {
    this.dead = true;
    this.endRemote('closed');
    this.settleReady(false);
  }

  /** @internal Set up from SYN_STREAM flags: FIN (peer sends nothing), unidirectional (we send nothing). */
  initFlags(remoteFin: boolean, noLocalSide: boolean): void {
    if (noLocalSide) this.localFin = true;
    if (remoteFin) this.endRemote('fin');
  }

  // --- Duplex ---------------------------------------------------------------------------------

  override _read(): void {
    this.host.onReadResumed(this);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    void this.ready.then(async (ok) => {
      if (!ok || this.dead || this.localFin) return cb(); // discarded: see the module comment
      const max = this.host.maxDataFrameSize;
      let last: Promise<void> = Promise.resolve();
      for (let at = 0; at < chunk.length; at += max) {
        last = this.host.sendFrame({
          type: 'DATA',
          streamId: this.id,
          fin: false,
          data: chunk.subarray(at, at + max),
        });
      }
      await last;
      cb();
    });
  }

  override _final(cb: (err?: Error | null) => void): void {
    void this.ready.then(async (ok) => {
      if (ok && !this.dead && !this.localFin) {
        this.localFin = true;
        const sent = this.host.sendFrame({
          type: 'DATA',
          streamId: this.id,
          fin: true,
          data: Buffer.alloc(0),
        });
        this.host.onStreamStateChange(this);
        await sent;
      }
      cb();
    });
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // Going away before both sides finished: tell the peer (spdystream's Reset).
    if (!this.isDone && !this.dead) this.reset(RstStatus.Cancel);
    this.host.onReadResumed(this);
    this.host.onStreamStateChange(this);
    cb(err);
  }

  private endRemote(how: RemoteEnd): void {
    if (this.remoteEnd !== undefined) return;
    this.remoteEnd = how;
    if (!this.destroyed) this.push(null);
    this.host.onStreamStateChange(this);
  }
}
