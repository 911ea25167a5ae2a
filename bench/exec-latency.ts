/**
 * The exec round trip of `true` (warm in-process client) through a lab, with the CPU each hop
 * spent per exec: on a machine shared with other work the CPU figures are steadier than the wall
 * times. Paths: kexec WS v5 through the StreamTranslator, kexec SPDY spliced, and the same exec
 * straight at the cri-shim (CRI Exec, then WebSocket or SPDY to its streaming server), which is
 * what the chain's cost is measured against (kexec-lab issue 16).
 *
 * Run: npm run build && node dist/bench/exec-latency.js [--count 40] [--plain]
 * Run it under `nice -n -10` on a busy machine: the lab's services inherit it. Only loopback.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { criClient, kexecTrue, runtimeTrue, startChainLab } from './compare/chain.js';
import { cpuMsOf, percentile } from './compare/stats.js';

const { values } = parseArgs({
  options: { count: { type: 'string', default: '40' }, plain: { type: 'boolean', default: false } },
});
const count = Number(values.count);

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-exec-latency-'));
  const l = await startChainLab(dir, { secure: !values.plain, translation: true });
  const cri = criClient(l);
  try {
    const pids = [l.lab.pids.apiserver!, l.lab.pids['kubelet-sim']!, l.lab.pids['cri-shim']!];
    const paths: [string, () => Promise<number>][] = [
      ['kexec WS v5 translated', () => kexecTrue(l, 'websocket')],
      ['kexec SPDY spliced', () => kexecTrue(l, 'spdy')],
      ['runtime only, WS v5', () => runtimeTrue(l, cri, 'websocket')],
      ['runtime only, SPDY', () => runtimeTrue(l, cri, 'spdy')],
    ];
    for (const [, run] of paths) for (let i = 0; i < 3; i++) await run(); // warm every hop
    console.log(
      `${values.plain ? 'plain' : 'TLS'}, ${count} execs of true per path, load ${os.loadavg()[0]!.toFixed(1)}`,
    );
    console.log(
      'path                     p50 ms  p90 ms | CPU ms per exec: apiserver kubelet cri-shim client',
    );
    for (const [name, run] of paths) {
      const before = pids.map(cpuMsOf);
      const client = process.cpuUsage();
      const ms: number[] = [];
      for (let i = 0; i < count; i++) ms.push(await run());
      const hop = pids.map((p, i) => ((cpuMsOf(p) - before[i]!) / count).toFixed(1).padStart(9));
      const own = process.cpuUsage(client);
      console.log(
        `${name.padEnd(24)} ${percentile(ms, 50).toFixed(1).padStart(6)}  ${percentile(ms, 90).toFixed(1).padStart(6)} |` +
          `                 ${hop.join(' ')} ${((own.user + own.system) / 1000 / count).toFixed(1).padStart(6)}`,
      );
    }
  } finally {
    cri.close();
    await l.lab.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// A failure rejects the top-level await: Node prints it and exits 1.
await main();
// The CRI client's channel must not keep the process up once the figures are out.
process.exit(0);
