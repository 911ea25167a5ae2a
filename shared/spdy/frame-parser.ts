/**
 * The incremental SPDY/3.1 frame decoder: a Writable fed the connection's bytes in chunks of any
 * size, handing each decoded frame to a callback in wire order.
 *
 * Mirrors moby/spdystream `spdy/read.go` (`ReadFrame` and the per-type `read` methods), turned
 * from blocking reads into a small state machine the way ws's `receiver.js` is.
 *
 * Differences, all of them bounds (CVE-2026-35469: spdystream trusted the count and length fields):
 * - a control frame's length is checked against `maxControlFrameLength` before its body is
 *   buffered, and against its type's fixed size (RST_STREAM 8, PING 4, GOAWAY 8 …);
 * - SETTINGS entry counts, header counts, name/value sizes and the decompressed block size have
 *   limits; the count fields must agree with the frame length;
 * - DATA payloads are never buffered whole: pieces are handed over as they arrive (`more` set on
 *   all but the last), so a 16 MiB frame costs no 16 MiB allocation;
 * - unknown control frame types are skipped, as the SPDY/3 draft asks (spdystream fails them).
 * Every violation destroys the parser with a SpdyError; nothing else is ever thrown.
 */
import { Writable } from 'node:stream';
import { SpdyError } from './errors.js';
import {
  ControlType,
  FLAG_CLEAR_SETTINGS,
  FLAG_FIN,
  FLAG_UNIDIRECTIONAL,
  MAX_FRAME_LENGTH,
  MAX_STREAM_ID,
  SPDY_VERSION,
  type Frame,
} from './frames.js';
import {
  DEFAULT_HEADER_LIMITS,
  HeaderDecompressor,
  parseHeaderBlock,
  type HeaderLimits,
  type SpdyHeaders,
} from './header-block.js';
import { errorMessage } from '../logging.js';

export interface FrameLimits extends HeaderLimits {
  /** Longest control frame payload accepted (header blocks travel compressed inside). */
  maxControlFrameLength: number;
  /** Longest DATA frame payload accepted (never buffered whole). */
  maxDataFrameLength: number;
  /** Most entries one SETTINGS frame may carry (there are 8 settings ids). */
  maxSettingsEntries: number;
}

export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = {
  ...DEFAULT_HEADER_LIMITS,
  maxControlFrameLength: 64 * 1024,
  maxDataFrameLength: MAX_FRAME_LENGTH,
  maxSettingsEntries: 32,
};

/** Exact payload sizes of the fixed-size control frames. */
const FIXED_LENGTH: Partial<Record<number, number>> = {
  [ControlType.RstStream]: 8,
  [ControlType.Ping]: 4,
  [ControlType.GoAway]: 8,
  [ControlType.WindowUpdate]: 8,
};

/** Smallest payloads of the variable-size ones (the fixed fields before the header block). */
const MIN_LENGTH: Partial<Record<number, number>> = {
  [ControlType.SynStream]: 10,
  [ControlType.SynReply]: 4,
  [ControlType.Headers]: 4,
  [ControlType.Settings]: 4,
};

type State =
  | { kind: 'head' }
  | { kind: 'control'; type: number; flags: number; length: number }
  | { kind: 'data'; streamId: number; fin: boolean; remaining: number }
  | { kind: 'skip'; remaining: number };

export class FrameParser extends Writable {
  private readonly limits: FrameLimits;
  private readonly decompressor: HeaderDecompressor;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private state: State = { kind: 'head' };

  constructor(
    private readonly onFrame: (frame: Frame) => void,
    limits: Partial<FrameLimits> = {},
  ) {
    super({ highWaterMark: 64 * 1024 });
    this.limits = { ...DEFAULT_FRAME_LIMITS, ...limits };
    this.decompressor = new HeaderDecompressor(this.limits.maxHeaderBlockSize);
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      this.drain();
    } catch (err) {
      cb(asSpdyError(err));
      return;
    }
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.decompressor.close();
    this.chunks = [];
    cb(err);
  }

  /** Decodes every complete frame buffered (until a frame's handler destroys the parser). */
  private drain(): void {
    while (!this.destroyed) {
      const s = this.state;
      if (s.kind === 'head') {
        if (this.buffered < 8) return;
        this.state = this.readHead(this.take(8));
      } else if (s.kind === 'data') {
        if (this.buffered === 0) return;
        const n = Math.min(this.buffered, s.remaining);
        const data = this.take(n);
        s.remaining -= n;
        const last = s.remaining === 0;
        if (last) this.state = { kind: 'head' };
        this.onFrame({ type: 'DATA', streamId: s.streamId, fin: last && s.fin, data, more: !last });
      } else if (s.kind === 'skip') {
        const n = Math.min(this.buffered, s.remaining);
        this.take(n);
        s.remaining -= n;
        if (s.remaining > 0) return;
        this.state = { kind: 'head' };
      } else {
        if (this.buffered < s.length) return;
        const body = this.take(s.length);
        this.state = { kind: 'head' };
        this.onFrame(this.readControl(s.type, s.flags, body));
      }
    }
  }

  private readHead(head: Buffer): State {
    const word = head.readUInt32BE(0);
    const flags = head[4]!;
    const length = head.readUInt32BE(4) & 0xffffff;
    if ((word & 0x80000000) === 0) {
      const streamId = word & MAX_STREAM_ID;
      if (streamId === 0) throw new SpdyError('INVALID_FRAME', 'DATA frame for stream 0');
      if (length > this.limits.maxDataFrameLength) {
        throw new SpdyError(
          'FRAME_TOO_LARGE',
          `DATA frame of ${length} bytes, limit ${this.limits.maxDataFrameLength}`,
          streamId,
        );
      }
      const fin = (flags & FLAG_FIN) !== 0;
      if (length === 0) {
        this.onFrame({ type: 'DATA', streamId, fin, data: Buffer.alloc(0), more: false });
        return { kind: 'head' };
      }
      return { kind: 'data', streamId, fin, remaining: length };
    }
    const version = (word >>> 16) & 0x7fff;
    const type = word & 0xffff;
    if (version !== SPDY_VERSION) {
      throw new SpdyError('UNSUPPORTED_VERSION', `SPDY version ${version} is not supported, only 3`);
    }
    if (length > this.limits.maxControlFrameLength) {
      throw new SpdyError(
        'FRAME_TOO_LARGE',
        `control frame of type ${type} is ${length} bytes, limit ${this.limits.maxControlFrameLength}`,
      );
    }
    const fixed = FIXED_LENGTH[type];
    const min = MIN_LENGTH[type];
    if (fixed === undefined && min === undefined) return { kind: 'skip', remaining: length };
    if ((fixed !== undefined && length !== fixed) || (min !== undefined && length < min)) {
      throw new SpdyError('INVALID_FRAME', `control frame of type ${type} with invalid length ${length}`);
    }
    if (type === ControlType.Settings) {
      if ((length - 4) % 8 !== 0)
        throw new SpdyError('INVALID_FRAME', `SETTINGS length ${length} is not 4 + 8n`);
      this.checkSettingsCount((length - 4) / 8);
    }
    return { kind: 'control', type, flags, length };
  }

  private checkSettingsCount(n: number): void {
    if (n > this.limits.maxSettingsEntries) {
      throw new SpdyError(
        'TOO_MANY_SETTINGS',
        `SETTINGS with ${n} entries, limit ${this.limits.maxSettingsEntries}`,
      );
    }
  }

  private readControl(type: number, flags: number, body: Buffer): Frame {
    const fin = (flags & FLAG_FIN) !== 0;
    switch (type) {
      case ControlType.SynStream: {
        const streamId = streamIdAt(body, 0, 'SYN_STREAM');
        const associatedToStreamId = body.readUInt32BE(4) & MAX_STREAM_ID;
        const priority = body[8]! >> 5;
        const slot = body[9]!;
        const unidirectional = (flags & FLAG_UNIDIRECTIONAL) !== 0;
        const headers = this.headers(body.subarray(10), streamId);
        return {
          type: 'SYN_STREAM',
          streamId,
          associatedToStreamId,
          priority,
          slot,
          fin,
          unidirectional,
          headers,
        };
      }
      case ControlType.SynReply:
      case ControlType.Headers: {
        const streamId = streamIdAt(body, 0, type === ControlType.SynReply ? 'SYN_REPLY' : 'HEADERS');
        const headers = this.headers(body.subarray(4), streamId);
        return { type: type === ControlType.SynReply ? 'SYN_REPLY' : 'HEADERS', streamId, fin, headers };
      }
      case ControlType.RstStream: {
        const streamId = streamIdAt(body, 0, 'RST_STREAM');
        const status = body.readUInt32BE(4);
        if (status === 0) throw new SpdyError('INVALID_FRAME', 'RST_STREAM with status 0', streamId);
        return { type: 'RST_STREAM', streamId, status };
      }
      case ControlType.Settings: {
        const count = body.readUInt32BE(0);
        this.checkSettingsCount(count);
        if (count * 8 !== body.length - 4) {
          throw new SpdyError('INVALID_FRAME', `SETTINGS announces ${count} entries in ${body.length} bytes`);
        }
        const entries = [];
        for (let at = 4; at < body.length; at += 8) {
          entries.push({
            flags: body[at]!,
            id: body.readUInt32BE(at) & 0xffffff,
            value: body.readUInt32BE(at + 4),
          });
        }
        return { type: 'SETTINGS', clearSettings: (flags & FLAG_CLEAR_SETTINGS) !== 0, entries };
      }
      case ControlType.Ping: {
        const id = body.readUInt32BE(0);
        if (id === 0) throw new SpdyError('INVALID_FRAME', 'PING with id 0');
        return { type: 'PING', id };
      }
      case ControlType.GoAway:
        return {
          type: 'GOAWAY',
          lastGoodStreamId: body.readUInt32BE(0) & MAX_STREAM_ID,
          status: body.readUInt32BE(4),
        };
      default: {
        // WINDOW_UPDATE: the only type left that readHead lets through.
        const delta = body.readUInt32BE(4) & MAX_STREAM_ID;
        if (delta === 0) throw new SpdyError('INVALID_FRAME', 'WINDOW_UPDATE with delta 0');
        return {
          type: 'WINDOW_UPDATE',
          streamId: body.readUInt32BE(0) & MAX_STREAM_ID,
          deltaWindowSize: delta,
        };
      }
    }
  }

  private headers(compressed: Buffer, streamId: number): SpdyHeaders {
    const block = this.decompressor.decompress(compressed);
    return parseHeaderBlock(block, this.limits, streamId);
  }

  /** Removes and returns the first `n` buffered bytes (n <= buffered). */
  private take(n: number): Buffer {
    this.buffered -= n;
    const first = this.chunks[0]!;
    if (first.length === n) {
      this.chunks.shift();
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - at);
      c.copy(out, at, 0, k);
      at += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    return out;
  }
}

function streamIdAt(body: Buffer, at: number, what: string): number {
  const id = body.readUInt32BE(at) & MAX_STREAM_ID;
  if (id === 0) throw new SpdyError('INVALID_FRAME', `${what} for stream 0`);
  return id;
}

function asSpdyError(err: unknown): SpdyError {
  if (err instanceof SpdyError) return err;
  return new SpdyError('PROTOCOL_ERROR', `frame decoding failed: ${errorMessage(err)}`);
}
