/**
 * Slow reader: the container writes zeros as fast as it can (`head -c SIZE /dev/zero`) while the
 * client (runChannelClient through the lab's apiserver) drains at a fixed slow rate. Reports, per
 * hop, the peak RSS growth, and how much the producer had written (/proc/PID/io wchar) against how
 * much the client had read: with backpressure the difference stays at the buffers of the chain.
 *
 * Run: npm run build && node dist/bench/slow-reader.js [--seconds 20] [--kib-per-tick 64] [--tick-ms 20]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { parseArgs } from 'node:util';
import { startLab } from '../lab/lab.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';

const SERVICES = ['apiserver', 'kubelet-sim', 'cri-shim'] as const;
const MiB = 1024 * 1024;
const PRODUCER = 'head -c 68719476736 /dev/zero';

const rss = (pid: number): number =>
  Number(/^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

function producerWritten(): number | undefined {
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').join(' ').trim() !== PRODUCER) continue;
      return Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${e}/io`, 'utf8'))?.[1]);
    } catch {
      // gone
    }
  }
  return undefined;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '20' },
      'kib-per-tick': { type: 'string', default: '64' },
      'tick-ms': { type: 'string', default: '20' },
    },
  });
  const seconds = Number(values.seconds);
  const tickMs = Number(values['tick-ms']);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slow-reader-'));
  const lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  try {
    const before = Object.fromEntries(SERVICES.map((s) => [s, rss(lab.pids[s]!)]));
    const peak = { ...before };
    let read = 0;
    const ac = new AbortController();
    const slow = new Writable({
      highWaterMark: Number(values['kib-per-tick']) * 1024,
      write(chunk: Buffer, _e, cb) {
        read += chunk.length;
        setTimeout(cb, tickMs);
      },
    });
    const u = new URL('/api/v1/namespaces/default/pods/demo/exec', lab.apiserverUrl);
    for (const c of ['sh', '-c', PRODUCER]) u.searchParams.append('command', c);
    u.searchParams.set('container', 'demo');
    u.searchParams.set('stdout', 'true');
    const session = runChannelClient({
      url: u.href,
      headers: { Authorization: `Bearer ${lab.adminToken}` },
      tls: { ca: fs.readFileSync(lab.caFile!) },
      stdout: slow,
      stderr: new PassThrough().resume(),
      signal: ac.signal,
    }).catch(() => undefined);
    let written = 0;
    const t0 = Date.now();
    while (Date.now() - t0 < seconds * 1000) {
      await new Promise((r) => setTimeout(r, 250));
      for (const s of SERVICES) peak[s] = Math.max(peak[s]!, rss(lab.pids[s]!));
      written = producerWritten() ?? written;
    }
    ac.abort();
    await session;
    slow.destroy();
    const secs = (Date.now() - t0) / 1000;
    console.log(
      `${secs.toFixed(1)} s: client read ${(read / MiB).toFixed(1)} MiB (${(read / MiB / secs).toFixed(2)} MiB/s); ` +
        `producer wrote ${(written / MiB).toFixed(1)} MiB; in flight ${((written - read) / MiB).toFixed(1)} MiB`,
    );
    for (const s of SERVICES) {
      console.log(
        `  ${s.padEnd(12)} rss ${(before[s]! / MiB).toFixed(1)} MiB, peak ${(peak[s]! / MiB).toFixed(1)} MiB ` +
          `(+${((peak[s]! - before[s]!) / MiB).toFixed(1)})`,
      );
    }
  } finally {
    await lab.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
