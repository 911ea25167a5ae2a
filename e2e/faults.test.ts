/**
 * Faults: one hop of the chain (cri-shim, kubelet-sim, apiserver) is SIGKILLed while `kexec` runs
 * a command. The client must say so within 5 s and exit non-zero, nothing may keep running in the
 * container, and the hop, started again with the very argv and environment it had (read from
 * /proc before the kill), must serve again. A fresh lab per hop keeps the cases independent.
 *
 * Also pins the close handshake of a translated (v5 WebSocket) session without stdin: the
 * apiserver pauses the client socket until the kubelet accepts, and nothing resumed it, so the
 * client's CLOSE frame went unread and every such exec took ws's 30 s close timer to end.
 *
 * The client killed mid-command is in chain.test.ts. Needs `npm run build`.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { descendants, pidsWhere, running } from '../shared/test-support/procfs.js';
import { collect, runKexec, startKexec } from './support/processes.js';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function freshLab(logs: string[]): Promise<Lab> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'faults-'));
  dirs.push(dir);
  return startLab({ dir: path.join(dir, 'lab'), port: 0, log: (l) => logs.push(l) });
}

/** Starts `sh -c 'echo started; exec sleep MARKER'` through kexec and waits for "started". */
async function startSleeper(lab: Lab) {
  const marker = String(40000 + Math.floor(Math.random() * 20000));
  const child = startKexec([
    '--kubeconfig',
    lab.kubeconfigPath,
    'demo',
    '--',
    'sh',
    '-c',
    `echo started; exec sleep ${marker}`,
  ]);
  child.stdin!.end();
  const done = collect(child);
  let seen = '';
  const deadline = Date.now() + 15_000;
  while (!seen.includes('started') && Date.now() < deadline) {
    const [chunk] = (await Promise.race([
      once(child.stdout!, 'data'),
      new Promise((r) => setTimeout(() => r([Buffer.alloc(0)]), 1000)),
    ])) as [Buffer];
    seen += chunk.toString();
  }
  expect(seen).toContain('started');
  const sleeping = () => pidsWhere((argv) => argv.join(' ') === `sleep ${marker}`);
  expect(sleeping()).toHaveLength(1);
  return { child, done, sleeping };
}

/** Runs `echo MARK` through kexec until it works, at most `timeoutMs`. */
async function servesAgain(lab: Lab, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const res = await runKexec(['--kubeconfig', lab.kubeconfigPath, 'demo', '--', 'echo', 'back']);
    if (res.code === 0 && res.stdout.toString() === 'back\n') return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

describe.each(['cri-shim', 'kubelet-sim', 'apiserver'] as const)('SIGKILL of the %s mid-command', (hop) => {
  let lab: Lab;
  const logs: string[] = [];

  beforeAll(async () => {
    lab = await freshLab(logs);
  }, 60_000);

  afterAll(async () => {
    await lab?.stop();
  });

  it('fails the client within 5 s, leaves nothing in the container, and serves again once the lab restarted it', async () => {
    const pid = lab.pids[hop]!;
    const inContainers = hop === 'cri-shim' ? descendants(pid) : [];
    const { done, sleeping } = await startSleeper(lab);

    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const res = await done;
    const elapsed = Date.now() - t0;
    expect(elapsed).toBeLessThan(5000);
    expect(res.code).not.toBe(0);
    expect(res.code).not.toBeNull();
    expect(res.stderr).toMatch(/^(error: |Error from server).*(closed|connection|translating)/m);

    // No process left in any container: the exec, and with the runtime gone every container
    // process (bwrap --die-with-parent).
    expect(await holdsWithin(() => sleeping().length === 0, 5000)).toBe(true);
    expect(await holdsWithin(() => inContainers.every((p) => !running(p)), 5000)).toBe(true);

    // The lab's supervisor brings the hop back (Restart=on-failure; after an apiserver with
    // in-memory storage it registers the nodes and the demo pod again): the lab serves again.
    const ok = await servesAgain(lab, 25_000);
    if (!ok) throw new Error(`${hop} did not serve again; last logs:\n${logs.slice(-30).join('\n')}`);
  }, 55_000);
});

describe('a translated exec without stdin', () => {
  let lab: Lab;
  const logs: string[] = [];
  beforeAll(async () => {
    lab = await freshLab(logs);
  }, 60_000);
  afterAll(async () => {
    await lab?.stop();
  });

  it('ends as soon as the command does (the client CLOSE is read, not timed out)', async () => {
    const t0 = Date.now();
    const res = await runKexec([
      '--kubeconfig',
      lab.kubeconfigPath,
      '--protocol',
      'websocket',
      'demo',
      '--',
      'true',
    ]);
    expect(res.code).toBe(0);
    expect(Date.now() - t0).toBeLessThan(5000);
  }, 20_000);
});
