/**
 * The short version of bench/stress-bytes.ts (kexec-lab issue 11, "not one byte lost"): every
 * path (kexec WebSocket v5 translated and spliced, kexec SPDY, kubectl v1.35 WebSocket and SPDY,
 * kubectl v1.20) in every mode (fast reader, slow reader, stdin closed early), with a busy loop
 * beside the lab: each exec's byte count, sha256 and exit code exact. The full run, 200 execs of
 * 64–256 MiB, is `node dist/bench/stress-bytes.js`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Lab } from '../lab/lab.js';
import {
  describeFailure,
  MiB,
  runStress,
  startCpuHogs,
  startStressLabs,
  STRESS_MODES,
  STRESS_PATHS,
  type StressExec,
} from '../bench/stress-bytes-run.js';

let dir = '';
let labs: { translated: Lab; spliced: Lab };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'stress-bytes-e2e-'));
  labs = await startStressLabs(dir);
}, 120_000);

afterAll(async () => {
  await Promise.all([labs?.translated.stop(), labs?.spliced.stop()]);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('carries every byte through every path and mode, with the right exit code', async () => {
  const execs: StressExec[] = STRESS_PATHS.flatMap((p, i) =>
    STRESS_MODES.map((mode, j) => ({
      path: p,
      mode,
      bytes: 6 * MiB + 1000 * (i * 3 + j),
      exitCode: (i + j) % 3,
      ...(mode === 'slow' ? { slowMiBps: 8 } : {}),
    })),
  );
  const stopHogs = startCpuHogs(1);
  try {
    const results = await runStress(execs, labs, path.join(dir, 'home'), 3);
    expect(results.filter((r) => !r.ok).map(describeFailure)).toEqual([]);
    expect(results).toHaveLength(STRESS_PATHS.length * STRESS_MODES.length);
  } finally {
    stopHogs();
  }
}, 240_000);
