/**
 * SPDY/3 name/value header blocks and their compression contexts.
 *
 * Mirrors moby/spdystream `spdy/read.go` (`parseHeaderValueBlock`) and `spdy/write.go`
 * (`writeHeaderValueBlock`): a 32-bit count, then for each header a 32-bit name length, the name
 * (lower-case on the wire), a 32-bit value length and the value, several values joined by NUL.
 * The whole block is zlib-compressed with the SPDY/3 dictionary, and each direction of a
 * connection keeps ONE zlib context for all its blocks, flushed (Z_SYNC_FLUSH) after each.
 *
 * Differences:
 * - every count and length is checked against a limit before anything is allocated for it, and
 *   the decompressed size of a block is capped (CVE-2026-35469: spdystream allocated whatever the
 *   count fields announced);
 * - names are read case-insensitively (lower-cased) and repeated names are merged, where
 *   spdystream fails the frame; an empty name is an error;
 * - the blocks we send are stored deflate blocks, not compressed (HeaderCompressor: no zlib
 *   deflate context per connection).
 */
import zlib from 'node:zlib';
import { Inflate, type ZlibOptions } from 'minizlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyError } from './errors.js';

/** Header names (lower-case) to their values, in the order received. */
export type SpdyHeaders = Map<string, string[]>;

/** What callers may pass as headers: names in any case, one value or several. */
export type HeaderInput = SpdyHeaders | Record<string, string | readonly string[]>;

export interface HeaderLimits {
  /** Most headers one block may announce. */
  maxHeaderCount: number;
  maxHeaderNameLength: number;
  maxHeaderValueLength: number;
  /** Most bytes a block may decompress to. */
  maxHeaderBlockSize: number;
}

export const DEFAULT_HEADER_LIMITS: Readonly<HeaderLimits> = {
  maxHeaderCount: 64,
  maxHeaderNameLength: 256,
  maxHeaderValueLength: 8 * 1024,
  maxHeaderBlockSize: 64 * 1024,
};

/** The first value of a header, looked up case-insensitively. */
export function headerValue(headers: SpdyHeaders, name: string): string | undefined {
  return headers.get(name.toLowerCase())?.[0];
}

/** Normalises header input: lower-case names, repeated names merged, empty value lists dropped. */
export function toSpdyHeaders(input: HeaderInput): SpdyHeaders {
  const out: SpdyHeaders = new Map();
  const entries = input instanceof Map ? input.entries() : Object.entries(input);
  for (const [rawName, raw] of entries) {
    const values = typeof raw === 'string' ? [raw] : [...raw];
    if (values.length === 0) continue;
    const name = rawName.toLowerCase();
    if (name.length === 0) throw new SpdyError('INVALID_HEADER', 'header name must not be empty');
    if (values.some((v) => v.includes('\0'))) {
      throw new SpdyError('INVALID_HEADER', `header ${name} has a value containing NUL`);
    }
    out.set(name, [...(out.get(name) ?? []), ...values]);
  }
  return out;
}

/** The uncompressed block for `headers`. Throws SpdyError INVALID_HEADER for what cannot be sent. */
export function encodeHeaderBlock(input: HeaderInput): Buffer {
  const headers = toSpdyHeaders(input);
  const parts: Buffer[] = [u32(headers.size)];
  for (const [name, values] of headers) {
    const n = Buffer.from(name, 'utf8');
    const v = Buffer.from(values.join('\0'), 'utf8');
    parts.push(u32(n.length), n, u32(v.length), v);
  }
  return Buffer.concat(parts);
}

/** Parses an uncompressed block, checking every count and length before using it. */
export function parseHeaderBlock(block: Buffer, limits: HeaderLimits, streamId = 0): SpdyHeaders {
  const fail = (code: 'BAD_HEADER_BLOCK' | 'TOO_MANY_HEADERS' | 'HEADER_TOO_LARGE', msg: string): never => {
    throw new SpdyError(code, msg, streamId);
  };
  if (block.length < 4) fail('BAD_HEADER_BLOCK', 'header block shorter than its count');
  const count = block.readUInt32BE(0);
  if (count > limits.maxHeaderCount) {
    fail('TOO_MANY_HEADERS', `header block announces ${count} headers, limit ${limits.maxHeaderCount}`);
  }
  // Each header needs at least its two length fields.
  if (count * 8 > block.length - 4) fail('BAD_HEADER_BLOCK', `header block too short for ${count} headers`);
  const headers: SpdyHeaders = new Map();
  let at = 4;
  const field = (what: string, limit: number): Buffer => {
    if (block.length - at < 4) fail('BAD_HEADER_BLOCK', `header block truncated in a ${what} length`);
    const len = block.readUInt32BE(at);
    at += 4;
    if (len > limit) fail('HEADER_TOO_LARGE', `header ${what} of ${len} bytes, limit ${limit}`);
    if (block.length - at < len) fail('BAD_HEADER_BLOCK', `header block truncated in a ${what}`);
    const bytes = block.subarray(at, at + len);
    at += len;
    return bytes;
  };
  for (let i = 0; i < count; i++) {
    const name = field('name', limits.maxHeaderNameLength).toString('utf8').toLowerCase();
    if (name.length === 0) fail('BAD_HEADER_BLOCK', 'empty header name');
    const values = field('value', limits.maxHeaderValueLength).toString('utf8').split('\0');
    headers.set(name, [...(headers.get(name) ?? []), ...values]);
  }
  if (at !== block.length) fail('BAD_HEADER_BLOCK', `${block.length - at} bytes after the last header`);
  return headers;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/**
 * The receiving side's zlib stream (the connection's decompression context), run synchronously:
 * each block is one write ending with a sync flush, and its output is there when the call
 * returns. minizlib drives Node's zlib binding on this thread, as zlib.inflateSync does, but keeps
 * the context between blocks. Node's own zlib streams queue every write and flush on the thread
 * pool: each SYN_STREAM and SYN_REPLY then waited for a pool thread and another turn of the event
 * loop, in turn for every stream of an exec, which on a busy machine was much of the time an exec
 * took to start (kexec-lab issue 16). A header block is at most a few KiB: too little work to
 * leave the thread for. Once the context fails, every later operation fails too.
 */
abstract class ZlibContext {
  private chunks: Buffer[] = [];
  private size = 0;
  private limit = 0;
  private broken: SpdyError | undefined;

  constructor(protected readonly z: Inflate) {
    z.on('data', (c: Buffer) => this.onData(c));
    z.on('error', (err: unknown) =>
      this.fail(
        (err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE'
          ? new SpdyError('HEADER_BLOCK_TOO_LARGE', `header block decompresses past ${this.limit} bytes`)
          : new SpdyError('BAD_COMPRESSION', `header compression: ${(err as Error).message}`),
      ),
    );
  }

  /** Runs `input` through the context; throws the context's SpdyError once it has failed. */
  protected run(input: Buffer, limit: number): Buffer {
    if (this.broken) throw this.broken;
    this.chunks = [];
    this.size = 0;
    this.limit = limit;
    this.z.write(input);
    if (this.broken) throw this.broken;
    const out = Buffer.concat(this.chunks, this.size);
    this.chunks = [];
    return out;
  }

  close(): void {
    this.fail(new SpdyError('CONNECTION_CLOSED', 'header compression context closed'));
  }

  private onData(c: Buffer): void {
    if (this.broken) return;
    this.size += c.length;
    if (this.size > this.limit) {
      this.fail(
        new SpdyError('HEADER_BLOCK_TOO_LARGE', `header block decompresses past ${this.limit} bytes`),
      );
      return;
    }
    this.chunks.push(c);
  }

  private fail(err: SpdyError): void {
    if (this.broken) return;
    this.broken = err;
    this.chunks = [];
    this.z.close();
  }
}

/**
 * The zlib stream header (RFC 1950) of every connection's sending direction: CMF 0x78 (deflate,
 * 32 KiB window), FLG 0x20 (a preset dictionary, FCHECK 0 makes 0x7820 a multiple of 31), then
 * the dictionary's Adler-32 (0xe3c6a7c2, checked in frames.test.ts), as any zlib writes it.
 */
const ZLIB_HEADER = Buffer.from([0x78, 0x20, 0xe3, 0xc6, 0xa7, 0xc2]);
/** The most bytes one stored deflate block carries (LEN is 16 bits). */
const MAX_STORED = 0xffff;

/** A stored block's head (RFC 1951 3.2.4): BFINAL 0, BTYPE 00, padding to the byte, LEN, NLEN. */
function storedHead(len: number): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt16LE(len, 1);
  head.writeUInt16LE(~len & 0xffff, 3);
  return head;
}

/**
 * The sending context: writes each block as stored (uncompressed) deflate blocks of the
 * connection's one zlib stream, which every inflater reads like any other block, so a peer sees a
 * valid stream with the SPDY dictionary (spdystream's Go compress/zlib reader, Node's zlib).
 *
 * Differences: spdystream deflates its blocks (zlib.BestCompression). A zlib deflate context holds
 * about 80 KiB per connection even for a small window (Node's zlib keeps a 64 KiB hash table
 * whatever memLevel says), for a few hundred bytes of headers per session; a stored block needs
 * none, and each block ends as a sync flush ends (an empty stored block). Not compressing also keeps header
 * values out of the CRIME side channel (why HTTP/2 replaced this scheme with HPACK).
 */
export class HeaderCompressor {
  private started = false;
  private closed = false;

  compress(block: Buffer): Buffer {
    if (this.closed) throw new SpdyError('CONNECTION_CLOSED', 'header compression context closed');
    const parts: Buffer[] = [];
    if (!this.started) parts.push(ZLIB_HEADER);
    this.started = true;
    for (let at = 0; at < block.length; at += MAX_STORED) {
      const data = block.subarray(at, at + MAX_STORED);
      parts.push(storedHead(data.length), data);
    }
    // Then the empty stored block a sync flush ends with: Go's flate hands out what it holds only
    // when it reaches the next block's head, so without this marker spdystream would wait for the
    // next frame's bytes (and fail on the end of this frame's block).
    parts.push(storedHead(0));
    return Buffer.concat(parts);
  }

  close(): void {
    this.closed = true;
  }
}

/**
 * The receiving context: decompresses each frame's block, refusing to grow past `maxSize` (zlib's
 * maxOutputLength stops inflating there, so a small bomb never becomes a big buffer).
 */
export class HeaderDecompressor extends ZlibContext {
  constructor(private readonly maxSize: number) {
    // The peer's blocks come from a 32 KiB window (spdystream), so ours must be 32 KiB too. Output
    // chunks are small: a header block is a few hundred bytes, and the default (16 KiB) is
    // allocated per context. Every write ends with a sync flush.
    const opts: zlib.ZlibOptions = {
      dictionary: SPDY3_DICTIONARY,
      chunkSize: 1024,
      maxOutputLength: maxSize,
      flush: zlib.constants.Z_SYNC_FLUSH,
    };
    super(new Inflate(opts as ZlibOptions));
  }

  decompress(compressed: Buffer): Buffer {
    return this.run(compressed, this.maxSize);
  }
}
