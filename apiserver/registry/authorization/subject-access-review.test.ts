/**
 * SubjectAccessReview (what a kubelet with --authorization-mode Webhook asks) against a real
 * apiserver: answered by the built-in rules plus the policy files, which the apiserver follows.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NODES_GROUP } from '../../../shared/auth/tokens.js';
import { watchPolicyFiles } from '../../authz-policy.js';
import type { ApiServer } from '../../server.js';
import { api, testServer, tokenFor } from '../../test-support/harness.js';
import { holdsWithin, waitFor } from '../../../shared/test-support/poll.js';

const SARS = '/apis/authorization.k8s.io/v1/subjectaccessreviews';
const GRANT = `
- subjects: [{kind: User, name: kube-apiserver-kubelet-client}]
  verbs: ['*']
  resources: [nodes/proxy]
  namespaces: ['*']
`;
const review = (user: string, groups: string[] = []) => ({
  kind: 'SubjectAccessReview',
  apiVersion: 'authorization.k8s.io/v1',
  spec: {
    user,
    groups,
    resourceAttributes: { verb: 'create', resource: 'nodes', subresource: 'proxy', name: 'node-1' },
  },
});

let dir = '';
let file = '';
let server: ApiServer;
let policy: ReturnType<typeof watchPolicyFiles>;
const reloads: (string | undefined)[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sar-'));
  file = path.join(dir, 'grant.yaml');
  fs.writeFileSync(file, GRANT);
  policy = watchPolicyFiles([file], (_f, error) => reloads.push(error), 50);
  server = await testServer({ authorizationPolicy: policy.authorize });
});

afterAll(async () => {
  policy.close();
  await server.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Whether the review of `user` comes to answer `allowed` (the apiserver polls its file). */
const allowedBecomes = (user: string, allowed: boolean) =>
  holdsWithin(
    async () => (await api(server, 'POST', SARS, { body: review(user) })).body.status.allowed === allowed,
    5_000,
    25,
  );

test('a node may ask about another user; the answer follows the policy file as it changes', async () => {
  const node = tokenFor('system:node:node-1', [NODES_GROUP]);
  const r = await api(server, 'POST', SARS, { body: review('kube-apiserver-kubelet-client'), token: node });
  expect(r.code).toBe(201);
  expect(r.body).toMatchObject({ kind: 'SubjectAccessReview', status: { allowed: true } });
  expect((await api(server, 'POST', SARS, { body: review('kube-apiserver') })).body.status).toEqual({
    allowed: false,
  });

  fs.writeFileSync(file, GRANT.replace('kube-apiserver-kubelet-client', 'kube-apiserver'));
  expect(await allowedBecomes('kube-apiserver-kubelet-client', false)).toBe(true);
  expect(await allowedBecomes('kube-apiserver', true)).toBe(true);

  // An edit that does not parse is reported and ignored: the last good rules stay.
  const errorsBefore = reloads.filter(Boolean).length;
  fs.writeFileSync(file, '- subjects: [oops\n');
  await waitFor('the invalid edit reported', () => reloads.filter(Boolean).length > errorsBefore, 5_000, 25);
  expect(reloads.filter(Boolean).at(-1)).toMatch(/invalid YAML/);
  expect(await allowedBecomes('kube-apiserver', true)).toBe(true);

  // A deleted file grants nothing, as a deleted binding.
  fs.rmSync(file);
  expect(await allowedBecomes('kube-apiserver', false)).toBe(true);
});

test('who may ask, and what a review must name', async () => {
  const alice = tokenFor('alice');
  expect((await api(server, 'POST', SARS, { body: review('admin'), token: alice })).code).toBe(403);
  const empty = await api(server, 'POST', SARS, { body: review('') });
  expect(empty.code).toBe(422);
  expect(empty.body.message).toMatch(/at least one of user or group must be specified/);
  // A group alone is enough: system:masters may do anything.
  const group = await api(server, 'POST', SARS, { body: review('', ['system:masters']) });
  expect(group.body.status).toEqual({ allowed: true });
});
