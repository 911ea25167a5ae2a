/**
 * A SPDY/3.1 connection over any Duplex (a hijacked HTTP socket, usually): opens and accepts
 * streams, answers PINGs, sends GOAWAY when it closes and honours the peer's.
 *
 * Mirrors moby/spdystream `connection.go` (stream ids: odd from the client, even from the server;
 * PING ids likewise; GOAWAY with the last stream id accepted) and apimachinery
 * `pkg/util/httpstream/spdy/connection.go` (a stream the handler accepts gets an empty SYN_REPLY;
 * one it rejects gets RST_STREAM).
 *
 * Differences:
 * - like spdystream, no flow control: WINDOW_UPDATE is ignored and never sent, SETTINGS are read
 *   and ignored. Backpressure instead: the socket is paused while any stream's readable buffer is
 *   over its high-water mark (or the parser is behind), and writers wait for 'drain' whenever
 *   socket.write() returns false;
 * - DATA is sent in frames of at most `maxDataFrameSize` bytes, so one stream's big write does not
 *   hold the others back for long;
 * - the number of streams the peer may have open is bounded (RST_STREAM REFUSED_STREAM beyond);
 * - a malformed frame or a broken session rule ends the connection with GOAWAY PROTOCOL_ERROR and
 *   a 'close' event carrying the SpdyError; the connection never emits 'error';
 * - DATA for a stream that never existed is answered with RST_STREAM INVALID_STREAM and reported
 *   as 'streamError'; DATA for one that existed and is gone is dropped (it may have crossed our RST);
 * - control frames are bounded as Go's x/net/http2 server bounds them (control-frames.ts: ping
 *   and unknown-stream floods get the socket paused, then GOAWAY). SETTINGS, RST_STREAM and
 *   WINDOW_UPDATE need no answer in SPDY/3 (HTTP/2 ACKs SETTINGS, CVE-2019-9515), so floods of
 *   those cost time, never memory;
 * - closing is a lingering close (nginx `lingering_close`): FIN after everything queued, then the
 *   socket is read, and dropped, until the peer's FIN; it is destroyed only then, or after
 *   `closeTimeoutMs` (30 s, nginx's `lingering_time`; upstream spdystream waits 5 s). Destroying it
 *   earlier would answer the peer's next bytes (kubectl pings every 5 s) with an RST, which
 *   discards what the kernel still had to deliver. A peer that broke the protocol or flooded gets
 *   one second to read its GOAWAY.
 */
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { GoAwayStatus, RstStatus, SpdyError } from './errors.js';
import {
  ControlFrameBudget,
  DEFAULT_CONTROL_FRAME_LIMITS,
  type ControlFrameLimits,
} from './control-frames.js';
import { FrameParser, type FrameLimits } from './frame-parser.js';
import { dataFrameHead, FrameEncoder, MAX_STREAM_ID, type Frame, type SettingsFrame } from './frames.js';
import { toSpdyHeaders, type HeaderInput } from './header-block.js';
import { SpdyStream, type StreamHost } from './stream.js';

export interface SpdyConnectionOptions {
  /** 'client' opens odd-numbered streams, 'server' even-numbered ones. */
  role: 'client' | 'server';
  /** Bytes already read from the socket past the HTTP upgrade (Node's `head`). */
  head?: Buffer;
  /** Parser bounds; see frame-parser.ts for the defaults. */
  limits?: Partial<FrameLimits>;
  /** Most streams the peer may have open at once. */
  maxConcurrentStreams?: number;
  /** Largest DATA frame we send. */
  maxDataFrameSize?: number;
  /** Readable high-water mark of each stream: beyond it the socket is paused. */
  streamHighWaterMark?: number;
  /** After our GOAWAY and end(), how long the peer has to read what is left and close before the socket is destroyed. */
  closeTimeoutMs?: number;
  /** The control-frame budget (control-frames.ts). */
  controlFrames?: Partial<ControlFrameLimits>;
}

export interface CloseReason {
  /** Who ended it: we did (close(), a protocol error of the peer's), or the peer (GOAWAY, socket end). */
  by: 'local' | 'remote';
  message: string;
  /** Set when the connection ended because of an error. */
  error?: SpdyError;
}

interface ConnectionEvents {
  /** The peer opened a stream: call accept() or refuse() on it. Refused when nobody listens. */
  stream: [stream: SpdyStream];
  /** A stream-level problem the connection survived (already answered with RST_STREAM). */
  streamError: [err: SpdyError];
  goaway: [lastGoodStreamId: number, status: number];
  settings: [frame: SettingsFrame];
  close: [reason: CloseReason];
}

const DEFAULTS = {
  maxConcurrentStreams: 256,
  // One pipe or socket read (Node reads 64 KiB at a time) is one frame: one writev per read.
  maxDataFrameSize: 64 * 1024,
  streamHighWaterMark: 64 * 1024,
  closeTimeoutMs: 30_000, // nginx's lingering_time
};

/** How long a peer that broke the protocol (or flooded) has to read our GOAWAY. */
const FAILED_LINGER_MS = 1000;

export class SpdyConnection extends EventEmitter<ConnectionEvents> implements StreamHost {
  readonly maxDataFrameSize: number;
  private readonly opts: typeof DEFAULTS;
  private readonly streams = new Map<number, SpdyStream>();
  private readonly encoder = new FrameEncoder();
  private readonly parser: FrameParser;
  private drainWaiters: (() => void)[] = [];
  private readonly blocked = new Set<SpdyStream>();
  private parserBehind = false;
  private readonly controlFrames: ControlFrameBudget;
  private corked = false;
  private corkedDone: (() => void)[] = [];
  private nextLocalId: number;
  private lastRemoteId = 0;
  private nextPingId: number;
  private readonly pings = new Map<number, { resolve: (ms: number) => void; reject: (e: Error) => void }>();
  private goingAway = false; // either side sent GOAWAY: no new streams
  private goAwaySent = false;
  private closing = false; // teardown started
  private closeReason: CloseReason | undefined;
  private pendingReason: CloseReason | undefined;
  private readonly closed: Promise<CloseReason>;

  constructor(
    private readonly socket: Duplex,
    options: SpdyConnectionOptions,
  ) {
    super();
    this.opts = {
      maxConcurrentStreams: options.maxConcurrentStreams ?? DEFAULTS.maxConcurrentStreams,
      maxDataFrameSize: options.maxDataFrameSize ?? DEFAULTS.maxDataFrameSize,
      streamHighWaterMark: options.streamHighWaterMark ?? DEFAULTS.streamHighWaterMark,
      closeTimeoutMs: options.closeTimeoutMs ?? DEFAULTS.closeTimeoutMs,
    };
    this.maxDataFrameSize = this.opts.maxDataFrameSize;
    this.controlFrames = new ControlFrameBudget(
      { ...DEFAULT_CONTROL_FRAME_LIMITS, ...options.controlFrames },
      (err) => this.fail(err),
      () => this.updateFlow(),
    );
    this.nextLocalId = options.role === 'client' ? 1 : 2;
    this.nextPingId = options.role === 'client' ? 1 : 2;
    this.closed = new Promise((resolve) => this.once('close', resolve));

    this.parser = new FrameParser((f) => this.onFrame(f), options.limits);
    this.parser.on('error', (err: SpdyError) => this.fail(err));
    socket.on('data', (chunk: Buffer) => this.onSocketData(chunk));
    socket.on('drain', () => this.releaseDrainWaiters());
    // The peer's end (or the socket's loss) takes effect once the parser has handed over every
    // frame received before it.
    const parserDone = new Promise<void>((resolve) => this.parser.once('close', resolve));
    const endOfInput = (reason: CloseReason): void => {
      this.pendingReason ??= reason;
      if (!this.parser.writableEnded && !this.parser.destroyed) this.parser.end();
      void parserDone.then(() => this.teardown(this.pendingReason!));
    };
    socket.on('end', () => endOfInput({ by: 'remote', message: 'connection closed by the peer' }));
    socket.on('error', (err: Error) =>
      endOfInput({
        by: 'remote',
        message: `connection error: ${err.message}`,
        error: asConnectionError(err),
      }),
    );
    socket.on('close', () => {
      endOfInput({ by: 'remote', message: 'connection closed' });
      void parserDone.then(() => this.emit('close', this.closeReason!));
    });
    if (options.head?.length) this.onSocketData(options.head);
    this.updateFlow(); // the socket may come paused (after reading the HTTP head)
  }

  get isClosed(): boolean {
    return this.closing;
  }

  /** Number of streams not yet finished both ways. */
  get streamCount(): number {
    return this.streams.size;
  }

  /** Opens a stream (SYN_STREAM). Throws SpdyError CONNECTION_CLOSED after GOAWAY, INVALID_HEADER. */
  createStream(
    headers: HeaderInput,
    opts: { fin?: boolean; unidirectional?: boolean; priority?: number } = {},
  ): SpdyStream {
    if (this.goingAway || this.closing) throw new SpdyError('CONNECTION_CLOSED', 'connection is going away');
    const h = toSpdyHeaders(headers);
    const id = this.nextLocalId;
    if (id > MAX_STREAM_ID) throw new SpdyError('CONNECTION_CLOSED', 'stream ids exhausted');
    this.nextLocalId += 2;
    const stream = new SpdyStream(this, id, h, 'local', this.opts.streamHighWaterMark);
    this.streams.set(id, stream);
    void this.sendFrame({
      type: 'SYN_STREAM',
      streamId: id,
      associatedToStreamId: 0,
      priority: opts.priority ?? 0,
      slot: 0,
      fin: !!opts.fin,
      unidirectional: !!opts.unidirectional,
      headers: h,
    });
    stream.initFlags(!!opts.unidirectional, !!opts.fin);
    return stream;
  }

  /** Sends a PING and resolves with the round trip in milliseconds. */
  ping(timeoutMs = 30_000): Promise<number> {
    if (this.closing) return Promise.reject(new SpdyError('CONNECTION_CLOSED', 'connection closed'));
    const id = this.nextPingId;
    this.nextPingId = id + 2 > 0xffffffff ? id % 2 || 2 : id + 2;
    const start = performance.now();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pings.delete(id);
        reject(new SpdyError('TIMEOUT', `no answer to PING ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      const settle =
        <T>(fn: (v: T) => void) =>
        (v: T) => {
          clearTimeout(timer);
          this.pings.delete(id);
          fn(v);
        };
      this.pings.set(id, {
        resolve: settle(() => resolve(performance.now() - start)),
        reject: settle(reject),
      });
      void this.sendFrame({ type: 'PING', id });
    });
  }

  /**
   * Closes gracefully: GOAWAY (after every frame already queued), then the socket is ended and
   * every stream ends. Resolves with the reason once the socket is closed.
   */
  close(): Promise<CloseReason> {
    if (!this.closing && !this.goAwaySent) {
      this.goingAway = true;
      this.goAwaySent = true;
      const goaway = this.sendFrame({
        type: 'GOAWAY',
        lastGoodStreamId: this.lastRemoteId,
        status: GoAwayStatus.Ok,
      });
      void goaway.then(() => this.teardown({ by: 'local', message: 'connection closed' }));
    }
    return this.closed;
  }

  // --- StreamHost -------------------------------------------------------------------------------

  sendFrame(frame: Frame): Promise<void> {
    if (this.closing) return Promise.resolve();
    let bytes: Buffer | [Buffer, Buffer];
    try {
      bytes =
        frame.type === 'DATA' && frame.data.length > 0
          ? [dataFrameHead(frame.streamId, frame.data.length, frame.fin), frame.data]
          : this.encoder.encode(frame);
    } catch (err) {
      // Only a bug of ours can get here (callers validate what users pass): fail loudly but
      // without an unhandled rejection.
      this.fail(err instanceof SpdyError ? err : new SpdyError('PROTOCOL_ERROR', String(err)));
      return Promise.resolve();
    }
    const control = frame.type !== 'DATA';
    if (control && !this.controlFrames.add()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = control
        ? (): void => {
            this.controlFrames.taken();
            resolve();
          }
        : resolve;
      this.write(bytes, control, done);
    });
  }

  onReadBlocked(stream: SpdyStream): void {
    this.blocked.add(stream);
    this.updateFlow();
  }

  onReadResumed(stream: SpdyStream): void {
    if (this.blocked.delete(stream)) this.updateFlow();
  }

  onStreamStateChange(stream: SpdyStream): void {
    if (!stream.isDone || this.streams.get(stream.id) !== stream) return;
    this.streams.delete(stream.id);
    // After a GOAWAY either way, the connection ends once its last stream is done.
    if (this.goingAway && this.streams.size === 0) void this.close();
  }

  // --- writing ----------------------------------------------------------------------------------

  /**
   * Writes one frame's bytes (a DATA frame as its head and its payload, never joined); `done` runs
   * once the socket has taken them.
   */
  private write(bytes: Buffer | [Buffer, Buffer], control: boolean, done: () => void): void {
    if (this.socket.destroyed || !this.socket.writable) return done();
    // Only DATA corks: control frames alone (a burst of PING answers) go out as they come, as
    // the flood accounting (control-frames.ts) expects.
    if (!control) this.cork();
    const ok = Buffer.isBuffer(bytes) ? this.socket.write(bytes) : this.writeParts(bytes);
    // "Written" means handed to the socket: for DATA after the uncork, not while the cork holds
    // it (a caller may destroy the socket once its write is done).
    if (!ok) this.drainWaiters.push(done);
    else if (control) done();
    else this.corkedDone.push(done);
  }

  private writeParts([head, payload]: [Buffer, Buffer]): boolean {
    this.socket.write(head);
    return this.socket.write(payload);
  }

  /**
   * DATA frames queued in one tick (the frames of a write larger than one, a stream's last DATA and
   * the exit status) leave in one writev: the socket is corked until the tick's end. On loopback
   * every write is a trip through the whole TCP stack, so fewer and larger writes are most of the cost.
   */
  private cork(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    process.nextTick(() => {
      this.corked = false;
      this.socket.uncork();
      const done = this.corkedDone;
      this.corkedDone = [];
      for (const d of done) d();
    });
  }

  private releaseDrainWaiters(): void {
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  // --- reading ----------------------------------------------------------------------------------

  private onSocketData(chunk: Buffer): void {
    if (this.closing) return;
    if (!this.parser.write(chunk) && !this.parserBehind) {
      this.parserBehind = true;
      this.updateFlow();
      this.parser.once('drain', () => {
        this.parserBehind = false;
        this.updateFlow();
      });
    }
  }

  private updateFlow(): void {
    if (this.closing) return;
    if (this.blocked.size > 0 || this.parserBehind || this.controlFrames.behind) this.socket.pause();
    else this.socket.resume();
  }

  private onFrame(f: Frame): void {
    if (this.closing) return;
    switch (f.type) {
      case 'SYN_STREAM':
        return this.onSynStream(f);
      case 'SYN_REPLY': {
        const s = this.streams.get(f.streamId);
        if (s?.initiator === 'local') {
          s.onReply(f.headers);
          if (f.fin) s.onRemoteFin();
        } else if (!s) this.unknownStream(f.streamId, 'SYN_REPLY');
        return;
      }
      case 'HEADERS': {
        const s = this.streams.get(f.streamId);
        if (s) {
          s.emit('headers', f.headers);
          if (f.fin) s.onRemoteFin();
        } else this.unknownStream(f.streamId, 'HEADERS');
        return;
      }
      case 'DATA':
        return this.onData(f.streamId, f.data, f.fin);
      case 'RST_STREAM':
        this.streams.get(f.streamId)?.onReset(f.status);
        return;
      case 'SETTINGS':
        this.emit('settings', f);
        return;
      case 'PING':
        if ((f.id & 1) !== (this.nextPingId & 1))
          void this.sendFrame(f); // the peer's: echo it
        else this.pings.get(f.id)?.resolve(0);
        return;
      case 'GOAWAY':
        return this.onGoAway(f.lastGoodStreamId, f.status);
      case 'WINDOW_UPDATE':
        return; // no flow control, as spdystream
    }
  }

  private onSynStream(f: Extract<Frame, { type: 'SYN_STREAM' }>): void {
    if (this.goingAway) return; // after GOAWAY new streams are ignored (spdystream checkStreamFrame)
    const remoteParity = this.nextLocalId % 2 === 1 ? 0 : 1;
    if (f.streamId % 2 !== remoteParity || f.streamId <= this.lastRemoteId) {
      this.fail(
        new SpdyError('PROTOCOL_ERROR', `SYN_STREAM with unexpected stream id ${f.streamId}`, f.streamId),
      );
      return;
    }
    this.lastRemoteId = f.streamId;
    let open = 0;
    for (const s of this.streams.values()) if (s.initiator === 'remote') open++;
    const stream = new SpdyStream(this, f.streamId, f.headers, 'remote', this.opts.streamHighWaterMark);
    this.streams.set(f.streamId, stream);
    stream.initFlags(f.fin, f.unidirectional);
    if (open >= this.opts.maxConcurrentStreams) {
      stream.refuse(RstStatus.RefusedStream);
      this.emit(
        'streamError',
        new SpdyError(
          'TOO_MANY_STREAMS',
          `more than ${this.opts.maxConcurrentStreams} concurrent streams`,
          f.streamId,
        ),
      );
      return;
    }
    if (this.listenerCount('stream') === 0) stream.refuse();
    else this.emit('stream', stream);
  }

  private onData(streamId: number, data: Buffer, fin: boolean): void {
    const s = this.streams.get(streamId);
    if (!s) {
      this.unknownStream(streamId, 'DATA');
      return;
    }
    if (s.remoteEnd !== undefined) {
      s.reset(RstStatus.StreamAlreadyClosed);
      this.emit(
        'streamError',
        new SpdyError('STREAM_ALREADY_CLOSED', `DATA after FIN on stream ${streamId}`, streamId),
      );
      return;
    }
    s.onData(data);
    if (fin) s.onRemoteFin();
  }

  /** A frame for a stream we do not have: dropped if it existed once, RST INVALID_STREAM if never. */
  private unknownStream(streamId: number, what: string): void {
    const ours = streamId % 2 === this.nextLocalId % 2;
    const existed = ours ? streamId < this.nextLocalId : streamId <= this.lastRemoteId;
    if (existed) return;
    void this.sendFrame({ type: 'RST_STREAM', streamId, status: RstStatus.InvalidStream });
    this.emit(
      'streamError',
      new SpdyError('UNKNOWN_STREAM', `${what} for unknown stream ${streamId}`, streamId),
    );
  }

  private onGoAway(lastGoodStreamId: number, status: number): void {
    this.goingAway = true;
    // Streams we opened after the last one the peer accepted were never seen by it.
    for (const s of [...this.streams.values()]) {
      if (s.initiator === 'local' && s.id > lastGoodStreamId) s.onConnectionClosed();
    }
    this.emit('goaway', lastGoodStreamId, status);
    if (this.streams.size === 0) void this.close();
  }

  // --- teardown ---------------------------------------------------------------------------------

  /** A protocol error: GOAWAY PROTOCOL_ERROR straight away, then teardown. */
  private fail(err: SpdyError): void {
    if (this.closing) return;
    if (this.socket.writable && !this.socket.destroyed) {
      const goaway = this.encoder.encode({
        type: 'GOAWAY',
        lastGoodStreamId: this.lastRemoteId,
        status: GoAwayStatus.ProtocolError,
      });
      this.socket.write(goaway);
    }
    this.teardown({ by: 'local', message: `protocol error: ${err.message}`, error: err }, FAILED_LINGER_MS);
  }

  private teardown(reason: CloseReason, lingerMs = this.opts.closeTimeoutMs): void {
    if (this.closing) return;
    this.closing = true;
    this.closeReason = reason;
    for (const s of this.streams.values()) s.onConnectionClosed();
    this.streams.clear();
    this.blocked.clear();
    for (const p of this.pings.values()) p.reject(new SpdyError('CONNECTION_CLOSED', 'connection closed'));
    this.releaseDrainWaiters();
    this.encoder.close();
    this.parser.destroy();
    this.controlFrames.clear();
    lingeringClose(this.socket, lingerMs);
  }
}

/**
 * Half-closes `socket` (FIN after everything written) and keeps reading it, dropping the bytes,
 * until the peer closes too; then destroys it. A peer that has not closed after `lingerMs` is cut
 * off (nginx's `lingering_time`).
 */
function lingeringClose(socket: Duplex, lingerMs: number): void {
  if (socket.destroyed) return;
  const timer = setTimeout(() => socket.destroy(), lingerMs);
  timer.unref?.();
  socket.once('close', () => clearTimeout(timer));
  // Ended both ways: our FIN went out after everything, and the peer sends nothing more.
  const done = (): void => {
    if (socket.readableEnded && socket.writableFinished) socket.destroy();
  };
  socket.once('end', done);
  socket.once('finish', done);
  socket.resume();
  socket.end();
}

function asConnectionError(err: Error): SpdyError {
  return new SpdyError('CONNECTION_CLOSED', err.message);
}
