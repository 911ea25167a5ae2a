/**
 * Python's official Kubernetes client (Debian's python3-kubernetes, run with /usr/bin/python3;
 * `.ci/apt-packages.txt` installs it) against a real lab: list, exec with bytes and str stdin, a
 * terminal resize sent as str, the exit code through `returncode`, port-forward, logs with
 * follow, and watch. Each scenario is a function of e2e/python/client.py, which prints what the
 * client saw as JSON.
 *
 * The str scenarios (stdin as str, the resize as str) need text WebSocket frames, which the
 * client sends for a str (issue 13, "Wire"): they pass once the server accepts text frames on
 * every path.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { packageRoot } from '../shared/package-root.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { collect, waitForPodPort } from './support/processes.js';
import { podYaml } from './support/runtimes.js';

const PYTHON = '/usr/bin/python3';
const SCRIPT = path.join(packageRoot(), 'e2e', 'python', 'client.py');
const WEB_PORT = 20000 + Math.floor(Math.random() * 20000);

let dir = '';
let lab: Lab;

beforeAll(async () => {
  if (!fs.existsSync(PYTHON)) throw new Error(`${PYTHON} is missing: apt-get install python3-kubernetes`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'python-client-e2e-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  const kubectl = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
  const manifests = [
    podYaml('ticker', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']),
    podYaml('web', [
      'node',
      '-e',
      `require('http').createServer((q, s) => s.end('hello from pod\\n')).listen(${WEB_PORT}, '127.0.0.1')`,
    ]),
  ].join('---\n');
  expect((await kubectl.run(['apply', '-f', '-'], manifests)).stderr).toBe('');
  const ready = await kubectl.run([
    'wait',
    '--for=condition=Ready',
    'pod/ticker',
    'pod/web',
    '--timeout=60s',
  ]);
  expect(ready.stderr).toBe('');
  await waitForPodPort(lab.kubeconfigPath, 'web', WEB_PORT);
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs one scenario of client.py; resolves with its JSON answer (rejects with its stderr). */
async function python(scenario: string, ...args: string[]): Promise<Record<string, unknown>> {
  const child = spawn(PYTHON, [SCRIPT, lab.kubeconfigPath, scenario, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, HOME: dir },
  });
  const r = await collect(child);
  if (r.code !== 0) throw new Error(`client.py ${scenario} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.toString()) as Record<string, unknown>;
}

describe('Python client (python3-kubernetes)', () => {
  it('lists pods', async () => {
    expect(await python('list')).toEqual({ kind: 'PodList', names: ['demo', 'ticker', 'web'] });
  });

  it('exec: stdout, stderr and the exit code through returncode', async () => {
    expect(await python('returncode')).toEqual({ returncode: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it('exec with bytes stdin', async () => {
    expect(await python('stdin', 'bytes')).toEqual({ stdout: 'hello from python\n', returncode: 0 });
  });

  it('exec with str stdin (text frames)', async () => {
    expect(await python('stdin', 'str')).toEqual({ stdout: 'hello from python\n', returncode: 0 });
  });

  it('exec -t with a terminal resize sent as str (text frames)', async () => {
    const r = await python('tty-resize');
    expect(r.returncode).toBe(0);
    expect(r.stdout).toContain('33 100\r\n');
  });

  it('port-forward to a server in the pod', async () => {
    expect(await python('port-forward', String(WEB_PORT))).toEqual({
      status: 'HTTP/1.1 200 OK',
      body: 'hello from pod\n',
      error: null,
    });
  });

  it('logs with follow', async () => {
    const r = await python('logs-follow');
    expect(r.lines).toEqual(['tick 1', 'tick 2', 'tick 3']);
  });

  it('watch: ADDED, then DELETED, of a pod it creates and deletes', async () => {
    const r = (await python('watch')) as { events: string[] };
    expect(r.events[0]).toBe('ADDED');
    expect(r.events.at(-1)).toBe('DELETED');
  });
});
