/**
 * Least privilege for nodes (issue #11 "Credentials"): every kubelet-sim used to get the lab's
 * HS256 signing key on its argv, so one compromised node could mint `system:masters`. In a
 * two-node plain-http lab (the mode where the apiserver shows kubelets a token, not a client
 * certificate), node-1's kubelet-sim holds only its own token and the public half of the
 * apiserver's kubelet-token key; with them it can act neither as node-2 nor as the admin, and no
 * token it can make is accepted by the apiserver or by node-2's kubelet.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import { startLab, type Lab } from '../lab/lab.js';
import { ADMIN_GROUP, APISERVER_AUDIENCE, KUBELET_AUDIENCE, LAB_ISSUER } from '../shared/auth/tokens.js';

let dir = '';
let lab: Lab | undefined;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'node-creds-'));
  lab = await startLab({ dir, port: 0, nodes: 2, insecureHttp: true, log: () => {} });
}, 90_000);
afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The files named on a process's command line. */
function filesOnArgv(pid: number): string[] {
  // After the node binary and its script: the flags' values.
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(2);
  return argv.filter((a) => a.startsWith('/') && fs.existsSync(a) && fs.statSync(a).isFile());
}

async function call(url: string, token: string, method = 'GET', body?: unknown) {
  const res = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { code: res.status, text };
}

it("a kubelet-sim's credentials cannot mint tokens, nor act as another node or as the admin", async () => {
  const kubelet1 = lab!.pids['kubelet-sim']!;
  const files = filesOnArgv(kubelet1);
  const signingKey = fs.readFileSync(path.join(dir, 'token-signing.key'));
  const apiserverKey = fs.readFileSync(path.join(dir, 'kubelet-token.key'));
  // What node-1 holds: its token and a public key; never a key that signs anything.
  expect(files.map((f) => path.basename(f)).sort()).toEqual(['kubelet-token.pub', 'node-1.token']);
  for (const f of files) {
    const content = fs.readFileSync(f);
    expect(content.equals(signingKey)).toBe(false);
    expect(content.equals(apiserverKey)).toBe(false);
    expect(content.toString()).not.toMatch(/PRIVATE KEY/);
  }
  const token = fs.readFileSync(path.join(dir, 'node-1.token'), 'utf8').trim();
  const publicKey = fs.readFileSync(path.join(dir, 'kubelet-token.pub'));
  const api = lab!.apiserverUrl;

  // As node-2: refused by NodeRestriction.
  const node2 = await call(`${api}/api/v1/nodes/node-2`, token);
  expect(node2.code).toBe(200);
  const asNode2 = await call(`${api}/api/v1/nodes/node-2/status`, token, 'PUT', JSON.parse(node2.text));
  expect(asNode2.code).toBe(403);
  expect(asNode2.text).toContain('node \\"node-1\\" is not allowed to modify node \\"node-2\\"');
  // As the admin: no exec, no pod creation, no deleting pods.
  const exec = await call(
    `${api}/api/v1/namespaces/default/pods/demo/exec?command=id&stdout=true`,
    token,
    'POST',
  );
  expect(exec.code).toBe(403);
  const create = await call(`${api}/api/v1/namespaces/default/pods`, token, 'POST', {
    metadata: { name: 'evil' },
    spec: { containers: [{ name: 'c', image: 'busybox' }] },
  });
  expect(create.code).toBe(403);

  // Tokens node-1 could make from what it holds: the public key as an HMAC secret (algorithm
  // confusion), or no signature at all. The apiserver and node-2's kubelet refuse each.
  const claims = { sub: 'admin', groups: [ADMIN_GROUP], iss: LAB_ISSUER };
  const forged = [
    jwt.sign({ ...claims, aud: APISERVER_AUDIENCE }, publicKey, { algorithm: 'HS256', expiresIn: 600 }),
    jwt.sign({ ...claims, aud: APISERVER_AUDIENCE }, '', { algorithm: 'none', expiresIn: 600 }),
  ];
  for (const t of forged) expect((await call(`${api}/api/v1/namespaces/default/pods`, t)).code).toBe(401);
  const kubelet2 = lab!.nodes[1]!.kubeletUrl;
  const asApiserver = [
    jwt.sign({ sub: 'system:apiserver', iss: LAB_ISSUER, aud: KUBELET_AUDIENCE }, publicKey, {
      algorithm: 'HS256',
      expiresIn: 600,
    }),
    token,
  ];
  for (const t of asApiserver) {
    const r = await call(`${kubelet2}/containerLogs/default/demo/demo`, t);
    expect([401, 403]).toContain(r.code);
  }
}, 60_000);
