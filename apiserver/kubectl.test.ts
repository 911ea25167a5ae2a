/**
 * Real kubectl against an in-process apiserver (https with a certificate from a lab CA made by
 * shared/tls, because kubectl sends its bearer token only over TLS; the in-process scheduler on). The binaries come
 * from .tools/ (scripts/install-clients.sh): current kubectl v1.35 and old kubectl v1.20.
 */
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ADMIN_GROUP, APISERVER_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import { issueServingCert } from '../shared/tls/cert-issuer.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';
import type { ApiServer } from './server.js';
import { kubectlPath } from '../shared/test-support/kubectl.js';
import { KEY, testServer } from './test-support/harness.js';

const KUBECTL = kubectlPath('v1.35');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let server: ApiServer;
let dir: string;

function kubectl(args: string[], stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      KUBECTL,
      ['--kubeconfig', path.join(dir, 'kubeconfig'), '--cache-dir', path.join(dir, 'cache'), ...args],
      { timeout: 30_000, env: { ...process.env, HOME: dir } },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(stdin ?? '');
  });
}

const podYaml = (name: string, image = 'busybox') => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
  labels: {app: demo}
spec:
  containers:
  - name: main
    image: ${image}
    command: [sleep, "3600"]
`;

const nodeYaml = () => `apiVersion: v1
kind: Node
metadata:
  name: node-1
  labels: {node-role.kubernetes.io/worker: ""}
status:
  conditions:
  - {type: Ready, status: "True", lastHeartbeatTime: "${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}"}
  addresses:
  - {type: InternalIP, address: 127.0.0.1}
  nodeInfo: {kubeletVersion: v1.35.0-kexec.0}
`;

describe('kubectl v1.35 against the apiserver', () => {
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-kubectl-'));
    const pki = await ensureCa(path.join(dir, 'pki'));
    const serving = await issueServingCert(pki, 'apiserver', {
      dnsNames: ['localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    server = await testServer({
      tls: { cert: serving.certPem, key: fs.readFileSync(serving.keyFile) },
      scheduler: true,
    });
    const token = mintToken(KEY, { name: 'admin', groups: [ADMIN_GROUP] }, { audience: APISERVER_AUDIENCE });
    const ca = Buffer.from(pki.certPem).toString('base64');
    fs.writeFileSync(
      path.join(dir, 'kubeconfig'),
      `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "${server.url}", certificate-authority-data: ${ca}}
users:
- name: admin
  user: {token: ${token}}
contexts:
- name: lab
  context: {cluster: lab, user: admin, namespace: default}
current-context: lab
`,
      { mode: 0o600 },
    );
  });
  afterAll(async () => {
    await server?.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('version, api-resources', async () => {
    const v = await kubectl(['version']);
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^Server Version: v1\.35\.0-kexec-lab$/m);
    const r = await kubectl(['api-resources']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.split(/\s+/)),
    ).toEqual([
      ['NAME', 'SHORTNAMES', 'APIVERSION', 'NAMESPACED', 'KIND'],
      ['events', 'ev', 'v1', 'true', 'Event'],
      ['namespaces', 'ns', 'v1', 'false', 'Namespace'],
      ['nodes', 'no', 'v1', 'false', 'Node'],
      ['pods', 'po', 'v1', 'true', 'Pod'],
      ['selfsubjectreviews', 'authentication.k8s.io/v1', 'false', 'SelfSubjectReview'],
      ['selfsubjectaccessreviews', 'authorization.k8s.io/v1', 'false', 'SelfSubjectAccessReview'],
      ['subjectaccessreviews', 'authorization.k8s.io/v1', 'false', 'SubjectAccessReview'],
      ['leases', 'coordination.k8s.io/v1', 'true', 'Lease'],
    ]);
  });

  // Issue 13: kubectl's first-hour surface.
  it('namespaces: a -n typo is "namespaces “nope” not found"; create, delete, and the pods go', async () => {
    const typo = await kubectl(['create', '-n', 'nope', '-f', '-'], podYaml('lost'));
    expect(typo).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error from server (NotFound): error when creating "STDIN": namespaces "nope" not found\n',
    });
    const ns = await kubectl(['get', 'ns', '-o', 'name']);
    expect(ns.stdout).toBe(
      'namespace/default\nnamespace/kube-node-lease\nnamespace/kube-public\nnamespace/kube-system\n',
    );
    expect((await kubectl(['create', 'namespace', 'dev'])).stdout).toBe('namespace/dev created\n');
    expect((await kubectl(['create', '-n', 'dev', '-f', '-'], podYaml('in-dev'))).code).toBe(0);
    expect((await kubectl(['get', 'pods', '-n', 'dev', '-o', 'name'])).stdout).toBe('pod/in-dev\n');
    expect((await kubectl(['delete', 'namespace', 'dev', '--wait=false'])).stdout).toBe(
      'namespace "dev" deleted\n',
    );
    expect(await kubectl(['get', 'pods', '-n', 'dev', '-o', 'name'])).toMatchObject({ code: 0, stdout: '' });
    // kubectl itself looks the namespace up after a NotFound (1.33+) and names it.
    expect((await kubectl(['get', 'pod', '-n', 'dev', 'in-dev'])).stderr).toBe(
      'Error from server (NotFound): namespaces "dev" not found\n',
    );
    expect((await kubectl(['delete', 'namespace', 'default'])).stderr).toBe(
      'Error from server (Forbidden): namespaces "default" is forbidden: this namespace may not be deleted\n',
    );
  });

  it('explain pod: fields and descriptions from the OpenAPI v3 schemas', async () => {
    const r = await kubectl(['explain', 'pod.spec.containers.tty']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toMatch(/^KIND:\s+Pod\nVERSION:\s+v1\n/);
    expect(r.stdout).toContain('FIELD: tty <boolean>');
    expect(r.stdout).toContain('Whether this container should allocate a TTY for itself');
    const lease = await kubectl(['explain', 'lease.spec']);
    expect(lease.stdout).toMatch(/GROUP:\s+coordination\.k8s\.io/);
    expect(lease.stdout).toContain('renewTime');
  });

  it('create a node; get nodes prints the node printer columns', async () => {
    expect(await kubectl(['create', '-f', '-'], nodeYaml())).toMatchObject({
      code: 0,
      stdout: 'node/node-1 created\n',
    });
    const r = await kubectl(['get', 'nodes']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    expect(lines[0]).toEqual(['NAME', 'STATUS', 'ROLES', 'AGE', 'VERSION']);
    expect(lines[1]).toEqual([
      'node-1',
      'Ready',
      'worker',
      expect.stringMatching(/^\d+s$/),
      'v1.35.0-kexec.0',
    ]);
  });

  it('apply: created, unchanged, configured (image change through a strategic merge patch)', async () => {
    expect(await kubectl(['apply', '-f', '-'], podYaml('demo'))).toMatchObject({
      code: 0,
      stdout: 'pod/demo created\n',
      stderr: '',
    });
    expect(await kubectl(['apply', '-f', '-'], podYaml('demo'))).toMatchObject({
      code: 0,
      stdout: 'pod/demo unchanged\n',
      stderr: '',
    });
    expect(await kubectl(['apply', '-f', '-'], podYaml('demo', 'busybox:1.36'))).toMatchObject({
      code: 0,
      stdout: 'pod/demo configured\n',
      stderr: '',
    });
    const image = await kubectl([
      'get',
      'pod',
      'demo',
      '-o',
      'jsonpath={.spec.containers[0].image} {.spec.containers[0].command}',
    ]);
    expect(image.stdout).toBe('busybox:1.36 ["sleep","3600"]');
    const yaml = await kubectl(['get', 'pod', 'demo', '-o', 'yaml']);
    expect(yaml.code).toBe(0);
    expect(yaml.stdout).toContain('kubectl.kubernetes.io/last-applied-configuration: |');
    expect(yaml.stdout).toMatch(/^ {2}nodeName: node-1$/m);
  });

  it('get pods and get pods -o wide (scheduled onto the node)', async () => {
    const r = await kubectl(['get', 'pods']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/));
    expect(lines).toEqual([
      ['NAME', 'READY', 'STATUS', 'RESTARTS', 'AGE'],
      ['demo', '0/1', 'Pending', '0', expect.stringMatching(/^\d+s$/)],
    ]);
    const wide = await kubectl(['get', 'pods', '-o', 'wide']);
    expect(wide.stdout.split('\n')[0]).toMatch(
      /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES$/,
    );
    expect(wide.stdout.split('\n')[1]!.split(/\s+/)).toEqual([
      'demo',
      '0/1',
      'Pending',
      '0',
      expect.any(String),
      '<none>',
      'node-1',
      '<none>',
      '<none>',
    ]);
  });

  it('errors read like upstream', async () => {
    const r = await kubectl(['get', 'pod', 'nope']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error from server (NotFound): pods "nope" not found\n',
    });
    const dup = await kubectl(['create', '-f', '-'], podYaml('demo'));
    expect(dup.code).toBe(1);
    expect(dup.stderr).toBe(
      'Error from server (AlreadyExists): error when creating "STDIN": pods "demo" already exists\n',
    );
    const bad = await kubectl(
      ['create', '-f', '-'],
      podYaml('bad').replace('    image:', '    imagee: x\n    image:'),
    );
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('strict decoding error: unknown field "spec.containers[0].imagee"');
  });

  it('get pods -w shows a new pod; delete returns promptly; describe works', async () => {
    const watcher = spawn(
      KUBECTL,
      [
        '--kubeconfig',
        path.join(dir, 'kubeconfig'),
        '--cache-dir',
        path.join(dir, 'cache'),
        'get',
        'pods',
        '-w',
      ],
      {
        env: { ...process.env, HOME: dir },
      },
    );
    let out = '';
    const seen = (re: RegExp) =>
      new Promise<void>((resolve, reject) => {
        const check = () => re.test(out) && resolve();
        watcher.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          check();
        });
        watcher.once('exit', () => reject(new Error(`kubectl get -w exited; output: ${out}`)));
        check();
      });
    try {
      await seen(/^demo\s/m);
      expect(await kubectl(['create', '-f', '-'], podYaml('x'))).toMatchObject({
        code: 0,
        stdout: 'pod/x created\n',
      });
      await seen(/^x\s+0\/1\s+Pending/m);
    } finally {
      watcher.kill();
    }
    expect(out.split('\n')[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);

    const started = Date.now();
    const del = await kubectl(['delete', 'pod', 'x']);
    // kubectl 1.35 names the namespace; older ones do not.
    expect(del).toMatchObject({ code: 0, stderr: '' });
    expect(del.stdout).toMatch(/^pod "x" deleted( from default namespace)?\n$/);
    expect(Date.now() - started).toBeLessThan(10_000);

    const d = await kubectl(['describe', 'pod', 'demo']);
    expect(d.code).toBe(0);
    expect(d.stdout).toMatch(/^Name:\s+demo$/m);
    expect(d.stdout).toMatch(/^Node:\s+node-1/m);
    expect(d.stdout).toMatch(/^\s+PodScheduled\s+True/m);
  });
});
