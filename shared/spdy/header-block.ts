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
 * Runs operations on one zlib stream strictly one after another, each ending with a sync flush,
 * and returns what each produced. The stream is the connection's compression context: once it
 * fails, every later operation fails too.
 */
abstract class ZlibContext {
  private chunks: Buffer[] = [];
  private size = 0;
  private tail: Promise<unknown> = Promise.resolve();
  private broken: SpdyError | undefined;
  private current: { reject: (err: SpdyError) => void; limit: number } | undefined;

  constructor(protected readonly z: zlib.Deflate | zlib.Inflate) {
    z.on('data', (c: Buffer) => this.onData(c));
    z.on('error', (err: Error) =>
      this.fail(new SpdyError('BAD_COMPRESSION', `header compression: ${err.message}`)),
    );
  }

  protected run(input: Buffer, limit: number): Promise<Buffer> {
    const op = (): Promise<Buffer> =>
      new Promise<Buffer>((resolve, reject) => {
        if (this.broken) return reject(this.broken);
        this.current = { reject, limit };
        this.chunks = [];
        this.size = 0;
        this.z.write(input);
        this.z.flush(zlib.constants.Z_SYNC_FLUSH, () => {
          if (this.broken) return reject(this.broken);
          this.current = undefined;
          resolve(Buffer.concat(this.chunks, this.size));
        });
      });
    const result = this.tail.then(op, op);
    this.tail = result.catch(() => undefined);
    return result;
  }

  close(): void {
    this.fail(new SpdyError('CONNECTION_CLOSED', 'header compression context closed'));
  }

  private onData(c: Buffer): void {
    if (!this.current) return;
    this.size += c.length;
    if (this.size > this.current.limit) {
      this.fail(
        new SpdyError('HEADER_BLOCK_TOO_LARGE', `header block decompresses past ${this.current.limit} bytes`),
      );
      return;
    }
    this.chunks.push(c);
  }

  private fail(err: SpdyError): void {
    if (this.broken) return;
    this.broken = err;
    this.chunks = [];
    this.current?.reject(err);
    this.current = undefined;
    this.z.destroy();
  }
}

/** The sending context: compresses each block, flushed so it stands alone in its frame. */
export class HeaderCompressor extends ZlibContext {
  constructor() {
    // spdystream compresses with zlib.BestCompression.
    super(zlib.createDeflate({ dictionary: SPDY3_DICTIONARY, level: 9 }));
  }

  compress(block: Buffer): Promise<Buffer> {
    return this.run(block, Number.MAX_SAFE_INTEGER);
  }
}

/** The receiving context: decompresses each frame's block, refusing to grow past `maxSize`. */
export class HeaderDecompressor extends ZlibContext {
  constructor() {
    super(zlib.createInflate({ dictionary: SPDY3_DICTIONARY }));
  }

  decompress(compressed: Buffer, maxSize: number): Promise<Buffer> {
    return this.run(compressed, maxSize);
  }
}
