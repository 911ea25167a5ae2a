/**
 * Streaming tests of the splice behind a real UpgradeAwareHandler, over loopback sockets: the rate
 * limit in each direction, and integrity plus bounded proxy buffering when a reader is slower than
 * its writer. The backend is a raw TCP server that answers 101 and then hands its socket to the test.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { UpgradeAwareHandler, type UpgradeAwareHandlerOptions } from './upgrade-aware-handler.js';
import { closeServer, listen, readHead, upgradeRequest } from '../test-support/loopback.js';

const MiB = 1024 * 1024;
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test-protocol\r\n\r\n';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Stream {
  /** The test's end of the client connection, after the 101 head. */
  client: net.Socket;
  /** The backend's end of the backend connection. */
  backend: net.Socket;
  /** The proxy's own two sockets (its client side and its backend side). */
  proxy: { client: Duplex; backend: Duplex };
}

/** Backend, proxy and client on loopback; resolves once the 101 has reached the client. */
async function openStream(opts: Partial<UpgradeAwareHandlerOptions> = {}): Promise<Stream> {
  const sockets = new Set<net.Socket>();
  let backendSocket: net.Socket | undefined;
  const backendServer = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    let head = Buffer.alloc(0);
    const onData = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      if (head.indexOf('\r\n\r\n') < 0) return;
      socket.off('data', onData);
      socket.pause();
      backendSocket = socket;
      socket.write(SWITCH);
    };
    socket.on('data', onData);
  });
  const backendPort = await listen(backendServer);
  cleanups.push(() => closeServer(backendServer, sockets));

  let proxySockets: Stream['proxy'] | undefined;
  const handler = new UpgradeAwareHandler({
    location: new URL(`http://127.0.0.1:${backendPort}/`),
    ...opts,
    onSplice: (client, backend, before) => {
      proxySockets = { client, backend };
      opts.onSplice?.(client, backend, before);
    },
  });
  const server = http.createServer((req, res) => handler.handle(req, res));
  server.on('upgrade', (req, socket, head) => handler.handleUpgrade(req, socket, head));
  const port = await listen(server);
  cleanups.push(() => closeServer(server));

  const client = net.connect(port, '127.0.0.1');
  cleanups.push(() => void client.destroy());
  client.on('error', () => {});
  await once(client, 'connect');
  client.write(upgradeRequest('/'));
  const { head, rest } = await readHead(client);
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  expect(rest.length).toBe(0);
  // Both are set by now: the backend keeps its socket before writing the 101, and the proxy calls
  // onSplice in the same tick as it relays the 101.
  return { client, backend: backendSocket!, proxy: proxySockets! };
}

/** Writes `total` bytes from `next(size)` in chunks, waiting for 'drain' whenever write() says so. */
async function writeAll(socket: net.Socket, total: number, chunk: number, next: (n: number) => Buffer) {
  for (let sent = 0; sent < total;) {
    const buf = next(Math.min(chunk, total - sent));
    sent += buf.length;
    if (!socket.write(buf)) await drainOrClose(socket);
    if (socket.destroyed) throw new Error(`writer closed after ${sent} bytes`);
  }
}

function drainOrClose(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

interface Received {
  bytes: number;
  sha256: string;
  /** performance.now() when the last expected byte arrived. */
  doneAt: number;
}

/**
 * Reads `total` bytes. With `burst`, pauses the socket after every `burst` bytes for `pauseMs`
 * (a deliberately slow consumer). `onBytes` sees the running count as data arrives.
 */
function readAll(
  socket: net.Socket,
  total: number,
  opts: { burst?: number; pauseMs?: number; onBytes?: (n: number) => void } = {},
): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let sinceBreak = 0;
    const onClose = (): void => reject(new Error(`connection closed after ${bytes} of ${total} bytes`));
    socket.on('data', (c: Buffer) => {
      bytes += c.length;
      hash.update(c);
      opts.onBytes?.(bytes);
      if (bytes >= total) {
        socket.off('close', onClose);
        resolve({ bytes, sha256: hash.digest('hex'), doneAt: performance.now() });
        return;
      }
      sinceBreak += c.length;
      if (opts.burst && sinceBreak >= opts.burst) {
        sinceBreak = 0;
        socket.pause();
        setTimeout(() => socket.resume(), opts.pauseMs ?? 0);
      }
    });
    socket.once('close', onClose);
    socket.resume();
  });
}

/** Tracks the most bytes held in the proxy's socket buffers (both sockets, both sides of each). */
function watchBuffered(proxy: Stream['proxy']): { peak: () => number; pausedSources: () => number } {
  let peak = 0;
  let pausedSources = 0;
  const sample = (): void => {
    const buffered =
      proxy.client.writableLength +
      proxy.client.readableLength +
      proxy.backend.writableLength +
      proxy.backend.readableLength;
    peak = Math.max(peak, buffered);
  };
  for (const s of [proxy.client, proxy.backend]) {
    // Runs before the splice's own listener: sample again once that one has written the chunk on.
    s.prependListener('data', () => {
      sample();
      queueMicrotask(sample);
    });
    s.on('pause', () => pausedSources++);
  }
  const timer = setInterval(sample, 2);
  cleanups.push(() => clearInterval(timer));
  return { peak: () => peak, pausedSources: () => pausedSources };
}

describe('UpgradeAwareHandler: streaming through the splice', () => {
  it('limits each direction to maxBytesPerSec (8 MiB at 2 MiB/s takes about 4 s each way)', async () => {
    const rate = 2 * MiB;
    const total = 8 * MiB;
    const { client, backend } = await openStream({ maxBytesPerSec: rate });
    const data = randomBytes(64 * 1024);
    const start = performance.now();
    // No more than a bucket (a tenth of a second's worth) may ever be ahead of the rate.
    let worstExcess = -Infinity;
    const checkRate = (n: number): void => {
      worstExcess = Math.max(worstExcess, n - (rate * (performance.now() - start)) / 1000);
    };
    const up = readAll(backend, total, { onBytes: checkRate });
    const down = readAll(client, total, { onBytes: checkRate });
    await Promise.all([
      writeAll(client, total, data.length, (n) => data.subarray(0, n)),
      writeAll(backend, total, data.length, (n) => data.subarray(0, n)),
    ]);
    const [u, d] = await Promise.all([up, down]);
    const seconds = { up: (u.doneAt - start) / 1000, down: (d.doneAt - start) / 1000 };
    const want = createHash('sha256');
    for (let i = 0; i < total / data.length; i++) want.update(data);
    const sha256 = want.digest('hex');
    expect(u).toMatchObject({ bytes: total, sha256 });
    expect(d).toMatchObject({ bytes: total, sha256 });
    expect(seconds.up).toBeGreaterThan(3);
    expect(seconds.up).toBeLessThan(8);
    expect(seconds.down).toBeGreaterThan(3);
    expect(seconds.down).toBeLessThan(8);
    expect(worstExcess).toBeLessThan(512 * 1024);
  });

  it('lets a slow client read all a finished backend sent, while it still sends: FIN, never a reset', async () => {
    const total = 16 * MiB;
    const { client, backend } = await openStream();
    const data = randomBytes(total);
    backend.resume(); // takes whatever the client sends
    backend.end(data);
    // The client keeps writing (as kubectl pings every 5 s, or stdin nobody reads) while it reads slowly.
    let errored: Error | undefined;
    client.on('error', (e) => (errored = e));
    const chatter = setInterval(() => client.writable && client.write(Buffer.alloc(1024)), 2);
    cleanups.push(() => clearInterval(chatter));
    const ended = new Promise<void>((resolve) => client.once('end', resolve));
    const got = await readAll(client, total, { burst: MiB, pauseMs: 30 });
    await ended;
    clearInterval(chatter);
    expect(errored).toBeUndefined();
    expect(got.bytes).toBe(total);
    expect(got.sha256).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('carries 64 MiB each way intact to slow readers, with the proxy buffering only a little', async () => {
    const total = 64 * MiB;
    const { client, backend, proxy } = await openStream();
    const buffered = watchBuffered(proxy);
    const sent = { up: createHash('sha256'), down: createHash('sha256') };
    const random = (h: ReturnType<typeof createHash>) => (n: number) => {
      const b = randomBytes(n);
      h.update(b);
      return b;
    };
    // Each reader takes 1 MiB, then looks away for 10 ms: far slower than loopback.
    const slow = { burst: MiB, pauseMs: 10 };
    const up = readAll(backend, total, slow);
    const down = readAll(client, total, slow);
    const rssBefore = process.memoryUsage().rss;
    await Promise.all([
      writeAll(client, total, 256 * 1024, random(sent.up)),
      writeAll(backend, total, 256 * 1024, random(sent.down)),
    ]);
    const [u, d] = await Promise.all([up, down]);
    const rssGrowth = process.memoryUsage().rss - rssBefore;
    expect(u.bytes).toBe(total);
    expect(d.bytes).toBe(total);
    expect(u.sha256).toBe(sent.up.digest('hex'));
    expect(d.sha256).toBe(sent.down.digest('hex'));
    // Without backpressure the proxy would hold most of what the readers had not taken yet.
    expect(buffered.peak()).toBeLessThan(8 * MiB);
    expect(rssGrowth).toBeLessThan(64 * MiB);
    // The readers were the bottleneck: the proxy had to pause its sources, over and over.
    expect(buffered.pausedSources()).toBeGreaterThan(10);
  });
});
