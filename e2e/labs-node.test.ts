/**
 * Guided labs 6 and 7 (docs/labs/), each step done against a real lab and then checked with the
 * same `lab:check` code a student runs; before the step, the check must say NOT YET.
 * Lab 6: the kubelet-sims authorize the apiserver with SubjectAccessReviews; taking its grant
 * away makes kexec, kubectl and a SPDY exec fail with the kubelet's Forbidden. Lab 7: a real
 * tshark capture on `lo` (root), bounded in time, of the lab's ports, decrypted with the lab's
 * `--tls-keylog` file.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { CHECKS } from '../lab/labs/checks.js';
import { KUBELET_API_POLICY_FILE } from '../lab/kubelet-api-policy.js';
import { CAPTURE_FILE, KEYLOG_FILE } from '../lab/labs/check-07-packet-capture.js';
import { packageRoot } from '../shared/package-root.js';
import { kubectlPath } from '../shared/test-support/kubectl.js';
import { waitFor } from '../shared/test-support/poll.js';

const KEXEC = path.join(packageRoot(), 'bin', 'kexec.js');
const FORBIDDEN =
  'Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[proxy])';
let dir = '';
let lab: Lab;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labs-node-'));
  const labDir = path.join(dir, 'lab');
  lab = await startLab({
    dir: labDir,
    port: 0,
    log: () => {},
    dashboard: false,
    tlsKeylog: path.join(labDir, KEYLOG_FILE),
  });
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function kexec(args: string[]) {
  const r = spawnSync(process.execPath, [KEXEC, '--kubeconfig', lab.kubeconfigPath, ...args], {
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
}

test('lab 6: without its grant the apiserver is Forbidden at the kubelet; with it back, exec works', async () => {
  const before = await CHECKS[6]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toBe('no exec has been refused by a kubelet yet.');
  expect(kexec(['demo', '--', 'echo', 'hop']).stdout).toBe('hop\n');

  // The step: the grant names someone else (a typo in a real binding's subject).
  const policy = path.join(lab.dir, KUBELET_API_POLICY_FILE);
  const granted = fs.readFileSync(policy, 'utf8');
  fs.writeFileSync(policy, granted.replaceAll('name: kube-apiserver-kubelet-client', 'name: kube-apiserver'));
  // WebSocket (translated: the kubelet's Status arrives on the error channel after the 101).
  const ws = await waitFor(
    'kexec refused once the apiserver has read the file',
    () => {
      const r = kexec(['demo', '--', 'echo', 'hop']);
      return r.code !== 0 && r;
    },
    15_000,
    200,
  );
  expect(ws).toEqual({ code: 1, stdout: '', stderr: `Error from server (Forbidden): ${FORBIDDEN}\n` });
  // SPDY (spliced: the kubelet's 403 passes through the apiserver as it is).
  expect(kexec(['--protocol', 'spdy', 'demo', '--', 'echo', 'hop'])).toEqual({
    code: 1,
    stdout: '',
    stderr: `Error from server (Forbidden): ${FORBIDDEN}\n`,
  });
  // Real kubectl shows the same words; `logs` is refused too, with the kubelet's verb get.
  const kubectl = spawnSync(
    kubectlPath('v1.35'),
    ['--kubeconfig', lab.kubeconfigPath, 'exec', 'demo', '--', 'echo', 'hop'],
    { timeout: 60_000 },
  );
  expect(kubectl.status).toBe(1);
  expect(kubectl.stderr.toString()).toContain(FORBIDDEN);
  const logs = spawnSync(kubectlPath('v1.35'), ['--kubeconfig', lab.kubeconfigPath, 'logs', 'demo'], {
    timeout: 60_000,
  });
  expect(logs.stderr.toString()).toContain(FORBIDDEN.replace('verb=create', 'verb=get'));

  const refused = await CHECKS[6]!.run(lab.dir);
  expect(refused.ok).toBe(false);
  expect(refused.lines[0]).toMatch(
    /^refused: 1 spliced exec\(s\) answered 403 .*; [1-9]\d* translated exec\(s\) ended 403/,
  );
  expect(refused.lines[1]).toMatch(
    /kube-apiserver-kubelet-client still may not create nodes\/proxy on node-1/,
  );

  // Put it back; the apiserver reads the file again, and the next exec goes through.
  fs.writeFileSync(policy, granted);
  const result = await waitFor(
    'an exec that works again, after the grant is back',
    async () => {
      kexec(['demo', '--', 'echo', 'back']);
      const c = await CHECKS[6]!.run(lab.dir);
      return c.ok && c;
    },
    15_000,
    200,
  );
  expect(result.ok).toBe(true);
  expect(result.lines[1]).toMatch(
    /^grant back for kube-apiserver-kubelet-client; exec \S+ went through again/,
  );
  expect(kexec(['demo', '--', 'echo', 'hop']).stdout).toBe('hop\n');
}, 120_000);

const wsFrames = (line: string) => Number(/, (\d+) WebSocket frames/.exec(line)?.[1] ?? 0);

/** The ports the lab's services listen on (ss, by their pids). */
function labPorts(): number[] {
  const pids = new Set(Object.values(lab.pids).map(String));
  const ss = spawnSync('ss', ['-Htlnp'], { encoding: 'utf8' }).stdout;
  return ss
    .split('\n')
    .filter((l) => [...l.matchAll(/pid=(\d+),/g)].some((m) => pids.has(m[1]!)))
    .map((l) => Number(/:(\d+)\s/.exec(l.split(/\s+/)[3] + ' ')![1]));
}

test('lab 7: a capture on lo decrypts with the lab’s --tls-keylog: the exec’s 101 by its Audit-Id', async () => {
  const capture = path.join(lab.dir, CAPTURE_FILE);
  const before = await CHECKS[7]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toBe(`no capture at ${capture} yet.`);

  // apiserver, kubelet-sim and cri-shim streaming ports: all three https hops.
  const ports = labPorts();
  expect(ports).toHaveLength(3);
  const filter = ports.map((p) => `tcp port ${p}`).join(' or ');
  // Bounded twice: a duration, and a packet count far above what one exec makes.
  const tshark = spawn(
    'tshark',
    ['-i', 'lo', '-f', filter, '-a', 'duration:60', '-c', '20000', '-w', capture],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const exited = new Promise((res) => tshark.once('exit', res));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tshark did not start capturing: ${stderr}`)), 20_000);
    tshark.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (stderr.includes('Capturing on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    tshark.once('exit', () => reject(new Error(`tshark exited: ${stderr}`)));
  });
  const r = kexec(['-v=6', 'demo', '--', 'echo', 'captured']);
  expect(r.stdout).toBe('captured\n');
  // dumpcap writes as it captures: the check reads the growing file until all three upgrades and
  // the exec's frames are in (a stop right after the exec may lose what is still in its buffer).
  const result = await waitFor(
    'the capture to hold all three upgrades and the exec’s frames',
    async () => {
      const c = await CHECKS[7]!.run(lab.dir);
      return c.ok && wsFrames(c.lines[1]!) >= 5 && c;
    },
    15_000,
    200,
  );
  tshark.kill('SIGINT');
  await exited;
  expect(result.ok).toBe(true);
  const apiserverPort = new URL(lab.apiserverUrl).port;
  const m = new RegExp(
    `^decrypted: frame \\d+, 101 Switching Protocols from port ${apiserverPort}, Audit-Id (\\S+), v5\\.channel\\.k8s\\.io\\.$`,
  ).exec(result.lines[0]!);
  expect(m).not.toBeNull();
  // The id read from the wire is the one kexec printed for its exec request.
  expect(r.stderr.toString()).toContain(m![1]);
  // Three upgrades: kexec→apiserver (WebSocket), apiserver→kubelet and kubelet→cri-shim (SPDY).
  // and the exec's frames: the ready signal, stdout, the exit Status, the close from each side.
  expect(result.lines[1]).toMatch(/^3 upgrades read in clear .*, \d+ WebSocket frames\.$/);
  expect(wsFrames(result.lines[1]!)).toBeGreaterThanOrEqual(5);

  // The same capture without the keys is only TLS: NOT YET.
  const keylog = path.join(lab.dir, KEYLOG_FILE);
  fs.renameSync(keylog, `${keylog}.aside`);
  try {
    const encrypted = await CHECKS[7]!.run(lab.dir);
    expect(encrypted.ok).toBe(false);
    expect(encrypted.lines[0]).toMatch(/^no TLS key log at /);
    fs.writeFileSync(keylog, '');
    const undecrypted = await CHECKS[7]!.run(lab.dir);
    expect(undecrypted.ok).toBe(false);
    expect(undecrypted.lines[0]).toMatch(/^\d+ TLS records in .*, but nothing in them decrypts with /);
  } finally {
    fs.renameSync(`${keylog}.aside`, keylog);
  }
}, 120_000);
