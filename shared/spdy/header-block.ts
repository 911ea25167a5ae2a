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
 *   spdystream fails the frame; an empty name is an error.
 */
import zlib from 'node:zlib';
import { Deflate, Inflate, type ZlibOptions } from 'minizlib';
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
 * One zlib stream of the connection (its compression context), run synchronously: each block is
 * one write ending with a sync flush, and its output is there when the call returns. minizlib
 * drives Node's zlib binding on this thread, as zlib.deflateSync does, but keeps the context
 * between blocks. Node's own zlib streams queue every write and flush on the thread pool: a
 * SYN_STREAM then waited for a pool thread and another turn of the event loop, on both ends, once
 * per stream and in turn, which on a busy machine was most of the time an exec took to start
 * (kexec-lab issue 16). A header block is at most a few KiB, compressed or not: too little
 * work to leave the thread for. Once the context fails, every later operation fails too.
 */
abstract class ZlibContext {
  private chunks: Buffer[] = [];
  private size = 0;
  private limit = 0;
  private broken: SpdyError | undefined;

  constructor(protected readonly z: Deflate | Inflate) {
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

/** The sending context: compresses each block, flushed so it stands alone in its frame. */
export class HeaderCompressor extends ZlibContext {
  constructor() {
    // spdystream compresses with zlib.BestCompression.
    super(new Deflate(zlibOptions({ dictionary: SPDY3_DICTIONARY, level: 9 })));
  }

  compress(block: Buffer): Buffer {
    return this.run(block, Number.MAX_SAFE_INTEGER);
  }
}

/**
 * The receiving context: decompresses each frame's block, refusing to grow past `maxSize` (zlib's
 * maxOutputLength stops inflating there, so a small bomb never becomes a big buffer).
 */
export class HeaderDecompressor extends ZlibContext {
  constructor(private readonly maxSize: number) {
    super(new Inflate(zlibOptions({ dictionary: SPDY3_DICTIONARY, maxOutputLength: maxSize })));
  }

  decompress(compressed: Buffer): Buffer {
    return this.run(compressed, this.maxSize);
  }
}

/** Node zlib options for a minizlib stream (whose types know only a few of them); every write ends with a sync flush. */
function zlibOptions(opts: zlib.ZlibOptions): ZlibOptions {
  return { ...opts, flush: zlib.constants.Z_SYNC_FLUSH } as ZlibOptions;
}
