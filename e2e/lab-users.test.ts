/**
 * Lab users (issue 6): `npm run lab:user` mints a kubeconfig for another identity, and the lab's
 * `--authorization-policy-file` decides what it may do. Judged with real kubectl v1.35: a user
 * granted `create` on pods/exec runs a command; one granted only `get` on pods is refused the exec
 * with upstream's 403 wording, naming user, verb and resource; neither may delete the pod.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { startLab, type Lab } from '../lab/lab.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { collect } from './support/processes.js';

const POLICY = `
- subjects: [{kind: Group, name: devs}]
  verbs: [get, list]
  resources: [pods]
  namespaces: [default]
- subjects: [{kind: Group, name: devs}]
  verbs: [create]
  resources: [pods/exec]
  namespaces: [default]
- subjects: [{kind: User, name: bob}]
  verbs: [get, list]
  resources: [pods]
  namespaces: [default]
`;

const V135 = KUBECTL_CLIENTS.find((c) => c.version === 'v1.35' && !c.forceSpdy)!;
let dir = '';
let lab: Lab;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-users-e2e-'));
  const policy = path.join(dir, 'policy.yaml');
  fs.writeFileSync(policy, POLICY);
  lab = await startLab({
    dir: path.join(dir, 'lab'),
    port: 0,
    authorizationPolicyFile: policy,
    log: () => {},
  });
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** `npm run lab:user -- …` as a student runs it: the setup CLI; resolves with the kubeconfig path. */
async function labUser(...args: string[]): Promise<string> {
  return labUserIn(lab.dir, ...args);
}

async function labUserIn(labDir: string, ...args: string[]): Promise<string> {
  const child = spawn(
    process.execPath,
    [path.join(packageRoot(), 'dist', 'lab', 'setup-main.js'), 'user', '--dir', labDir, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const r = await collect(child);
  expect({ code: r.code, stderr: r.stderr }).toEqual({
    code: 0,
    stderr: expect.stringMatching(/^\[setup\] user /),
  });
  return r.stdout.toString().trim();
}

function kubectlAs(kubeconfig: string, home: string): Kubectl {
  return new Kubectl(V135, kubeconfig, path.join(dir, home));
}

describe('lab users', () => {
  it('runs a command as a user whose group the policy grants create on pods/exec', async () => {
    const alice = kubectlAs(await labUser('--name', 'alice', '--group', 'devs', '--ttl', '1h'), 'alice');
    const r = await alice.run(['exec', 'demo', '--', 'ls', '/root']);
    expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout.toString()).toMatch(/README\.txt/);
  });

  it('refuses the exec of a user granted only get, naming user, verb and resource', async () => {
    const bob = kubectlAs(await labUser('--name', 'bob'), 'bob');
    expect((await bob.run(['get', 'pod', 'demo', '-o', 'name'])).stdout.toString()).toBe('pod/demo\n');
    const r = await bob.run(['exec', 'demo', '--', 'ls', '/root']);
    expect(r.code).toBe(1);
    expect(r.stdout.toString()).toBe('');
    expect(r.stderr).toMatch(
      /pods "demo" is forbidden: User "bob" cannot create resource "pods\/exec" in API group "" in the namespace "default"/,
    );
  });

  // Issue 13: kubectl auth can-i / whoami (SelfSubjectAccessReview / SelfSubjectReview), answered
  // by the authorizer the policy file drives; kubectl prints yes (exit 0) or no (exit 1).
  it('answers kubectl auth can-i and auth whoami for the admin and for lab users', async () => {
    const admin = kubectlAs(lab.kubeconfigPath, 'admin-canI');
    const alice = kubectlAs(await labUser('--name', 'alice', '--group', 'devs'), 'alice-canI');
    const bob = kubectlAs(await labUser('--name', 'bob'), 'bob-canI');
    const canI = async (k: Kubectl, ...args: string[]) => {
      const r = await k.run(['auth', 'can-i', ...args]);
      return `${r.code} ${r.stdout.toString().trim()}`;
    };
    // kubectl reads `pods/exec` as TYPE/NAME (the pod named exec); the subresource is a flag.
    const exec = ['create', 'pods', '--subresource=exec'];
    expect(await canI(admin, 'create', 'pods/exec')).toBe('0 yes');
    expect(await canI(admin, ...exec)).toBe('0 yes');
    expect(await canI(admin, 'delete', 'nodes')).toBe('0 yes');
    expect(await canI(alice, ...exec)).toBe('0 yes');
    expect(await canI(alice, ...exec, '-n', 'kube-system')).toBe('1 no');
    expect(await canI(alice, 'create', 'pods/exec')).toBe('1 no');
    expect(await canI(alice, 'delete', 'pods')).toBe('1 no');
    expect(await canI(bob, 'get', 'pods')).toBe('0 yes');
    expect(await canI(bob, ...exec)).toBe('1 no');
    // The answer is the decision the request itself gets.
    expect((await bob.run(['exec', 'demo', '--', 'true'])).code).toBe(1);
    const who = await alice.run(['auth', 'whoami', '-o', 'json']);
    expect(who.code).toBe(0);
    expect(JSON.parse(who.stdout.toString()).status.userInfo).toEqual({
      username: 'alice',
      groups: ['devs', 'system:authenticated'],
    });
  });

  it('grants nothing the policy does not: no delete for either, no other namespace', async () => {
    const alice = kubectlAs(await labUser('--name', 'alice', '--group', 'devs'), 'alice-2');
    const del = await alice.run(['delete', 'pod', 'demo', '--wait=false']);
    expect(del.code).toBe(1);
    expect(del.stderr).toMatch(/User "alice" cannot delete resource "pods"/);
    const other = await alice.run(['get', 'pods', '-n', 'kube-system']);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(
      /User "alice" cannot list resource "pods" in API group "" in the namespace "kube-system"/,
    );
  });

  it("refuses a user's token once the lab has a new signing key (a minted kubeconfig does not outlive it)", async () => {
    const carol = await labUser('--name', 'carol', '--group', 'devs');
    const text = fs.readFileSync(carol, 'utf8');
    // The same claims signed by another key: what a kubeconfig from an earlier lab start holds.
    const other = path.join(dir, 'other-lab');
    fs.mkdirSync(other);
    fs.copyFileSync(path.join(lab.dir, 'kubeconfig'), path.join(other, 'kubeconfig'));
    fs.writeFileSync(path.join(other, 'token-signing.key'), Buffer.alloc(32, 7), { mode: 0o600 });
    const stale = await labUserIn(other, '--name', 'carol', '--group', 'devs');
    expect(fs.readFileSync(stale, 'utf8')).not.toBe(text);
    const r = await kubectlAs(stale, 'carol').run(['get', 'pod', 'demo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Unauthorized|must be logged in/);
  });
});
