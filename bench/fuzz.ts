/**
 * Property-based fuzzing (fast-check) of every decoder a peer can feed: the WebSocket channel
 * codec, the SPDY resize stream decoder, the port-forward framing, SPDY header blocks (after
 * decompression) and the SPDY frame parser (zlib header blocks included). Each property says: any
 * input either decodes or fails with the module's own typed error, never anything else (no
 * TypeError, RangeError, hang or unbounded allocation); valid input round-trips whatever the
 * chunking.
 *
 * The properties are exported; e2e/fuzz.test.ts runs the ones the unit tests do not already cover
 * with a few hundred runs. This script runs them long:
 *
 *   npm run build && node dist/bench/fuzz.js [--runs 100000] [--seed N] [--only name,…]
 *
 * It prints runs/s per property and any counterexample (with the seed and path to replay it), and
 * exits 1 if one was found.
 */
import fc from 'fast-check';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeMessage, encodeMessage, RemoteCommandError } from '../shared/remotecommand/codec.js';
import { protocolByName, SERVER_PROTOCOLS, type ChannelProtocol } from '../shared/remotecommand/protocol.js';
import { ResizeDecoder } from '../shared/remotecommand/resize-stream.js';
import { decodeFrame, encodeFrame, PortForwardError } from '../shared/portforward/protocol.js';
import { DEFAULT_HEADER_LIMITS, parseHeaderBlock } from '../shared/spdy/header-block.js';
import { FrameParser } from '../shared/spdy/frame-parser.js';
import { SpdyError } from '../shared/spdy/errors.js';

const CHANNEL_PROTOCOLS: ChannelProtocol[] = SERVER_PROTOCOLS.map((n) => protocolByName(n)!);
const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));

/** Splits `buf` at the given (relative) cut points. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

function onlyTyped(fn: () => unknown, type: new (...a: never[]) => Error): boolean {
  try {
    fn();
    return true;
  } catch (err) {
    if (err instanceof type) return true;
    throw err;
  }
}

export const properties = {
  /** Channel codec: any message (text and binary are read alike), any protocol. */
  channelCodec: fc.property(fc.constantFrom(...CHANNEL_PROTOCOLS), bytes(256), (proto, data) =>
    onlyTyped(() => decodeMessage(proto, data), RemoteCommandError),
  ),

  /** Channel codec round trip for every protocol and channel. */
  channelCodecRoundTrip: fc.property(
    fc.constantFrom(...CHANNEL_PROTOCOLS),
    fc.integer({ min: 0, max: 4 }),
    bytes(256),
    (proto, channel, payload) => {
      const enc = encodeMessage(proto, channel, payload);
      const d = decodeMessage(proto, Buffer.from(enc));
      return d.kind === 'data' && d.channel === channel && d.payload.equals(payload);
    },
  ),

  /** Resize stream: arbitrary bytes in arbitrary chunks fail only with BAD_RESIZE. */
  resizeStream: fc.property(bytes(300), fc.array(fc.nat(), { maxLength: 8 }), (data, cuts) => {
    const d = new ResizeDecoder();
    return onlyTyped(() => {
      for (const c of split(data, cuts)) d.push(c);
    }, RemoteCommandError);
  }),

  /** Resize stream: valid sizes, as Go's json.Encoder writes them, come back whatever the chunking. */
  resizeStreamRoundTrip: fc.property(
    fc.array(
      fc.record({ width: fc.integer({ min: 0, max: 0xffff }), height: fc.integer({ min: 0, max: 0xffff }) }),
      {
        maxLength: 6,
      },
    ),
    fc.array(fc.nat(), { maxLength: 8 }),
    (sizes, cuts) => {
      const wire = Buffer.from(
        sizes.map((s) => `${JSON.stringify({ Width: s.width, Height: s.height })}\n`).join(''),
      );
      const d = new ResizeDecoder();
      const got = split(wire, cuts).flatMap((c) => d.push(c));
      return JSON.stringify(got) === JSON.stringify(sizes);
    },
  ),

  /** Port-forward framing: any message fails only with a PortForwardError. */
  portForwardFrame: fc.property(
    fc.boolean(),
    bytes(128),
    fc.integer({ min: 0, max: 256 }),
    (base64, data, channels) =>
      onlyTyped(() => {
        const f = decodeFrame(base64, data, channels);
        if (f.channel < 0 || f.channel >= channels) throw new Error(`channel ${f.channel} out of range`);
      }, PortForwardError),
  ),

  portForwardRoundTrip: fc.property(
    fc.boolean(),
    fc.integer({ min: 0, max: 9 }),
    bytes(128),
    (base64, channel, payload) => {
      const enc = encodeFrame(base64, channel, payload);
      const f = decodeFrame(base64, Buffer.from(enc), 10);
      return f.channel === channel && f.payload.equals(payload);
    },
  ),

  /** A decompressed SPDY header block: any bytes fail only with a SpdyError, within the limits. */
  headerBlock: fc.property(bytes(512), (block) =>
    onlyTyped(() => {
      const h = parseHeaderBlock(block, DEFAULT_HEADER_LIMITS, 1);
      if (h.size > DEFAULT_HEADER_LIMITS.maxHeaderCount) throw new Error('header count over the limit');
    }, SpdyError),
  ),

  /** The SPDY frame parser, zlib blocks included: any bytes, any chunking, only SpdyError. */
  frameParser: fc.asyncProperty(
    fc.oneof(
      bytes(600),
      // A plausible control frame head (version 3, a real type) over random bytes goes deeper.
      fc.tuple(fc.integer({ min: 1, max: 9 }), bytes(400)).map(([type, body]) => {
        const head = Buffer.alloc(8);
        head.writeUInt16BE(0x8003, 0);
        head.writeUInt16BE(type, 2);
        head.writeUInt32BE(body.length, 4);
        return Buffer.concat([head, body]);
      }),
    ),
    fc.array(fc.nat(), { maxLength: 6 }),
    async (data, cuts) => {
      const parser = new FrameParser(() => {});
      const failed = new Promise<Error | undefined>((resolve) => {
        parser.once('error', resolve);
        parser.once('finish', () => resolve(undefined));
      });
      for (const c of split(data, cuts)) if (!parser.destroyed) parser.write(c);
      if (!parser.destroyed) parser.end();
      const err = await Promise.race([
        failed,
        new Promise<Error>((r) =>
          setTimeout(() => r(new Error('parser neither finished nor failed in 2 s')), 2000),
        ),
      ]);
      parser.destroy();
      if (err && !(err instanceof SpdyError)) throw err;
      return true;
    },
  ),
};

export type PropertyName = keyof typeof properties;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '100000' },
      seed: { type: 'string' },
      only: { type: 'string' },
    },
  });
  const runs = Number(values.runs);
  const names = (values.only?.split(',') ?? Object.keys(properties)) as PropertyName[];
  let failed = false;
  for (const name of names) {
    const prop = properties[name];
    const seed = values.seed ? Number(values.seed) : Date.now() ^ (Math.random() * 0x7fffffff);
    const t0 = performance.now();
    const runsFor = name === 'frameParser' ? Math.max(1, Math.floor(runs / 10)) : runs;
    const details = await fc.check(prop as fc.IAsyncProperty<unknown[]>, { numRuns: runsFor, seed });
    const secs = (performance.now() - t0) / 1000;
    const rate = (details.numRuns / secs).toFixed(0);
    if (details.failed) {
      failed = true;
      console.log(
        `${name}: FAILED after ${details.numRuns} runs (seed ${seed}, path ${details.counterexamplePath})`,
      );
      console.log(`  counterexample: ${fc.stringify(details.counterexample)}`);
      console.log(`  error: ${String(details.errorInstance)}`);
    } else {
      console.log(`${name}: ${details.numRuns} runs in ${secs.toFixed(1)} s (${rate}/s), no counterexample`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void main();
