/**
 * Benchmark of the splice rate limit (`maxBytesPerSec`) of a real UpgradeAwareHandler, on loopback.
 *
 * For each configured rate it starts a raw TCP backend that answers 101, a proxy (http server +
 * UpgradeAwareHandler) and a client, then pushes N MiB of random bytes through the upgraded stream
 * in both directions at once (each direction has its own limiter). Per direction it prints:
 * - overall: bytes / time from the first write to the last byte received (includes the initial
 *   bucket, a tenth of a second's worth, so it reads a little above the rate on short runs);
 * - steady: the rate between 10 % and 100 % of the bytes received (the initial bucket excluded);
 * - the error of each versus the configured rate, and whether the bytes arrived intact (sha256);
 * - peak held: the most bytes the proxy held in user space for that direction (read from its
 *   source socket but not yet handed to the kernel on its destination socket; socket buffers and
 *   the throttle's buffers alike), sampled on every chunk and every 5 ms.
 *
 * Run: npm run build && npm run bench:throttle [-- --mib 8 --rates 1,2,8]
 * Only loopback is used. Each rate is bounded: it aborts after three times its expected duration
 * plus ten seconds.
 */
import http from 'node:http';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { UpgradeAwareHandler } from '../shared/proxy/upgrade-aware-handler.js';

const MiB = 1024 * 1024;
const CHUNK = 64 * 1024;
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: bench\r\n\r\n';

interface Direction {
  name: 'up' | 'down';
  seconds: number;
  overall: number;
  steady: number;
  peakHeld: number;
  intact: boolean;
}

/** Bytes a proxy socket pair holds for one direction: read from `src`, not yet written by `dst`. */
function heldMeter(src: net.Socket, dst: net.Socket): () => number {
  const value = (): number => src.bytesRead - (dst.bytesWritten - dst.writableLength);
  const base = value();
  return () => value() - base;
}

async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
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

async function send(socket: net.Socket, total: number): Promise<string> {
  const hash = createHash('sha256');
  for (let sent = 0; sent < total && !socket.destroyed;) {
    const buf = randomBytes(Math.min(CHUNK, total - sent));
    hash.update(buf);
    sent += buf.length;
    if (!socket.write(buf)) await drainOrClose(socket);
  }
  return hash.digest('hex');
}

interface Received {
  sha256: string;
  /** When at least 10 % had arrived (ms), and how many bytes had then. */
  t10: number;
  b10: number;
  /** When all had arrived (ms). */
  t100: number;
}

function receive(socket: net.Socket, total: number): Promise<Received> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    let t10 = 0;
    let b10 = 0;
    const onClose = (): void => reject(new Error(`closed after ${bytes} of ${total} bytes`));
    socket.on('data', (c: Buffer) => {
      hash.update(c);
      bytes += c.length;
      if (!t10 && bytes >= total / 10) [t10, b10] = [performance.now(), bytes];
      if (bytes < total) return;
      socket.off('close', onClose);
      resolve({ sha256: hash.digest('hex'), t10, b10, t100: performance.now() });
    });
    socket.once('close', onClose);
    socket.resume();
  });
}

async function runRate(rate: number, total: number): Promise<Direction[]> {
  const closers: (() => void)[] = [];
  try {
    let gotBackend: (s: net.Socket) => void = () => {};
    const backendSocket = new Promise<net.Socket>((resolve) => (gotBackend = resolve));
    const backendServer = net.createServer((socket) => {
      closers.push(() => socket.destroy());
      let head = '';
      const onData = (c: Buffer): void => {
        head += c.toString('latin1');
        if (!head.includes('\r\n\r\n')) return;
        socket.off('data', onData);
        socket.pause();
        socket.write(SWITCH);
        gotBackend(socket);
      };
      socket.on('data', onData);
    });
    closers.push(() => backendServer.close());
    const backendPort = await listen(backendServer);

    let meters: { up: () => number; down: () => number } | undefined;
    const peak = { up: 0, down: 0 };
    const sample = (): void => {
      if (!meters) return;
      peak.up = Math.max(peak.up, meters.up());
      peak.down = Math.max(peak.down, meters.down());
    };
    const handler = new UpgradeAwareHandler({
      location: new URL(`http://127.0.0.1:${backendPort}/`),
      maxBytesPerSec: rate,
      onSplice: (client, backend) => {
        const c = client as net.Socket;
        const b = backend as net.Socket;
        meters = { up: heldMeter(c, b), down: heldMeter(b, c) };
        for (const s of [c, b]) {
          // Before the splice's own listener; the microtask samples once it has passed the chunk on.
          s.prependListener('data', () => {
            sample();
            queueMicrotask(sample);
          });
        }
      },
    });
    const proxy = http.createServer((req, res) => handler.handle(req, res));
    proxy.on('upgrade', (req, socket, head) => handler.handleUpgrade(req, socket, head));
    closers.push(() => {
      proxy.closeAllConnections();
      proxy.close();
    });
    const proxyPort = await listen(proxy);

    const client = net.connect(proxyPort, '127.0.0.1');
    closers.push(() => client.destroy());
    await once(client, 'connect');
    client.write('GET / HTTP/1.1\r\nHost: bench\r\nConnection: Upgrade\r\nUpgrade: bench\r\n\r\n');
    const [head] = (await once(client, 'data')) as [Buffer];
    if (!head.toString('latin1').startsWith('HTTP/1.1 101 ')) throw new Error('no 101 from the proxy');
    if (head.length !== SWITCH.length) throw new Error('unexpected bytes with the 101');
    client.pause();
    const backend = await backendSocket;

    const timer = setInterval(sample, 5);
    closers.push(() => clearInterval(timer));
    const start = performance.now();
    const upRx = receive(backend, total);
    const downRx = receive(client, total);
    const [upHash, downHash] = await Promise.all([send(client, total), send(backend, total)]);
    const [up, down] = await Promise.all([upRx, downRx]);
    const result = (name: 'up' | 'down', r: Received, sent: string): Direction => ({
      name,
      seconds: (r.t100 - start) / 1000,
      overall: total / ((r.t100 - start) / 1000),
      steady: (total - r.b10) / ((r.t100 - r.t10) / 1000),
      peakHeld: peak[name],
      intact: r.sha256 === sent,
    });
    return [result('up', up, upHash), result('down', down, downHash)];
  } finally {
    for (const close of closers.reverse()) close();
  }
}

function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result after ${ms} ms`)), ms);
  });
  return Promise.race([p, deadline]).finally(() => clearTimeout(timer));
}

const pct = (measured: number, want: number): string =>
  `${measured >= want ? '+' : ''}${(((measured - want) / want) * 100).toFixed(2)}%`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      mib: { type: 'string', default: '8' },
      rates: { type: 'string', default: '1,2,8' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: npm run bench:throttle [-- --mib N] [--rates R1,R2,...]  (rates in MiB/s)');
    return;
  }
  const mib = Number(values.mib);
  const rates = values.rates.split(',').map(Number);
  if (!(mib > 0) || rates.some((r) => !(r > 0))) throw new Error('--mib and every rate must be positive');

  const total = Math.round(mib * MiB);
  console.log(
    `splice throttle: ${mib} MiB each way at the same time, per rate (loopback, node ${process.version})`,
  );
  console.log(
    [
      'rate MiB/s',
      'dir ',
      'seconds',
      'overall MiB/s',
      'error',
      'steady MiB/s',
      'error',
      'peak held KiB',
      'intact',
    ].join('  '),
  );
  let failed = false;
  for (const r of rates) {
    const expectedMs = (mib / r) * 1000;
    const dirs = await withDeadline(runRate(r * MiB, total), expectedMs * 3 + 10_000, `${r} MiB/s`);
    for (const d of dirs) {
      failed ||= !d.intact;
      console.log(
        [
          String(r).padStart(10),
          d.name.padEnd(4),
          d.seconds.toFixed(3).padStart(7),
          (d.overall / MiB).toFixed(3).padStart(13),
          pct(d.overall, r * MiB).padStart(7),
          (d.steady / MiB).toFixed(3).padStart(12),
          pct(d.steady, r * MiB).padStart(7),
          (d.peakHeld / 1024).toFixed(0).padStart(13),
          String(d.intact).padStart(6),
        ].join('  '),
      );
    }
  }
  if (failed) process.exitCode = 1;
}

main().then(
  // Anything left behind (a socket a peer did not close yet) must not keep the bench running.
  () => process.exit(),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
