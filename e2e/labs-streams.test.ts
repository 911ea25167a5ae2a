/**
 * Guided labs 2, 3 and 4 (docs/labs/): each step done as the lab tells a student to do it, with
 * real kubectl v1.35 (WebSocket, and forced onto SPDY) against a real lab, then checked with the
 * same `lab:check` code a student runs. Before the step the check must say NOT YET, after it DONE.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { startLab, type Lab } from '../lab/lab.js';
import { CHECKS } from '../lab/labs/checks.js';
import { readAudit } from '../lab/labs/audit.js';
import { packageRoot } from '../shared/package-root.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import type { RunResult } from './support/processes.js';

/** The policy docs/labs/04-get-cannot-exec.md has the student write. */
const POLICY = `
- subjects: [{kind: Group, name: exec-viewers}]
  verbs: [get, list]
  resources: [pods, pods/exec]
  namespaces: [default]
- subjects: [{kind: Group, name: exec-runners}]
  verbs: [create]
  resources: [pods/exec]
  namespaces: [default]
`;

const KEXEC = path.join(packageRoot(), 'bin', 'kexec.js');
const WEBSOCKET = KUBECTL_CLIENTS.find((c) => c.version === 'v1.35' && !c.forceSpdy)!;
const SPDY = KUBECTL_CLIENTS.find((c) => c.version === 'v1.35' && c.forceSpdy)!;

let dir = '';
let lab: Lab;
let admin: Kubectl;
let adminSpdy: Kubectl;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'labs-streams-'));
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  lab = await startLab({
    dir: path.join(dir, 'lab'),
    port: 0,
    log: () => {},
    dashboard: false,
    authorizationPolicyFile: policy,
  });
  admin = new Kubectl(WEBSOCKET, lab.kubeconfigPath, path.join(dir, 'admin'));
  adminSpdy = new Kubectl(SPDY, lab.kubeconfigPath, path.join(dir, 'admin'));
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/**
 * Calls `get` until `done` holds of its answer, at most 10 s (the apiserver records a stream as
 * it closes, which may be just after the client has exited); returns the last answer.
 */
async function until<T>(get: () => T | Promise<T>, done: (v: T) => boolean): Promise<T> {
  let last = await get();
  await holdsWithin(async () => done((last = await get())), 10_000, 100);
  return last;
}

/** The lab's kexec, as `.lab/bin/kexec` runs it. */
function kexec(args: string[]) {
  return spawnSync(process.execPath, [KEXEC, '--kubeconfig', lab.kubeconfigPath, ...args], {
    timeout: 60_000,
  });
}

/** A kubectl run that worked: exit 0, this output, nothing on stderr. */
function expectRan(r: RunResult, out: string): void {
  expect({ code: r.code, out: r.stdout.toString(), err: r.stderr }).toEqual({ code: 0, out, err: '' });
}

const check = (n: number) => () => CHECKS[n]!.run(lab.dir);
const checkPasses = (n: number) => until(check(n), (r) => r.ok);
/** Check N once its first line matches. */
const checkSays = (n: number, first: RegExp) => until(check(n), (r) => first.test(r.lines[0] ?? ''));

test('lab 2: a spliced SPDY exec and a translated WebSocket exec', async () => {
  const before = await CHECKS[2]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toMatch(/^no finished SPDY exec yet/);

  // The lab's own first command (kexec), then kubectl forced onto SPDY: both spliced.
  const viaKexec = kexec(['--protocol', 'spdy', '-v=8', 'demo', '--', 'echo', 'spdy']);
  expect({ code: viaKexec.status, out: viaKexec.stdout.toString() }).toEqual({ code: 0, out: 'spdy\n' });
  expect(viaKexec.stderr.toString()).toMatch(/^.*negotiated subprotocol: "v4\.channel\.k8s\.io"$/m);
  expectRan(await adminSpdy.run(['exec', 'demo', '--', 'echo', 'spdy']), 'spdy\n');
  // SPDY alone is half the step.
  const half = await checkSays(2, /^SPDY\/3\.1 exec \S+ by admin: spliced/);
  expect(half.ok).toBe(false);
  expect(half.lines[1]).toMatch(/^no finished WebSocket exec translated/);

  expectRan(await admin.run(['exec', 'demo', '--', 'echo', 'ws']), 'ws\n');
  const after = await checkPasses(2);
  expect(after.ok).toBe(true);
  expect(after.lines[1]).toMatch(/^WebSocket exec \S+ by admin: translated/);

  // What the lab has the student read in /metrics: KEP-4006's counters saw the translated one.
  const translatorCounted = /^apiserver_stream_translator_requests_total\{code="200"\} 1$/m;
  const metrics = await until(
    () => admin.run(['get', '--raw', '/metrics']),
    (r) => translatorCounted.test(r.stdout.toString()),
  );
  const text = metrics.stdout.toString();
  expect(text).toMatch(
    /^apiserver_websocket_streaming_requests_total\{subresource="exec",proxy_type="translated_at_apiserver"\} 1$/m,
  );
  expect(text).toMatch(translatorCounted);
});

test('lab 3: the apiserver refuses a failed upgrade, and the drill goes off again', async () => {
  const before = await CHECKS[3]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toMatch(/^no exec refused after a failed upgrade yet/);

  // The drill switched as the lab says without the dashboard: kubectl replace --raw through nodes/proxy.
  const flag = path.join(dir, 'drill');
  const drill = async (value: string, echoed = value) => {
    fs.writeFileSync(flag, `${value}\n`);
    const r = await admin.run([
      'replace',
      '--raw',
      '/api/v1/nodes/node-1/proxy/debug/flags/fault',
      '-f',
      flag,
    ]);
    expect({ code: r.code, out: r.stdout.toString().trim() }).toEqual({ code: 0, out: echoed });
  };
  await drill('refuse-400');

  const spliced = kexec(['--protocol', 'spdy', 'demo', '--', 'echo', 'hi']);
  expect(spliced.status).toBe(1);
  expect(spliced.stdout.toString()).toBe('');
  expect(spliced.stderr.toString()).toMatch(
    /^Error from server \(BadRequest\): upgrade refused by kubelet-sim --fault refuse-400$/m,
  );
  // Over WebSocket the StreamTranslator already answered 101; its own SPDY dial is what is refused.
  const translated = await admin.run(['exec', 'demo', '--', 'echo', 'hi']);
  expect(translated.code).toBe(1);
  expect(translated.stderr).toMatch(/^error: upgrade refused by kubelet-sim --fault refuse-400$/m);

  const refusedButOn = await checkSays(3, /answered 400 and never 101/);
  expect(refusedButOn.ok).toBe(false);
  expect(refusedButOn.lines[0]).toMatch(/^exec \S+ by admin: the apiserver answered 400 and never 101/);
  expect(refusedButOn.lines[1]).toMatch(/^a fault drill is still on \(node-1: refuse-400\)/);

  // A redirect is refused by the apiserver itself: its Status, with the message, is in the audit log.
  await drill('redirect', 'redirect=http://127.0.0.1:1/');
  const redirected = kexec(['--protocol', 'spdy', 'demo', '--', 'echo', 'hi']);
  expect(redirected.status).toBe(1);
  expect(redirected.stderr.toString()).toMatch(
    /^Error from server: invalid upgrade response: status code 302$/m,
  );
  const notFollowed = await checkSays(3, /answered 502/);
  expect(notFollowed.lines[0]).toMatch(
    /^exec \S+ by admin: the apiserver answered 502 \(invalid upgrade response: status code 302\) and never 101/,
  );
  expect(notFollowed.ok).toBe(false);

  await drill('none');
  const after = await CHECKS[3]!.run(lab.dir);
  expect(after.ok).toBe(true);
  expect(after.lines[1]).toBe('every kubelet-sim fault drill is off again.');
  // And exec works again.
  expectRan(await admin.run(['exec', 'demo', '--', 'echo', 'back']), 'back\n');
});

/** `npm run lab:user -- …` as the lab has the student run it; the kubeconfig path it prints. */
function labUser(...args: string[]): string {
  const r = spawnSync(
    process.execPath,
    [path.join(packageRoot(), 'dist', 'lab', 'setup-main.js'), 'user', '--dir', lab.dir, ...args],
    { timeout: 30_000 },
  );
  expect(r.status).toBe(0);
  return r.stdout.toString().trim();
}

test('lab 4: get on pods/exec cannot exec; create can', async () => {
  const before = await CHECKS[4]!.run(lab.dir);
  expect(before.ok).toBe(false);
  expect(before.lines[0]).toMatch(/^no exec refused with 403 to a lab user/);

  const viewer = new Kubectl(
    WEBSOCKET,
    labUser('--name', 'bob', '--group', 'exec-viewers'),
    path.join(dir, 'bob'),
  );
  const canGet = await viewer.run(['auth', 'can-i', 'get', 'pods', '--subresource=exec']);
  expect(canGet.stdout.toString()).toBe('yes\n');
  const canCreate = await viewer.run(['auth', 'can-i', 'create', 'pods', '--subresource=exec']);
  expect({ code: canCreate.code, out: canCreate.stdout.toString() }).toEqual({ code: 1, out: 'no\n' });

  const refused = await viewer.run(['exec', 'demo', '--', 'echo', 'hi']);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toMatch(
    /^Error from server \(Forbidden\): pods "demo" is forbidden: User "bob" cannot create resource "pods\/exec" in API group "" in the namespace "default"$/m,
  );
  // kubectl's WebSocket GET was refused as create (then its SPDY POST fallback too).
  const bobs403 = await until(
    () =>
      readAudit(lab.dir).filter(
        (e) =>
          e.stage === 'ResponseComplete' &&
          e.user?.username === 'bob' &&
          e.objectRef?.subresource === 'exec' &&
          e.responseStatus?.code === 403,
      ),
    (events) => events.length >= 2,
  );
  expect(bobs403.map((e) => [e.verb, e.annotations?.['kexec-lab/stream-protocol']])).toEqual([
    ['create', 'websocket'],
    ['create', 'SPDY/3.1'],
  ]);
  const notYet = await CHECKS[4]!.run(lab.dir);
  expect(notYet.ok).toBe(false);
  expect(notYet.lines[0]).toMatch(
    /^bob was refused exec \S+ over SPDY\/3\.1 \(403: pods "demo" is forbidden: User "bob" cannot create resource "pods\/exec" .*\) and has not run one since/,
  );

  const runner = new Kubectl(
    WEBSOCKET,
    labUser('--name', 'bob', '--group', 'exec-viewers', '--group', 'exec-runners'),
    path.join(dir, 'bob'),
  );
  const canNow = await runner.run(['auth', 'can-i', 'create', 'pods', '--subresource=exec']);
  expect(canNow.stdout.toString()).toBe('yes\n');
  expectRan(await runner.run(['exec', 'demo', '--', 'echo', 'hi']), 'hi\n');
  const after = await checkPasses(4);
  expect(after.ok).toBe(true);
  expect(after.lines[0]).toMatch(
    /^bob: exec \S+ over SPDY\/3\.1 refused \(403\), then exec \S+ over websocket ran \(101\)/,
  );
});
