import fc from 'fast-check';
import zlib from 'node:zlib';
import { SPDY3_DICTIONARY } from './dictionary.js';
import { SpdyError } from './errors.js';
import { controlFrame, ControlType, dataFrame, FrameEncoder, MAX_STREAM_ID, type Frame } from './frames.js';
import { encodeHeaderBlock, HeaderCompressor, toSpdyHeaders, type SpdyHeaders } from './header-block.js';
import { FrameParser } from './frame-parser.js';
import { encodeAll, mergeData, parseChunks, split } from './test-helpers.js';

const streamId = fc.integer({ min: 1, max: MAX_STREAM_ID });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const headerName = fc.string({
  unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-'),
  minLength: 1,
  maxLength: 20,
});
const headerValue = fc.string({ maxLength: 40 }).filter((v) => !v.includes('\0'));
const headers: fc.Arbitrary<SpdyHeaders> = fc
  .dictionary(headerName, fc.array(headerValue, { minLength: 1, maxLength: 3 }), { maxKeys: 6 })
  .map((d) => new Map(Object.entries(d)));

const frame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({
    type: fc.constant('SYN_STREAM' as const),
    streamId,
    associatedToStreamId: fc.oneof(fc.constant(0), streamId),
    priority: fc.integer({ min: 0, max: 7 }),
    slot: fc.integer({ min: 0, max: 255 }),
    fin: fc.boolean(),
    unidirectional: fc.boolean(),
    headers,
  }),
  fc.record({ type: fc.constant('SYN_REPLY' as const), streamId, fin: fc.boolean(), headers }),
  fc.record({ type: fc.constant('HEADERS' as const), streamId, fin: fc.boolean(), headers }),
  fc.record({
    type: fc.constant('RST_STREAM' as const),
    streamId,
    status: fc.integer({ min: 1, max: 0xffffffff }),
  }),
  fc.record({
    type: fc.constant('SETTINGS' as const),
    clearSettings: fc.boolean(),
    entries: fc.array(
      fc.record({
        flags: fc.integer({ min: 0, max: 255 }),
        id: fc.integer({ min: 0, max: 0xffffff }),
        value: u32,
      }),
      { maxLength: 8 },
    ),
  }),
  fc.record({ type: fc.constant('PING' as const), id: fc.integer({ min: 1, max: 0xffffffff }) }),
  fc.record({
    type: fc.constant('GOAWAY' as const),
    lastGoodStreamId: fc.oneof(fc.constant(0), streamId),
    status: u32,
  }),
  fc.record({
    type: fc.constant('WINDOW_UPDATE' as const),
    streamId: fc.oneof(fc.constant(0), streamId),
    deltaWindowSize: fc.integer({ min: 1, max: MAX_STREAM_ID }),
  }),
  fc.record({
    type: fc.constant('DATA' as const),
    streamId,
    fin: fc.boolean(),
    data: fc.uint8Array({ maxLength: 2000 }).map((a) => Buffer.from(a)),
  }),
);

/** Adler-32, the checksum zlib names a dictionary by. */
function adler32(buf: Buffer): number {
  let a = 1;
  let b = 0;
  for (const byte of buf) {
    a = (a + byte) % 65521;
    b = (b + a) % 65521;
  }
  return ((b << 16) | a) >>> 0;
}

async function codeOf(bytes: Buffer, limits = {}): Promise<string | undefined> {
  const res = await parseChunks([bytes], limits);
  expect(res.foreign).toBeUndefined();
  return res.error?.code;
}

/** A header-bearing control frame with an arbitrary (already compressed or not) block. */
function withBlock(type: number, fixed: Buffer, block: Buffer): Buffer {
  return controlFrame(type, 0, Buffer.concat([fixed, block]));
}

const sid = (n: number): Buffer => Buffer.from([n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);

describe('SPDY/3 dictionary', () => {
  it('is the 1423 bytes named by Adler-32 0xe3c6a7c2', () => {
    expect(SPDY3_DICTIONARY.length).toBe(1423);
    expect(adler32(SPDY3_DICTIONARY)).toBe(0xe3c6a7c2);
  });

  it('is the one zlib checks: a block made with it does not inflate with another', async () => {
    const compressed = await new HeaderCompressor().compress(encodeHeaderBlock({ streamtype: 'error' }));
    expect(compressed.readUInt32BE(2)).toBe(0xe3c6a7c2); // FDICT: the dictionary id follows the header
    expect(() => zlib.inflateSync(compressed, { dictionary: Buffer.from('nope') })).toThrow();
  });
});

describe('header compressor', () => {
  it('writes one zlib stream of stored blocks that any inflater with the dictionary reads', async () => {
    const c = new HeaderCompressor();
    const blocks = [
      encodeHeaderBlock({ streamtype: 'error' }),
      encodeHeaderBlock({}),
      encodeHeaderBlock({ big: 'v'.repeat(70_000) }), // past one stored block's 65,535 bytes
      encodeHeaderBlock({ streamtype: 'stdout' }),
    ];
    const out: Buffer[] = [];
    for (const b of blocks) out.push(await c.compress(b));
    // No deflate context: each block's bytes follow its 5-byte stored-block head verbatim, then
    // the empty stored block a sync flush ends with (Go's flate returns the bytes only there).
    const n = blocks[1]!.length;
    expect(out[1]).toEqual(
      Buffer.concat([
        Buffer.from([0, n, 0, ~n & 0xff, 0xff]),
        blocks[1]!,
        Buffer.from([0, 0, 0, 0xff, 0xff]),
      ]),
    );
    // One stream across the blocks, each complete at its own end (what a sync flush guarantees).
    const inflater = zlib.createInflate({ dictionary: SPDY3_DICTIONARY });
    const got: Buffer[] = [];
    inflater.on('data', (d: Buffer) => got.push(d));
    for (const [i, o] of out.entries()) {
      inflater.write(o);
      await new Promise<void>((resolve) => inflater.flush(zlib.constants.Z_SYNC_FLUSH, () => resolve()));
      expect(Buffer.concat(got.splice(0))).toEqual(blocks[i]);
    }
    inflater.destroy();
    c.close();
    expect(() => c.compress(blocks[0]!)).toThrow('closed');
  });
});

describe('frame encoder and parser', () => {
  it('round-trips any frame sequence fed in any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(frame, { maxLength: 12 }),
        fc.array(fc.integer({ min: 1, max: 64 }), { maxLength: 8 }),
        async (frames, sizes) => {
          const bytes = await encodeAll(frames);
          const res = await parseChunks(split(bytes, sizes));
          expect(res.error).toBeUndefined();
          expect(res.foreign).toBeUndefined();
          expect(mergeData(res.frames)).toEqual(frames);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('shares one compression context across header blocks', async () => {
    const h = toSpdyHeaders({ streamType: 'stdout', port: '8080', requestID: '0' });
    const frames: Frame[] = [1, 3, 5, 7].map((id) => ({
      type: 'SYN_REPLY',
      streamId: id,
      fin: false,
      headers: h,
    }));
    const encoder = new FrameEncoder();
    const encoded: Buffer[] = [];
    for (const f of frames) encoded.push(await encoder.encode(f));
    // Later blocks refer back to the first one: they are smaller, and only make sense in order.
    expect(encoded[1]!.length).toBeLessThan(encoded[0]!.length);
    const res = await parseChunks(encoded);
    expect(res.frames).toEqual(frames);
    // The second block alone, in a fresh context, is not a zlib stream at all.
    expect((await parseChunks([encoded[1]!])).error?.code).toBe('BAD_COMPRESSION');
  });

  it('writes names lower-case, joins multiple values with NUL, reads names in any case', async () => {
    const block = encodeHeaderBlock({ StreamType: 'error', 'X-Multi': ['a', 'b'] });
    expect(block.includes(Buffer.from('streamtype'))).toBe(true);
    expect(block.includes(Buffer.from('a\0b'))).toBe(true);
    // A peer that sends upper-case names is still understood.
    const raw = Buffer.concat([
      sid(1),
      Buffer.from([0, 0, 0, 4]),
      Buffer.from('PORT'),
      sid(2),
      Buffer.from('80'),
    ]);
    const compressed = await new HeaderCompressor().compress(raw);
    const res = await parseChunks([
      withBlock(ControlType.SynStream, Buffer.concat([sid(1), sid(0), Buffer.alloc(2)]), compressed),
    ]);
    expect(res.frames[0]).toMatchObject({ type: 'SYN_STREAM', headers: new Map([['port', ['80']]]) });
  });

  it('decodes header frames within the write that carries them (no thread-pool round trip)', () => {
    // Stream set-up is SYN_STREAM and SYN_REPLY both ways, in turn for every stream: each header
    // block waiting on zlib's thread pool made an exec's start wait too (kexec-lab issue 16).
    const encoder = new FrameEncoder();
    const syn: Frame = {
      type: 'SYN_STREAM',
      ...{ streamId: 1, associatedToStreamId: 0, priority: 0, slot: 0, fin: false, unidirectional: false },
      headers: toSpdyHeaders({ streamType: 'stdout' }),
    };
    const bytes = Buffer.concat([
      encoder.encode(syn),
      encoder.encode({ type: 'SYN_REPLY', streamId: 2, fin: false, headers: new Map() }),
    ]);
    const frames: Frame[] = [];
    const parser = new FrameParser((f) => frames.push(f));
    parser.write(bytes);
    expect(frames.map((f) => f.type)).toEqual(['SYN_STREAM', 'SYN_REPLY']);
    expect(frames[0]).toEqual(syn);
    parser.destroy();
  });

  it('hands a large DATA frame over in pieces without buffering it whole', async () => {
    const payload = Buffer.alloc(300_000, 7);
    const res = await parseChunks(split(dataFrame(5, payload, true), [65536]));
    expect(res.frames.length).toBeGreaterThan(1);
    expect(res.frames.slice(0, -1).every((f) => f.type === 'DATA' && f.more && !f.fin)).toBe(true);
    const [merged, ...rest] = mergeData(res.frames);
    expect(rest).toHaveLength(0);
    expect(merged).toMatchObject({ type: 'DATA', streamId: 5, fin: true });
    expect((merged as { data: Buffer }).data.equals(payload)).toBe(true);
  });

  it('skips control frames of unknown types', async () => {
    const unknown = controlFrame(0x0a, 0, Buffer.from('credential'));
    const ping = await new FrameEncoder().encode({ type: 'PING', id: 1 });
    expect((await parseChunks([unknown, ping])).frames).toEqual([{ type: 'PING', id: 1 }]);
  });
});

describe('malformed input becomes a SpdyError with a stable code', () => {
  it('rejects a control frame of another SPDY version', async () => {
    const v2 = controlFrame(ControlType.Ping, 0, sid(1));
    v2.writeUInt16BE(0x8002, 0);
    expect(await codeOf(v2)).toBe('UNSUPPORTED_VERSION');
  });

  it('rejects oversized frames before buffering them', async () => {
    const head = Buffer.from([0x80, 3, 0, ControlType.SynStream, 0, 0x10, 0, 0]); // 1 MiB announced
    expect(await codeOf(head)).toBe('FRAME_TOO_LARGE');
    expect(await codeOf(dataFrame(1, Buffer.alloc(100), false), { maxDataFrameLength: 99 })).toBe(
      'FRAME_TOO_LARGE',
    );
  });

  it('rejects fixed-size control frames of the wrong size and zero ids', async () => {
    expect(await codeOf(controlFrame(ControlType.Ping, 0, Buffer.alloc(8)))).toBe('INVALID_FRAME');
    expect(await codeOf(controlFrame(ControlType.RstStream, 0, Buffer.concat([sid(1), sid(0)])))).toBe(
      'INVALID_FRAME',
    );
    expect(await codeOf(Buffer.from([0, 0, 0, 0, 0, 0, 0, 1, 9]))).toBe('INVALID_FRAME'); // DATA for stream 0
  });

  it('rejects SETTINGS with too many entries, announced or real (CVE-2026-35469)', async () => {
    // A count of 2^32-1 in a 12-byte frame: spdystream allocated the count.
    expect(
      await codeOf(controlFrame(ControlType.Settings, 0, Buffer.concat([sid(0xffffffff), Buffer.alloc(8)]))),
    ).toBe('TOO_MANY_SETTINGS');
    const many = Buffer.concat([sid(40), Buffer.alloc(40 * 8)]);
    expect(await codeOf(controlFrame(ControlType.Settings, 0, many))).toBe('TOO_MANY_SETTINGS');
    expect(
      await codeOf(controlFrame(ControlType.Settings, 0, Buffer.concat([sid(2), Buffer.alloc(8)]))),
    ).toBe('INVALID_FRAME');
  });

  it('rejects header blocks that announce too many headers or too large ones', async () => {
    const fixed = Buffer.concat([sid(1), sid(0), Buffer.alloc(2)]);
    const syn = async (raw: Buffer): Promise<Buffer> =>
      withBlock(ControlType.SynStream, fixed, await new HeaderCompressor().compress(raw));
    expect(await codeOf(await syn(sid(0x7fffffff)))).toBe('TOO_MANY_HEADERS');
    expect(await codeOf(await syn(Buffer.concat([sid(1), sid(0x10000000), Buffer.alloc(4)])))).toBe(
      'HEADER_TOO_LARGE',
    );
    const big = encodeHeaderBlock({ big: 'x'.repeat(9000) });
    expect(await codeOf(await syn(big))).toBe('HEADER_TOO_LARGE');
    expect(await codeOf(await syn(big), { maxHeaderValueLength: 100_000, maxHeaderBlockSize: 4096 })).toBe(
      'HEADER_BLOCK_TOO_LARGE',
    );
    expect(await codeOf(await syn(Buffer.concat([encodeHeaderBlock({ a: 'b' }), Buffer.from('junk')])))).toBe(
      'BAD_HEADER_BLOCK',
    );
    expect(await codeOf(await syn(sid(3)))).toBe('BAD_HEADER_BLOCK');
  });

  it('caps the decompressed size of a zlib bomb', async () => {
    const bomb = encodeHeaderBlock({ a: 'x'.repeat(8000), b: 'y'.repeat(8000), c: 'z'.repeat(8000) });
    // Deflated as a peer (spdystream) would: ours are stored, never small.
    const compressed = zlib.deflateSync(bomb, {
      dictionary: SPDY3_DICTIONARY,
      level: 9,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
    });
    expect(compressed.length).toBeLessThan(1000);
    const frame = withBlock(ControlType.SynReply, sid(1), compressed);
    expect(await codeOf(frame, { maxHeaderBlockSize: 10_000 })).toBe('HEADER_BLOCK_TOO_LARGE');
  });

  it('rejects a header block that is not zlib, or uses another dictionary', async () => {
    expect(await codeOf(withBlock(ControlType.SynReply, sid(1), Buffer.from('definitely not zlib')))).toBe(
      'BAD_COMPRESSION',
    );
    const other = zlib.deflateSync(encodeHeaderBlock({ a: 'b' }), {
      dictionary: Buffer.from('another dictionary'),
    });
    expect(await codeOf(withBlock(ControlType.SynReply, sid(1), other))).toBe('BAD_COMPRESSION');
  });

  it('never fails with anything but a SpdyError, whatever the bytes (fuzz)', async () => {
    const prefix = await encodeAll([
      {
        type: 'SYN_STREAM',
        streamId: 1,
        associatedToStreamId: 0,
        priority: 0,
        slot: 0,
        fin: false,
        unidirectional: false,
        headers: toSpdyHeaders({ streamtype: 'error' }),
      },
    ]);
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a)),
          // Valid frames with bytes flipped: reaches deeper into the parser.
          fc
            .tuple(
              fc.array(frame, { minLength: 1, maxLength: 4 }),
              fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
            )
            .map(([frames, flips]) => ({ frames, flips })),
        ),
        fc.array(fc.integer({ min: 1, max: 32 }), { maxLength: 4 }),
        async (input, sizes) => {
          let bytes: Buffer;
          if (Buffer.isBuffer(input)) {
            bytes = Buffer.concat([prefix, input]);
          } else {
            bytes = Buffer.from(await encodeAll(input.frames));
            for (const [at, value] of input.flips) bytes[at % bytes.length] = value;
          }
          const res = await parseChunks(split(bytes, sizes), {
            maxControlFrameLength: 4096,
            maxDataFrameLength: 4096,
          });
          expect(res.foreign).toBeUndefined();
          if (res.error) expect(res.error).toBeInstanceOf(SpdyError);
        },
      ),
      { numRuns: 300 },
    );
  });
});
