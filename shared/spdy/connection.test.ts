import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { Writable } from 'node:stream';
import { closeServer, listen } from '../test-support/loopback.js';
import { SpdyConnection, type SpdyConnectionOptions } from './connection.js';
import { RstStatus, SpdyError } from './errors.js';
import { controlFrame, dataFrame, FrameEncoder } from './frames.js';
import { headerValue } from './header-block.js';
import type { SpdyStream } from './stream.js';
import { mergeData, parseChunks } from './test-helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
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
