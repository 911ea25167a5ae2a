/**
 * The guided labs (docs/labs/), each step done by the test against a real lab and then checked with
 * the same `lab:check` code a student runs; before the step, the check must say NOT YET.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { apiRequest, apiUrl, loadClientConfig } from '../kexec/client.js';
import { startLab, type Lab } from '../lab/lab.js';
import { CHECKS } from '../lab/labs/checks.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { packageRoot } from '../shared/package-root.js';

const KEXEC = path.join(packageRoot(), 'bin', 'kexec.js');
let dir = '';
let lab: Lab;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labs-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {}, dashboard: false });
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function kexec(args: string[], input?: Buffer) {
  return spawnSync(process.execPath, [KEXEC, '--kubeconfig', lab.kubeconfigPath, ...args], {
    input,
    timeout: 60_000,
  });
}

/** Polls a check (the audit log is written as the stream closes) until it passes, bounded. */
async function checkPasses(n: number, timeoutMs = 10_000) {
  let last = await CHECKS[n]!.run(lab.dir);
  await holdsWithin(async () => (last = await CHECKS[n]!.run(lab.dir)).ok, timeoutMs, 100);
  return last;
}

test('lab 1: one exec followed through the hops', async () => {
  expect((await CHECKS[1]!.run(lab.dir)).ok).toBe(false);
  const r = kexec(['demo', '--', 'echo', 'hop']);
  expect(r.stdout.toString()).toBe('hop\n');
  const result = await checkPasses(1);
  expect(result.ok).toBe(true);
  expect(result.lines[0]).toMatch(/ResponseStarted 101 → ResponseComplete/);
});

test('lab 5: an exec under --max-connection-bytes-per-sec takes its time', async () => {
  const before = await CHECKS[5]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toMatch(/is 0: set one first/);
  // The step as the admin does it without the dashboard: PUT the value (a JSON number is its text).
  const cfg = await loadClientConfig({ kubeconfig: lab.kubeconfigPath });
  const res = await apiRequest(cfg, 'PUT', apiUrl(cfg, '/debug/flags/max-connection-bytes-per-sec'), 16384);
  expect(res.body.trim()).toBe('16384');
  const started = Date.now();
  const r = kexec(['-i', 'demo', '--', 'wc', '-c'], Buffer.alloc(49152));
  expect(r.stdout.toString().trim()).toBe('49152');
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
  const result = await checkPasses(5);
  expect(result.ok).toBe(true);
  expect(result.lines[0]).toMatch(/^limit 16384 B\/s; exec \S+ took \d/);
});
