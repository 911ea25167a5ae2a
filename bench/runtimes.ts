/**
 * The lab on each runtime, in one run (`npm run bench:runtimes [-- --execs 30 --mib 64]`): the
 * time from `startLab` to the demo pod Running, the latency of a `true` exec (WebSocket v5 from
 * the client, as kubectl; median and p95 of N sequential execs), and stdout throughput (`head -c
 * N MiB /dev/zero`, bytes counted at the client). containerd is skipped, loudly, where it cannot
 * start. Prints one JSON line per runtime.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { containerdUnavailable } from '../lab/containerd.js';
import { startLab, type Lab } from '../lab/lab.js';
import { LAB_RUNTIMES, type LabRuntime } from '../lab/plan.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { execInDemo } from './lab-exec.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function stdoutBytes(lab: Lab, tls: { ca: Buffer }, mib: number): Promise<number> {
  const u = new URL('/api/v1/namespaces/default/pods/demo/exec', lab.apiserverUrl);
  for (const c of ['head', '-c', String(mib * 1024 * 1024), '/dev/zero']) u.searchParams.append('command', c);
  u.searchParams.set('container', 'demo');
  u.searchParams.set('stdout', 'true');
  let n = 0;
  const count = new Writable({
    write(chunk: Buffer, _enc, cb) {
      n += chunk.length;
      cb();
    },
  });
  await runChannelClient({
    url: u.href,
    headers: { Authorization: `Bearer ${lab.adminToken}` },
    tls,
    stdout: count,
  });
  return n;
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

async function bench(runtime: LabRuntime, execs: number, mib: number): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-${runtime}-`));
  const t0 = performance.now();
  const lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, runtime, log: () => {} });
  const startToRunningMs = performance.now() - t0;
  try {
    const tls = { ca: fs.readFileSync(lab.caFile!) };
    await execInDemo(lab, tls, ['true']); // warm-up
    const lat: number[] = [];
    for (let i = 0; i < execs; i++) {
      const s = performance.now();
      const code = await execInDemo(lab, tls, ['true']);
      if (code !== 0) throw new Error(`exec true exited ${code}`);
      lat.push(performance.now() - s);
    }
    lat.sort((a, b) => a - b);
    const s = performance.now();
    const bytes = await stdoutBytes(lab, tls, mib);
    const secs = (performance.now() - s) / 1000;
    if (bytes !== mib * 1024 * 1024) throw new Error(`read ${bytes} bytes of ${mib} MiB`);
    return {
      runtime,
      startToRunningMs: Math.round(startToRunningMs),
      execMedianMs: Math.round(pct(lat, 0.5)),
      execP95Ms: Math.round(pct(lat, 0.95)),
      stdoutMiBps: Math.round((mib / secs) * 10) / 10,
      execs,
      mib,
    };
  } finally {
    await lab.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const execs = arg('execs', 30);
const mib = arg('mib', 64);
for (const runtime of LAB_RUNTIMES) {
  const why = runtime === 'containerd' ? containerdUnavailable() : undefined;
  if (why) {
    process.stderr.write(`*** SKIPPING containerd: ${why} ***\n`);
    continue;
  }
  process.stdout.write(`${JSON.stringify(await bench(runtime, execs, mib))}\n`);
}
