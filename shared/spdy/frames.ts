/**
 * SPDY/3.1 frames as Kubernetes uses them: their in-memory shape and their encoder. The incremental
 * decoder is frame-parser.ts.
 *
 * Mirrors moby/spdystream `spdy/types.go` (frame types, flags, limits) and `spdy/write.go` (the
 * byte layout). A control frame is `1 | version(15) | type(16) | flags(8) | length(24) | payload`;
 * a DATA frame is `0 | stream id(31) | flags(8) | length(24) | payload`.
 *
 * FrameEncoder holds the connection's one header compression context, so header-bearing frames
 * (SYN_STREAM, SYN_REPLY, HEADERS) must be encoded in the order they are sent. Frames spdystream
 * never sends (SETTINGS, WINDOW_UPDATE) can be encoded too, for tests and for peers that want them.
 */
import { SpdyError } from './errors.js';
import { encodeHeaderBlock, HeaderCompressor, type SpdyHeaders } from './header-block.js';

export const SPDY_VERSION = 3;

export const ControlType = {
  SynStream: 1,
  SynReply: 2,
  RstStream: 3,
  Settings: 4,
  Ping: 6,
  GoAway: 7,
  Headers: 8,
  WindowUpdate: 9,
} as const;

export const FLAG_FIN = 0x01;
export const FLAG_UNIDIRECTIONAL = 0x02;
export const FLAG_CLEAR_SETTINGS = 0x01;

/** The largest payload the 24-bit length field can describe. */
export const MAX_FRAME_LENGTH = 0xffffff;
export const MAX_STREAM_ID = 0x7fffffff;

/** SETTINGS ids (SPDY/3 section 2.6.4); we read them but act on none. */
export const SettingsId = {
  UploadBandwidth: 1,
  DownloadBandwidth: 2,
  RoundTripTime: 3,
  MaxConcurrentStreams: 4,
  CurrentCwnd: 5,
  DownloadRetransRate: 6,
  InitialWindowSize: 7,
  ClientCertificateVectorSize: 8,
} as const;

export interface SynStreamFrame {
  type: 'SYN_STREAM';
  streamId: number;
  associatedToStreamId: number;
  /** 0 (highest) to 7. */
  priority: number;
  slot: number;
  fin: boolean;
  unidirectional: boolean;
  headers: SpdyHeaders;
}

export interface SynReplyFrame {
  type: 'SYN_REPLY';
  streamId: number;
  fin: boolean;
  headers: SpdyHeaders;
}

export interface HeadersFrame {
  type: 'HEADERS';
  streamId: number;
  fin: boolean;
  headers: SpdyHeaders;
}

export interface RstStreamFrame {
  type: 'RST_STREAM';
  streamId: number;
  status: number;
}

export interface SettingsEntry {
  flags: number;
  id: number;
  value: number;
}

export interface SettingsFrame {
  type: 'SETTINGS';
  clearSettings: boolean;
  entries: SettingsEntry[];
}

export interface PingFrame {
  type: 'PING';
  id: number;
}

export interface GoAwayFrame {
  type: 'GOAWAY';
  lastGoodStreamId: number;
  status: number;
}

export interface WindowUpdateFrame {
  type: 'WINDOW_UPDATE';
  streamId: number;
  deltaWindowSize: number;
}

export interface DataFrame {
  type: 'DATA';
  streamId: number;
  fin: boolean;
  data: Buffer;
  /**
   * Set by the decoder only: more pieces of this same frame follow. The decoder hands a DATA frame
   * over as its bytes arrive instead of buffering up to 16 MiB of it; `fin` is on the last piece.
   */
  more?: boolean;
}

export type Frame =
  | SynStreamFrame
  | SynReplyFrame
  | HeadersFrame
  | RstStreamFrame
  | SettingsFrame
  | PingFrame
  | GoAwayFrame
  | WindowUpdateFrame
  | DataFrame;

function invalid(message: string, streamId = 0): SpdyError {
  return new SpdyError('INVALID_FRAME', message, streamId);
}

function checkStreamId(id: number, what: string): void {
  if (!Number.isInteger(id) || id < 1 || id > MAX_STREAM_ID)
    throw invalid(`${what}: invalid stream id ${id}`);
}

function checkU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw invalid(`${what} out of range: ${n}`);
}

/** A control frame: the 8-byte header and `payload`. */
export function controlFrame(type: number, flags: number, payload: Buffer): Buffer {
  if (payload.length > MAX_FRAME_LENGTH) throw new SpdyError('FRAME_TOO_LARGE', 'control frame too large');
  const head = Buffer.alloc(8);
  head.writeUInt16BE(0x8000 | SPDY_VERSION, 0);
  head.writeUInt16BE(type, 2);
  head.writeUInt32BE(payload.length, 4);
  head[4] = flags & 0xff;
  return Buffer.concat([head, payload]);
}

/** A DATA frame. Callers split payloads larger than they want on the wire. */
export function dataFrame(streamId: number, data: Buffer, fin: boolean): Buffer {
  return Buffer.concat([dataFrameHead(streamId, data.length, fin), data]);
}

/**
 * The 8 bytes before a DATA frame's payload. A writer that sends the payload as it is after these
 * (two writes in one cork, a writev) saves the copy dataFrame makes of every byte.
 */
export function dataFrameHead(streamId: number, length: number, fin: boolean): Buffer {
  checkStreamId(streamId, 'DATA');
  if (length > MAX_FRAME_LENGTH) throw new SpdyError('FRAME_TOO_LARGE', 'DATA frame too large', streamId);
  const head = Buffer.allocUnsafe(8);
  head.writeUInt32BE(streamId, 0);
  head.writeUInt32BE(length, 4);
  head[4] = fin ? FLAG_FIN : 0;
  return head;
}

/** Encodes a frame that carries no header block (everything but SYN_STREAM, SYN_REPLY, HEADERS). */
export function encodeSimpleFrame(
  frame: Exclude<Frame, SynStreamFrame | SynReplyFrame | HeadersFrame>,
): Buffer {
  switch (frame.type) {
    case 'DATA':
      return dataFrame(frame.streamId, frame.data, frame.fin);
    case 'RST_STREAM': {
      checkStreamId(frame.streamId, 'RST_STREAM');
      if (!Number.isInteger(frame.status) || frame.status < 1 || frame.status > 0xffffffff) {
        throw invalid(`RST_STREAM: invalid status ${frame.status}`, frame.streamId);
      }
      return controlFrame(ControlType.RstStream, 0, words(frame.streamId, frame.status));
    }
    case 'SETTINGS': {
      const body = Buffer.alloc(4 + 8 * frame.entries.length);
      body.writeUInt32BE(frame.entries.length, 0);
      frame.entries.forEach((e, i) => {
        if (!Number.isInteger(e.id) || e.id < 0 || e.id > 0xffffff)
          throw invalid(`SETTINGS: invalid id ${e.id}`);
        checkU32(e.value, 'SETTINGS value');
        body.writeUInt32BE(e.id, 4 + 8 * i);
        body[4 + 8 * i] = e.flags & 0xff;
        body.writeUInt32BE(e.value, 8 + 8 * i);
      });
      return controlFrame(ControlType.Settings, frame.clearSettings ? FLAG_CLEAR_SETTINGS : 0, body);
    }
    case 'PING':
      checkU32(frame.id, 'PING id');
      return controlFrame(ControlType.Ping, 0, words(frame.id));
    case 'GOAWAY':
      if (frame.lastGoodStreamId !== 0) checkStreamId(frame.lastGoodStreamId, 'GOAWAY');
      checkU32(frame.status, 'GOAWAY status');
      return controlFrame(ControlType.GoAway, 0, words(frame.lastGoodStreamId, frame.status));
    case 'WINDOW_UPDATE':
      if (frame.streamId !== 0) checkStreamId(frame.streamId, 'WINDOW_UPDATE');
      if (
        !Number.isInteger(frame.deltaWindowSize) ||
        frame.deltaWindowSize < 1 ||
        frame.deltaWindowSize > MAX_STREAM_ID
      ) {
        throw invalid(`WINDOW_UPDATE: invalid delta ${frame.deltaWindowSize}`);
      }
      return controlFrame(ControlType.WindowUpdate, 0, words(frame.streamId, frame.deltaWindowSize));
  }
}

function words(...ns: number[]): Buffer {
  const b = Buffer.alloc(4 * ns.length);
  ns.forEach((n, i) => b.writeUInt32BE(n >>> 0, 4 * i));
  return b;
}

/**
 * Encodes frames for one direction of one connection. Frames with headers share the connection's
 * compression context, so they must be encoded in the order they are sent: callers encode and
 * write strictly in sequence (connection.ts's writer does).
 */
export class FrameEncoder {
  private readonly compressor = new HeaderCompressor();

  /** The frame's bytes (header blocks are compressed in the connection's one context, in order). */
  encode(frame: Frame): Buffer {
    switch (frame.type) {
      case 'SYN_STREAM': {
        checkStreamId(frame.streamId, 'SYN_STREAM');
        if (frame.associatedToStreamId !== 0)
          checkStreamId(frame.associatedToStreamId, 'SYN_STREAM associated');
        if (!Number.isInteger(frame.priority) || frame.priority < 0 || frame.priority > 7) {
          throw invalid(`SYN_STREAM: invalid priority ${frame.priority}`, frame.streamId);
        }
        const fixed = Buffer.alloc(10);
        fixed.writeUInt32BE(frame.streamId, 0);
        fixed.writeUInt32BE(frame.associatedToStreamId, 4);
        fixed[8] = frame.priority << 5;
        fixed[9] = frame.slot & 0xff;
        const flags = (frame.fin ? FLAG_FIN : 0) | (frame.unidirectional ? FLAG_UNIDIRECTIONAL : 0);
        return this.withHeaders(ControlType.SynStream, flags, fixed, frame.headers);
      }
      case 'SYN_REPLY':
      case 'HEADERS': {
        checkStreamId(frame.streamId, frame.type);
        const type = frame.type === 'SYN_REPLY' ? ControlType.SynReply : ControlType.Headers;
        return this.withHeaders(type, frame.fin ? FLAG_FIN : 0, words(frame.streamId), frame.headers);
      }
      default:
        return encodeSimpleFrame(frame);
    }
  }

  close(): void {
    this.compressor.close();
  }

  private withHeaders(type: number, flags: number, fixed: Buffer, headers: SpdyHeaders): Buffer {
    // Encoding the block first: an unsendable header fails before the shared context sees it.
    const block = encodeHeaderBlock(headers);
    const compressed = this.compressor.compress(block);
    return controlFrame(type, flags, Buffer.concat([fixed, compressed]));
  }
}
