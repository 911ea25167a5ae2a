import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Duplex, Writable } from 'node:stream';
import { closeServer, listen } from '../test-support/loopback.js';
import { SpdyConnection, type CloseReason, type SpdyConnectionOptions } from './connection.js';
import { RstStatus, SpdyError } from './errors.js';
import { controlFrame, dataFrame, FrameEncoder } from './frames.js';
import { headerValue } from './header-block.js';
import type { SpdyStream } from './stream.js';
import { mergeData, parseChunks } from './test-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

type Opts = Partial<Omit<SpdyConnectionOptions, 'role'>>;

/** A client and a server SpdyConnection over a real loopback TCP connection. */
async function pair(
  serverOpts: Opts = {},
  clientOpts: Opts = {},
): Promise<{ client: SpdyConnection; server: SpdyConnection }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer();
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>;
  const port = await listen(srv);
  const raw = net.connect(port, '127.0.0.1');
  const [serverSocket] = await accepted;
  sockets.add(raw).add(serverSocket);
  cleanups.push(() => closeServer(srv, sockets));
  return {
    client: new SpdyConnection(raw, { role: 'client', ...clientOpts }),
    server: new SpdyConnection(serverSocket, { role: 'server', ...serverOpts }),
  };
}

/** A server SpdyConnection and a raw socket to speak bytes at it. */
async function rawPeer(
  serverOpts: Opts = {},
): Promise<{ server: SpdyConnection; raw: net.Socket; received: () => Buffer }> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer();
  const accepted = once(srv, 'connection') as Promise<[net.Socket]>;
  const port = await listen(srv);
  const raw = net.connect(port, '127.0.0.1');
  const [serverSocket] = await accepted;
  sockets.add(raw).add(serverSocket);
  cleanups.push(() => closeServer(srv, sockets));
  const chunks: Buffer[] = [];
  raw.on('data', (c: Buffer) => chunks.push(c));
  raw.on('error', () => {});
  return {
    server: new SpdyConnection(serverSocket, { role: 'server', ...serverOpts }),
    raw,
    received: () => Buffer.concat(chunks),
  };
}

function collect(stream: SpdyStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => stream.once('end', () => resolve(Buffer.concat(chunks))));
}

const acceptAll = (conn: SpdyConnection): SpdyStream[] => {
  const streams: SpdyStream[] = [];
  conn.on('stream', (s) => {
    streams.push(s);
    s.accept();
  });
  return streams;
};

describe('SpdyConnection', () => {
  it('opens a stream with plain headers, carries data both ways and half-closes with FIN', async () => {
    const { client, server } = await pair();
    server.on('stream', (s) => {
      expect(headerValue(s.headers, 'streamType')).toBe('stdin');
      expect(s.id % 2).toBe(1);
      s.accept();
      // Echo, then half-close our side once the client half-closed its side.
      s.pipe(s);
    });
    const stream = client.createStream({ streamType: 'stdin' });
    await stream.waitReply(5000);
    const echoed = collect(stream);
    stream.write('hello ');
    stream.end('world');
    expect((await echoed).toString()).toBe('hello world');
    expect(stream.remoteEnd).toBe('fin');
  });

  it('answers PINGs from either side', async () => {
    const { client, server } = await pair();
    expect(await client.ping(5000)).toBeGreaterThanOrEqual(0);
    expect(await server.ping(5000)).toBeGreaterThanOrEqual(0);
  });

  it('reports a refused stream to its opener', async () => {
    const { client, server } = await pair();
    server.on('stream', (s) => s.refuse());
    const stream = client.createStream({ streamType: 'bogus' });
    const err = await stream.waitReply(5000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SpdyError);
    expect((err as SpdyError).code).toBe('STREAM_RESET');
    expect(stream.resetStatus).toBe(RstStatus.RefusedStream);
  });

  it('bounds the streams a peer may open at once', async () => {
    const { client, server } = await pair({ maxConcurrentStreams: 2 });
    acceptAll(server);
    const errors: string[] = [];
    server.on('streamError', (e) => errors.push(e.code));
    const streams = [1, 2, 3].map((i) => client.createStream({ n: String(i) }));
    const results = await Promise.allSettled(streams.map((s) => s.waitReply(5000)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    expect(errors).toEqual(['TOO_MANY_STREAMS']);
  });

  it('ends every stream when the connection closes, and sends GOAWAY', async () => {
    const { client, server } = await pair();
    const serverStreams = acceptAll(server);
    const stream = client.createStream({ streamType: 'stdout' });
    await stream.waitReply(5000);
    const goaway = once(client, 'goaway');
    const clientClosed = once(client, 'close');
    const ended = collect(stream);
    const serverEnded = collect(serverStreams[0]!);
    const reason = await server.close();
    expect(reason.by).toBe('local');
    expect(await goaway).toEqual([1, 0]); // last good stream 1, status OK
    await ended;
    await serverEnded;
    expect(stream.remoteEnd).toBe('closed');
    expect(() => client.createStream({ late: 'yes' })).toThrow(SpdyError);
    const clientReason = await clientClosed;
    expect(clientReason[0]).toMatchObject({ by: 'remote' });
  });

  it('keeps memory bounded for a slow reader: the socket pauses while a stream is full', async () => {
    const { client, server } = await pair({ streamHighWaterMark: 64 * 1024 });
    const serverStream = new Promise<SpdyStream>((resolve) =>
      server.on('stream', (s) => {
        s.accept();
        resolve(s);
      }),
    );
    const data = randomBytes(4 * 1024 * 1024);
    const stream = client.createStream({ streamType: 'stdin' });
    stream.end(data);
    const s = await serverStream;
    let maxBuffered = 0;
    const hash = createHash('sha256');
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        maxBuffered = Math.max(maxBuffered, s.readableLength);
        hash.update(chunk);
        setImmediate(cb);
      },
    });
    s.pipe(slow);
    await once(slow, 'finish');
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    // High-water mark plus what was in flight when the socket paused: far below the 4 MiB sent.
    expect(maxBuffered).toBeLessThan(512 * 1024);
  });

  it('answers DATA for a stream that never existed with RST_STREAM INVALID_STREAM and lives on', async () => {
    const { server, raw, received } = await rawPeer();
    const errors: SpdyError[] = [];
    server.on('streamError', (e) => errors.push(e));
    raw.write(dataFrame(99, Buffer.from('who?'), false));
    const ping = await new FrameEncoder().encode({ type: 'PING', id: 1 });
    raw.write(ping);
    // The PING echo comes after the RST: once it is here, the RST is too.
    while (received().length < 16 + ping.length) await once(raw, 'data');
    const frames = (await parseChunks([received()])).frames;
    expect(frames).toEqual([
      { type: 'RST_STREAM', streamId: 99, status: RstStatus.InvalidStream },
      { type: 'PING', id: 1 },
    ]);
    expect(errors.map((e) => e.code)).toEqual(['UNKNOWN_STREAM']);
    expect(server.isClosed).toBe(false);
  });

  it.each([
    ['garbage', Buffer.from('\xff\xfegarbage', 'latin1'), 'UNSUPPORTED_VERSION'],
    ['an oversized control frame', Buffer.from([0x80, 3, 0, 1, 0, 0x7f, 0xff, 0xff]), 'FRAME_TOO_LARGE'],
    [
      'a zlib block that is not zlib',
      controlFrame(2, 0, Buffer.concat([Buffer.from([0, 0, 0, 1]), Buffer.from('xx')])),
      'BAD_COMPRESSION',
    ],
  ])(
    'tears the connection down on %s: GOAWAY PROTOCOL_ERROR and a close reason, no error event',
    async (_n, bytes, code) => {
      const { server, raw, received } = await rawPeer();
      (server as unknown as NodeJS.EventEmitter).on('error', () => {
        throw new Error('a connection must not emit error');
      });
      raw.write(bytes);
      const [reason] = await once(server, 'close');
      expect(reason).toMatchObject({ by: 'local', error: { code } });
      if (!raw.closed) await once(raw, 'close');
      const frames = mergeData((await parseChunks([received()])).frames);
      expect(frames).toEqual([{ type: 'GOAWAY', lastGoodStreamId: 0, status: 1 }]);
    },
  );

  /**
   * A connection whose peer never reads: its socket is an in-memory Duplex whose writes never
   * complete (a full pipe, without kernel buffers to fill first). `frame(i)` is written to it in
   * bursts, whenever the connection reads, for at most 10 s or 64 MiB; resolves with the bytes
   * it let in and how it closed.
   */
  async function flood(
    role: 'server' | 'client',
    frame: (i: number) => Buffer,
  ): Promise<{ offered: number; reason: CloseReason | undefined }> {
    let wanted: (() => void) | undefined;
    const socket = new Duplex({
      read: () => wanted?.(),
      write: () => {}, // never done: the attacker reads nothing
    });
    const conn = new SpdyConnection(socket, { role });
    let reason: CloseReason | undefined;
    conn.once('close', (r) => (reason = r));
    let offered = 0;
    const deadline = Date.now() + 10_000;
    for (let i = 0; !conn.isClosed && offered < 64 * 1024 * 1024 && Date.now() < deadline; i += 4096) {
      const burst = Buffer.concat(Array.from({ length: 4096 }, (_, k) => frame(i + k)));
      offered += burst.length;
      if (!socket.push(burst)) {
        await new Promise<void>((resolve) => {
          wanted = resolve;
          setTimeout(resolve, 100);
        });
      }
    }
    socket.destroy();
    if (!reason) await once(conn, 'close');
    return { offered, reason: reason ?? (conn as unknown as { closeReason: CloseReason }).closeReason };
  }

  it.each([
    ['PINGs (CVE-2019-9512 ping flood)', 'server', (i: number) => controlFrame(6, 0, u32(2 * i + 1))],
    [
      'DATA for streams that never existed',
      'server',
      (i: number) => dataFrame(2 * (i % 100_000) + 1001, Buffer.alloc(0), false),
    ],
    // A hostile server against a client: kexec, kubectl's role, the apiserver's StreamTranslator.
    ['PINGs', 'client', (i: number) => controlFrame(6, 0, u32(2 * i + 2))],
  ] as const)(
    'stops reading a peer that floods %s at a %s and reads no answers, then GOAWAY',
    async (_n, role, frame) => {
      const { offered, reason } = await flood(role, frame);
      expect(reason).toMatchObject({ by: 'local', error: { code: 'TOO_MANY_CONTROL_FRAMES' } });
      // A socket buffer of answers and one burst, not the 64 MiB on offer.
      expect(offered).toBeLessThan(1024 * 1024);
    },
  );

  it('keeps answering a peer that pings while it reads, however many pings', async () => {
    const { server, raw, received } = await rawPeer();
    const pings = Buffer.concat(Array.from({ length: 20_000 }, (_, i) => controlFrame(6, 0, u32(2 * i + 1))));
    raw.write(pings);
    while (received().length < 20_000 * 12) await once(raw, 'data');
    expect(server.isClosed).toBe(false);
  });

  it('closes lingering: a slow reader that still pings gets every byte queued before the close, then FIN', async () => {
    // More than the kernels' buffers hold, read at 3 MiB/s: the last bytes leave Node long after
    // upstream's 5 s close timeout, while the peer keeps sending (kubectl pings every 5 s).
    const { server, raw, received } = await rawPeer();
    raw.pause();
    const data = randomBytes(24 * 1024 * 1024);
    server.on('stream', (s) => {
      s.accept();
      s.end(data);
      void server.close();
    });
    const syn = await new FrameEncoder().encode({
      type: 'SYN_STREAM',
      streamId: 1,
      ...{ associatedToStreamId: 0, priority: 0, slot: 0, fin: true, unidirectional: false },
      headers: new Map(),
    });
    raw.write(syn);
    let errored: Error | undefined;
    raw.on('error', (e) => (errored = e));
    const pinger = setInterval(() => raw.writable && raw.write(controlFrame(6, 0, u32(1))), 500);
    cleanups.push(() => clearInterval(pinger));
    raw.on('data', (c: Buffer) => {
      raw.pause();
      setTimeout(() => raw.resume(), (c.length / (3 * 1024 * 1024)) * 1000);
    });
    raw.resume();
    await new Promise((resolve) => raw.once('close', resolve));
    clearInterval(pinger);
    expect(errored).toBeUndefined();
    const frames = mergeData((await parseChunks([received()])).frames);
    const got = Buffer.concat(frames.flatMap((f) => (f.type === 'DATA' && f.streamId === 1 ? [f.data] : [])));
    expect(got.length).toBe(data.length);
    expect(got.equals(data)).toBe(true);
  }, 30_000);

  it('ignores SETTINGS and WINDOW_UPDATE and never waits for a window', async () => {
    const { server, raw, received } = await rawPeer();
    const settings = once(server, 'settings');
    const enc = new FrameEncoder();
    raw.write(
      await enc.encode({ type: 'SETTINGS', clearSettings: false, entries: [{ flags: 0, id: 7, value: 1 }] }),
    );
    raw.write(await enc.encode({ type: 'WINDOW_UPDATE', streamId: 0, deltaWindowSize: 1 }));
    raw.write(await enc.encode({ type: 'PING', id: 3 }));
    await settings;
    while (received().length < 12) await once(raw, 'data');
    expect((await parseChunks([received()])).frames).toEqual([{ type: 'PING', id: 3 }]);
  });
});
