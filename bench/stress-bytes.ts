/**
 * Stress: at least 200 execs of 64–256 MiB spread over every path (kexec WebSocket v5 through the
 * StreamTranslator and spliced with --no-stream-translation, kexec SPDY, kubectl v1.35 WebSocket
 * and SPDY, kubectl v1.20) and three modes (fast reader, slow reader, stdin closed early), with
 * busy loops beside the lab; every byte count, sha256 and exit code must be exact.
 * See stress-bytes-run.ts for how each exec is checked.
 *
 * Run: npm run build && node dist/bench/stress-bytes.js [--execs 200] [--min-mib 64] [--max-mib 256]
 *      [--parallel 3] [--hogs 2]
 * Exits 1 when any exec was wrong, after listing them.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  describeFailure,
  MiB,
  runStress,
  startCpuHogs,
  startStressLabs,
  STRESS_MODES,
  STRESS_PATHS,
  summarise,
  type StressExec,
} from './stress-bytes-run.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      execs: { type: 'string', default: '200' },
      'min-mib': { type: 'string', default: '64' },
      'max-mib': { type: 'string', default: '256' },
      parallel: { type: 'string', default: '3' },
      hogs: { type: 'string', default: '2' },
    },
  });
  const n = Number(values.execs);
  const [lo, hi] = [Number(values['min-mib']), Number(values['max-mib'])];
  const execs: StressExec[] = Array.from({ length: n }, (_, i) => {
    const mode = STRESS_MODES[Math.floor(i / STRESS_PATHS.length) % STRESS_MODES.length]!;
    return {
      path: STRESS_PATHS[i % STRESS_PATHS.length]!,
      mode,
      bytes: Math.floor((lo + Math.random() * (hi - lo)) * MiB) + Math.floor(Math.random() * 4096),
      exitCode: i % 4,
      ...(mode === 'slow' ? { slowMiBps: 16 + Math.floor(Math.random() * 48) } : {}),
    };
  });

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stress-bytes-'));
  const labs = await startStressLabs(dir);
  const stopHogs = startCpuHogs(Number(values.hogs));
  const t0 = performance.now();
  try {
    const results = await runStress(
      execs,
      labs,
      path.join(dir, 'home'),
      Number(values.parallel),
      (r, done) => {
        const line = `${done}/${n} ${r.ok ? 'ok  ' : 'FAIL'} ${r.exec.path.name}, ${r.exec.mode}, ${(r.exec.bytes / MiB).toFixed(1)} MiB in ${r.seconds.toFixed(1)} s`;
        console.log(r.ok ? line : `${line}\n  ${describeFailure(r)}`);
      },
    );
    const failed = results.filter((r) => !r.ok);
    const total = results.reduce((s, r) => s + r.got.bytes, 0) / MiB;
    console.log(
      `\n${results.length} execs, ${failed.length} failed, ${total.toFixed(0)} MiB checked in ` +
        `${((performance.now() - t0) / 1000).toFixed(0)} s (${values.hogs} CPU hogs, ${values.parallel} at once, ${os.cpus().length} cores)`,
    );
    for (const line of summarise(results)) console.log(`  ${line}`);
    for (const r of failed) console.log(`  ${describeFailure(r)}`);
    process.exitCode = failed.length ? 1 : 0;
  } finally {
    stopHogs();
    await Promise.all([labs.translated.stop(), labs.spliced.stop()]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
