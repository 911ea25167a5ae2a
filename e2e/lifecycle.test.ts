/**
 * The lab as an operator meets it (issue #11 "Lifecycle", issue #13's second `npm start`): one
 * `node dist/lab/main.js` started here, then
 * - a second lab on the same DIR says so, exits 1 and leaves the first one working;
 * - each hop SIGKILLed in turn: an exec in flight through it fails with an error (no hang), the
 *   hop comes back and a new exec works, within a bound;
 * - a client's `?access_token=` reaches no log line;
 * - SIGKILL of the lab itself: every process it started (services and containers) goes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { descendants, pidsWhere, running } from '../shared/test-support/procfs.js';
import { collect, runKexec, startKexec } from './support/processes.js';

const LAB_MAIN = path.join(packageRoot(), 'dist', 'lab', 'main.js');

let dir = '';
let state = '';
let lab: ChildProcess | undefined;
let output = '';
let kubeconfig = '';

function startLabProcess(): ChildProcess {
  return spawn(process.execPath, [LAB_MAIN, '--dir', state, '--port', '0'], {
    cwd: packageRoot(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** The pid of the lab's service running `dist/<program>/main.js` now. */
function servicePid(program: string): number | undefined {
  const mine = new Set(descendants(lab!.pid!, { zombies: true }));
  return pidsWhere((argv) => argv.some((a) => a.endsWith(`dist/${program}/main.js`))).find((p) =>
    mine.has(p),
  );
}

async function kexecLs(): Promise<{ code: number | null; out: string; err: string }> {
  const r = await runKexec(['--kubeconfig', kubeconfig, 'demo', '--', 'ls', '/root']);
  return { code: r.code, out: r.stdout.toString(), err: r.stderr.toString() };
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lifecycle-'));
  state = path.join(dir, 'state');
  lab = startLabProcess();
  lab.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  lab.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  expect(await holdsWithin(() => output.includes('Press Ctrl-C') || lab!.exitCode !== null, 60_000)).toBe(
    true,
  );
  expect(output).toContain('Press Ctrl-C');
  kubeconfig = path.join(state, 'kubeconfig');
}, 90_000);

afterAll(async () => {
  if (lab?.pid && running(lab.pid)) {
    const left = descendants(lab.pid, { zombies: true });
    lab.kill('SIGKILL');
    await holdsWithin(() => left.every((p) => !running(p)), 15_000);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a second lab on the same DIR says so, exits 1 and leaves the first one working', async () => {
  const before = fs.readFileSync(kubeconfig, 'utf8');
  const key = fs.readFileSync(path.join(state, 'token-signing.key'));
  const second = await collect(startLabProcess());
  expect(second.code).toBe(1);
  expect(second.stderr.toString()).toContain(
    `a lab is already running in ${state} (pid ${lab!.pid}, apiserver https://127.0.0.1:`,
  );
  expect(fs.readFileSync(kubeconfig, 'utf8')).toBe(before);
  expect(fs.readFileSync(path.join(state, 'token-signing.key'))).toEqual(key);
  expect(await kexecLs()).toEqual({ code: 0, out: 'README.txt\nhello.sh\nnotes\n', err: '' });
}, 60_000);

it.each(['cri-shim', 'kubelet-sim', 'apiserver'])(
  'SIGKILL of the %s: the exec through it fails, it comes back and a new exec works',
  async (hop) => {
    const inFlight = startKexec([
      '--kubeconfig',
      kubeconfig,
      'demo',
      '--',
      'sh',
      '-c',
      'echo started; sleep 60',
    ]);
    const done = collect(inFlight);
    let started = '';
    inFlight.stdout!.on('data', (c: Buffer) => (started += c.toString()));
    expect(await holdsWithin(() => started.includes('started'), 15_000)).toBe(true);

    const pid = servicePid(hop);
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    const killedAt = Date.now();
    // Reported as failed, well before the command's own 60 s.
    const ended = await Promise.race([done, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    expect(ended).not.toBe('hung');
    const result = ended as Awaited<typeof done>;
    expect(result.code).not.toBe(0);
    expect(result.stderr.toString()).toMatch(/error/i);

    let last = { code: null as number | null, out: '', err: '' };
    while (Date.now() - killedAt < 40_000) {
      last = await kexecLs();
      if (last.code === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(last).toEqual({ code: 0, out: 'README.txt\nhello.sh\nnotes\n', err: '' });
    expect(servicePid(hop)).not.toBe(pid);
    expect(output).toContain(`[lab] ${hop} is back`);
    process.stderr.write(`lifecycle: ${hop} killed → new exec works after ${Date.now() - killedAt} ms\n`);
  },
  90_000,
);

it('a client-supplied ?access_token= reaches no log line', async () => {
  const server = new URL(/^kexec lab is up: apiserver (\S+),/m.exec(output)![1]!);
  const ca = fs.readFileSync(path.join(state, 'pki', 'ca.crt'));
  const code = await new Promise<number>((resolve, reject) => {
    https
      .get(
        `${server.origin}/api/v1/namespaces/default/pods?access_token=SECRET-lifecycle-42`,
        { ca },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      )
      .on('error', reject);
  });
  expect(code).toBe(401);
  expect(await holdsWithin(() => output.includes('access_token=<masked>'), 10_000)).toBe(true);
  expect(output).not.toContain('SECRET-lifecycle-42');
}, 30_000);

it('SIGKILL of the lab leaves no service or container process behind', async () => {
  const tree = descendants(lab!.pid!, { zombies: true });
  // apiserver, kubelet-sim, cri-shim and at least the demo pod's process.
  expect(tree.length).toBeGreaterThanOrEqual(4);
  lab!.kill('SIGKILL');
  const gone = await holdsWithin(() => tree.every((p) => !running(p)), 15_000);
  expect(tree.filter(running)).toEqual([]);
  expect(gone).toBe(true);
}, 30_000);
