/**
 * The README's start command, as a user runs it: `npm start`, then kexec against the kubeconfig it
 * printed, then Ctrl-C (SIGINT to the foreground process group) leaves no process behind.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { pidsWhere } from '../shared/test-support/procfs.js';
import { collect, runKexec } from './support/processes.js';

let dir = '';
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

it('npm start brings the lab up, kexec works against it, Ctrl-C stops everything', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-start-'));
  const state = path.join(dir, 'state');
  const lab = spawn('npm', ['start', '--', '--dir', state, '--port', '0'], {
    cwd: packageRoot(),
    detached: true, // its own process group, as a terminal's foreground job
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const done = collect(lab);
  let out = '';
  lab.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  while (!out.includes('Press Ctrl-C')) {
    const closed = lab.exitCode !== null;
    if (closed) break;
    await Promise.race([once(lab.stdout!, 'data'), once(lab, 'exit')]);
  }
  expect(out).toMatch(/kexec lab is up: apiserver https:\/\/127\.0\.0\.1:\d+/);
  const kubeconfig = /^kubeconfig: (.+)$/m.exec(out)![1]!;
  expect(path.resolve(packageRoot(), kubeconfig)).toBe(path.join(state, 'kubeconfig'));
  expect(out).toMatch(/^kexec: export PATH="\S+\/bin:\$PATH"/m);
  expect(out).toMatch(/^ {2}kexec demo -- ls \/root$/m);
  expect(out).toContain(`lab CA: ${path.join(state, 'pki', 'ca.crt')}`);
  expect(out).toMatch(/^ {2}KUBECONFIG=\S+ kubectl exec demo -- ls \/root$/m); // no "needs https" remark

  const ls = await runKexec(['--kubeconfig', path.join(state, 'kubeconfig'), 'demo', '--', 'ls', '/root']);
  expect({ code: ls.code, out: ls.stdout.toString() }).toEqual({
    code: 0,
    out: 'README.txt\nhello.sh\nnotes\n',
  });

  const ours = () => pidsWhere((argv) => argv.some((a) => a.startsWith(state)));
  expect(ours().length).toBeGreaterThanOrEqual(3); // apiserver, kubelet-sim, cri-shim (+ the pod)
  process.kill(-lab.pid!, 'SIGINT');
  // npm itself dies of the SIGINT; the lab under it stops its services and says so.
  const exit = await done;
  expect(exit.stderr).toContain('[lab] SIGINT: stopping the lab');
  expect(exit.stderr).toMatch(/\[lab\] stopped\n/);
  expect(await holdsWithin(() => ours().length === 0, 5000)).toBe(true);
}, 120_000);
