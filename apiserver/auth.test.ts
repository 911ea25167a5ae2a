import { randomBytes } from 'node:crypto';
import { ADMIN_GROUP, KUBELET_AUDIENCE, NODES_GROUP } from '../shared/auth/tokens.js';
import { fakeBackend, parseResponse, rawExchange, upgradeRequest } from '../shared/test-support/loopback.js';
import { api, node, pod, testServer, tokenFor } from './test-support/harness.js';
import type { ApiServer } from './server.js';

let server: ApiServer;
beforeEach(async () => {
  server = await testServer();
});
afterEach(() => server.close());

const PODS = '/api/v1/namespaces/default/pods';
const UNAUTHORIZED = {
  kind: 'Status',
  apiVersion: 'v1',
  metadata: {},
  status: 'Failure',
  message: 'Unauthorized',
  reason: 'Unauthorized',
  code: 401,
};

describe('authentication', () => {
  it.each([
    ['no token', null],
    ['an expired token', tokenFor('admin', [ADMIN_GROUP], { expiresInSec: -3600 })],
    ['a token signed with another key', tokenFor('admin', [ADMIN_GROUP], { key: randomBytes(32) })],
    ['a kubelet-audience token', tokenFor('admin', [ADMIN_GROUP], { audience: KUBELET_AUDIENCE })],
    ['garbage', 'not.a.jwt'],
  ])('refuses %s with a bare 401 Status', async (_what, token) => {
    for (const path of [PODS, '/api/v1', '/api/v1/nodes/x']) {
      const r = await api(server, 'GET', path, { token });
      expect(r.code).toBe(401);
      expect(r.body).toEqual(UNAUTHORIZED);
    }
  });

  it('refuses an unauthenticated upgrade on the socket and closes it', async () => {
    const { all } = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/demo/exec?command=ls&stdout=true`),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(401);
    expect(JSON.parse(res.body)).toEqual(UNAUTHORIZED);
  });

  it('serves health and version without credentials', async () => {
    for (const path of ['/healthz', '/livez', '/readyz', '/version']) {
      expect((await api(server, 'GET', path, { token: null })).code).toBe(200);
    }
  });
});

describe('authorisation', () => {
  const bob = tokenFor('bob', ['developers']);

  it('denies other users with upstream-worded 403 Status objects', async () => {
    const get = await api(server, 'GET', `${PODS}/demo`, { token: bob });
    expect(get.code).toBe(403);
    expect(get.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message:
        'pods "demo" is forbidden: User "bob" cannot get resource "pods" in API group "" in the namespace "default"',
      reason: 'Forbidden',
      details: { name: 'demo', group: '', kind: 'pods' },
      code: 403,
    });
    const list = await api(server, 'GET', '/api/v1/nodes', { token: bob });
    expect(list.body.message).toBe(
      'nodes is forbidden: User "bob" cannot list resource "nodes" in API group "" at the cluster scope',
    );
    const watch = await api(server, 'GET', `${PODS}?watch=true`, { token: bob });
    expect(watch.body.message).toContain('cannot watch resource "pods"');
    // Discovery is readable by every authenticated user.
    expect((await api(server, 'GET', '/api/v1', { token: bob })).code).toBe(200);
  });

  it('a WebSocket-style GET on pods/exec needs create: 403 before any kubelet is contacted', async () => {
    const kubelet = await fakeBackend((socket) => socket.destroy());
    try {
      await api(server, 'POST', '/api/v1/nodes', { body: node('n1', '127.0.0.1', kubelet.port) });
      await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'n1' }) });
      for (const sub of ['exec', 'attach', 'portforward']) {
        for (const method of ['GET', 'POST']) {
          const req = upgradeRequest(
            `${PODS}/demo/${sub}?command=ls&stdout=true`,
            { Authorization: `Bearer ${bob}` },
            method,
          );
          const { all } = await rawExchange(server.port, req);
          const res = parseResponse(await all);
          expect([sub, method, res.code]).toEqual([sub, method, 403]);
          expect(JSON.parse(res.body).message).toBe(
            `pods "demo" is forbidden: User "bob" cannot create resource "pods/${sub}" in API group "" in the namespace "default"`,
          );
        }
      }
      expect(kubelet.connections).toHaveLength(0);
    } finally {
      await kubelet.close();
    }
  });

  it('a node reads pods and nodes, writes its own Node and the status of its own pods only', async () => {
    const n1 = tokenFor('system:node:n1', [NODES_GROUP]);
    await api(server, 'POST', PODS, { body: pod('mine', { nodeName: 'n1' }) });
    await api(server, 'POST', PODS, { body: pod('theirs', { nodeName: 'n2' }) });

    expect(
      (await api(server, 'POST', '/api/v1/nodes', { body: node('n1', '127.0.0.1', 1), token: n1 })).code,
    ).toBe(201);
    const other = await api(server, 'POST', '/api/v1/nodes', { body: node('n2', '127.0.0.1', 1), token: n1 });
    expect(other.code).toBe(403);
    expect(other.body.message).toBe('nodes "n2" is forbidden: node "n1" is not allowed to modify node "n2"');

    const listed = await api(server, 'GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1', { token: n1 });
    expect(listed.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['mine']);

    const mine = await api(server, 'PATCH', `${PODS}/mine/status`, {
      body: { status: { phase: 'Running' } },
      contentType: 'application/merge-patch+json',
      token: n1,
    });
    expect(mine.code).toBe(200);
    expect(mine.body.status.phase).toBe('Running');

    const current = (await api(server, 'GET', `${PODS}/theirs`)).body;
    const theirs = await api(server, 'PUT', `${PODS}/theirs/status`, {
      body: { ...current, status: { phase: 'Failed' } },
      token: n1,
    });
    expect(theirs.code).toBe(403);
    expect(theirs.body.message).toBe(
      'pods "theirs" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself',
    );
    expect((await api(server, 'GET', `${PODS}/theirs`)).body.status.phase).toBe('Pending');

    expect((await api(server, 'DELETE', `${PODS}/mine`, { token: n1 })).code).toBe(403);
    expect((await api(server, 'PUT', `${PODS}/mine`, { body: current, token: n1 })).code).toBe(403);
    const exec = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/mine/exec?command=ls`, { Authorization: `Bearer ${n1}` }),
    );
    expect(parseResponse(await exec.all).code).toBe(403);
  });
});
