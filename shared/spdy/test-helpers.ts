/**
 * Test helpers for the SPDY layer: feed bytes to a FrameParser in chosen pieces, merge the DATA
 * pieces it hands over back into frames, encode frame lists. Used by the *.test.ts files only.
 */
import { SpdyError } from './errors.js';
import { FrameParser, type FrameLimits } from './frame-parser.js';
import { FrameEncoder, type Frame } from './frames.js';

export interface ParseResult {
  frames: Frame[];
  error?: SpdyError;
  /** Anything thrown or emitted that is not a SpdyError (must never happen). */
  foreign?: unknown;
}

/** Feeds `chunks` to a fresh parser and resolves with what it produced. */
export function parseChunks(chunks: Buffer[], limits: Partial<FrameLimits> = {}): Promise<ParseResult> {
  return new Promise((resolve) => {
    const frames: Frame[] = [];
    const parser = new FrameParser((f) => frames.push(f), limits);
    parser.on('error', (err) => {
      if (err instanceof SpdyError) resolve({ frames, error: err });
      else resolve({ frames, foreign: err });
    });
    parser.on('finish', () => resolve({ frames }));
    for (const c of chunks) parser.write(c);
    parser.end();
  });
}

/** Splits `bytes` into pieces whose sizes cycle through `sizes` (all >= 1). */
export function split(bytes: Buffer, sizes: readonly number[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (let i = 0; at < bytes.length; i++) {
    const n = sizes.length ? sizes[i % sizes.length]! : bytes.length;
    out.push(bytes.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Joins the pieces of each DATA frame (the parser's `more` flag) and drops the flag. */
export function mergeData(frames: Frame[]): Frame[] {
  const out: Frame[] = [];
  let open: Extract<Frame, { type: 'DATA' }> | undefined;
  for (const f of frames) {
    if (f.type !== 'DATA') {
      out.push(f);
      continue;
    }
    if (open && open.streamId === f.streamId) {
      open.data = Buffer.concat([open.data, f.data]);
      open.fin = f.fin;
    } else {
      open = { type: 'DATA', streamId: f.streamId, fin: f.fin, data: f.data };
      out.push(open);
    }
    if (!f.more) open = undefined;
  }
  return out;
}

/** Encodes frames in order with one encoder (one compression context) into one buffer. */
export async function encodeAll(frames: Frame[], encoder = new FrameEncoder()): Promise<Buffer> {
  const out: Buffer[] = [];
  for (const f of frames) out.push(await encoder.encode(f));
  return Buffer.concat(out);
}
