import { MemoryStore } from './storage/memory-store.js';
import { api, node, pod, testServer, watch } from './test-support/harness.js';
import type { ApiServer } from './server.js';

let server: ApiServer;
beforeEach(async () => {
  server = await testServer();
});
afterEach(() => server.close());

const PODS = '/api/v1/namespaces/default/pods';

describe('pods: create, get, list, delete', () => {
  it('creates with server-set metadata, Pending status and the given nodeName', async () => {
    const r = await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    expect(r.code).toBe(201);
    expect(r.body).toMatchObject({
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name: 'demo', namespace: 'default' },
      spec: { nodeName: 'node-1' },
      status: { phase: 'Pending' },
    });
    expect(r.body.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(r.body.metadata.creationTimestamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(Number(r.body.metadata.resourceVersion)).toBeGreaterThan(0);

    const got = await api(server, 'GET', `${PODS}/demo`);
    expect(got.code).toBe(200);
    expect(got.body).toEqual(r.body);
  });

  it('status sent on create is replaced; generateName makes a name', async () => {
    const body = { ...pod(''), metadata: { generateName: 'web-' }, status: { phase: 'Running' } };
    const r = await api(server, 'POST', PODS, { body });
    expect(r.code).toBe(201);
    expect(r.body.metadata.name).toMatch(/^web-[a-z0-9]{5}$/);
    expect(r.body.status).toEqual({ phase: 'Pending' });
  });

  it('answers NotFound, AlreadyExists, BadRequest and Invalid as Status objects', async () => {
    const missing = await api(server, 'GET', `${PODS}/nope`);
    expect(missing.code).toBe(404);
    expect(missing.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'pods "nope" not found',
      reason: 'NotFound',
      details: { name: 'nope', kind: 'pods' },
      code: 404,
    });

    expect((await api(server, 'POST', PODS, { body: pod('a') })).code).toBe(201);
    const dup = await api(server, 'POST', PODS, { body: pod('a') });
    expect(dup.code).toBe(409);
    expect(dup.body).toMatchObject({ reason: 'AlreadyExists', message: 'pods "a" already exists' });

    const bad = await api(server, 'POST', PODS, { raw: '{"metadata": ' });
    expect(bad.code).toBe(400);
    expect(bad.body).toMatchObject({ kind: 'Status', reason: 'BadRequest' });

    const invalid = await api(server, 'POST', PODS, { body: { metadata: {}, spec: {} } });
    expect(invalid.code).toBe(422);
    expect(invalid.body).toMatchObject({
      reason: 'Invalid',
      message:
        'Pod "" is invalid: [metadata.name: Required value: name or generateName is required, spec.containers: Required value]',
      details: {
        kind: 'Pod',
        causes: [
          { reason: 'FieldValueRequired', field: 'metadata.name' },
          { reason: 'FieldValueRequired', field: 'spec.containers', message: 'Required value' },
        ],
      },
    });

    const badName = await api(server, 'POST', PODS, { body: pod('Not_Valid') });
    expect(badName.code).toBe(422);
    expect(badName.body.details.causes[0]).toMatchObject({
      reason: 'FieldValueInvalid',
      field: 'metadata.name',
    });

    const dupContainer = await api(server, 'POST', PODS, { body: pod('x', { containers: ['c', 'c'] }) });
    expect(dupContainer.body.message).toBe(
      'Pod "x" is invalid: spec.containers[1].name: Duplicate value: "c"',
    );

    const otherNs = await api(server, 'POST', PODS, {
      body: { ...pod('y'), metadata: { name: 'y', namespace: 'kube-system' } },
    });
    expect(otherNs.code).toBe(400);
    const wrongKind = await api(server, 'POST', PODS, { body: { ...pod('z'), kind: 'Node' } });
    expect(wrongKind.code).toBe(400);
    expect(wrongKind.body.message).toBe('Node in version "v1" cannot be handled as a Pod');
  });

  it('lists in one namespace, across all namespaces, and by field and label selectors', async () => {
    await api(server, 'POST', PODS, { body: pod('a', { nodeName: 'n1', labels: { app: 'web' } }) });
    await api(server, 'POST', PODS, { body: pod('b', { nodeName: 'n2', labels: { app: 'db' } }) });
    await api(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'other' } } });
    await api(server, 'POST', '/api/v1/namespaces/other/pods', { body: pod('c', { nodeName: 'n1' }) });
    await api(server, 'POST', PODS, { body: pod('d') });

    const names = async (path: string): Promise<string[]> => {
      const r = await api(server, 'GET', path);
      expect(r.code).toBe(200);
      expect(r.body.kind).toBe('PodList');
      expect(r.body.metadata.resourceVersion).toBe(server.store.currentResourceVersion());
      return r.body.items.map(
        (p: { metadata: { namespace: string; name: string } }) =>
          `${p.metadata.namespace}/${p.metadata.name}`,
      );
    };
    expect(await names(PODS)).toEqual(['default/a', 'default/b', 'default/d']);
    expect(await names('/api/v1/pods')).toEqual(['default/a', 'default/b', 'default/d', 'other/c']);
    expect(await names('/api/v1/pods?fieldSelector=spec.nodeName%3Dn1')).toEqual(['default/a', 'other/c']);
    expect(await names(`${PODS}?fieldSelector=spec.nodeName%3D`)).toEqual(['default/d']);
    expect(await names(`${PODS}?fieldSelector=metadata.name%3Db`)).toEqual(['default/b']);
    expect(await names(`${PODS}?labelSelector=app%3Dweb`)).toEqual(['default/a']);
    expect(await names(`${PODS}?labelSelector=app!%3Dweb`)).toEqual(['default/b', 'default/d']);
    expect(await names(`${PODS}?labelSelector=app%20in%20(web,db)`)).toEqual(['default/a', 'default/b']);

    const list = await api(server, 'GET', PODS);
    expect(list.body.items[0].kind).toBeUndefined();

    const unsupported = await api(server, 'GET', `${PODS}?fieldSelector=spec.hostname%3Dx`);
    expect(unsupported.code).toBe(400);
    expect(unsupported.body.message).toBe('field label not supported: spec.hostname');
  });

  it('deletes, returning the pod; a second delete is NotFound; preconditions are checked', async () => {
    const created = (await api(server, 'POST', PODS, { body: pod('a') })).body;
    const pre = await api(server, 'DELETE', `${PODS}/a`, { body: { preconditions: { uid: 'wrong' } } });
    expect(pre.code).toBe(409);
    const del = await api(server, 'DELETE', `${PODS}/a`);
    expect(del.code).toBe(200);
    expect(del.body.metadata.uid).toBe(created.metadata.uid);
    expect((await api(server, 'GET', `${PODS}/a`)).code).toBe(404);
    expect((await api(server, 'DELETE', `${PODS}/a`)).code).toBe(404);
  });
});

describe('updates', () => {
  it('PUT with a stale resourceVersion is a Conflict; with the current one it succeeds', async () => {
    const v1 = (await api(server, 'POST', PODS, { body: pod('a', { labels: { v: '1' } }) })).body;
    const v2 = await api(server, 'PUT', `${PODS}/a`, {
      body: { ...v1, metadata: { ...v1.metadata, labels: { v: '2' } } },
    });
    expect(v2.code).toBe(200);
    expect(Number(v2.body.metadata.resourceVersion)).toBeGreaterThan(Number(v1.metadata.resourceVersion));

    const stale = await api(server, 'PUT', `${PODS}/a`, {
      body: { ...v1, metadata: { ...v1.metadata, labels: { v: '3' } } },
    });
    expect(stale.code).toBe(409);
    expect(stale.body).toMatchObject({
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on pods "a": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'a', kind: 'pods' },
    });
    expect((await api(server, 'GET', `${PODS}/a`)).body.metadata.labels).toEqual({ v: '2' });

    const renamed = await api(server, 'PUT', `${PODS}/a`, {
      body: { ...v2.body, metadata: { ...v2.body.metadata, name: 'b' } },
    });
    expect(renamed.code).toBe(400);
    expect((await api(server, 'PUT', `${PODS}/zzz`, { body: pod('zzz') })).code).toBe(404);
  });

  it('pods/status changes only the status; a pod PUT keeps the status; spec is immutable but for images', async () => {
    const p = (await api(server, 'POST', PODS, { body: pod('a', { nodeName: 'n1' }) })).body;
    const st = await api(server, 'PUT', `${PODS}/a/status`, {
      body: {
        ...p,
        spec: { ...p.spec, nodeName: 'elsewhere' },
        status: { phase: 'Running', podIP: '10.0.0.5' },
      },
    });
    expect(st.code).toBe(200);
    expect(st.body.status).toEqual({ phase: 'Running', podIP: '10.0.0.5' });
    expect(st.body.spec.nodeName).toBe('n1');

    const specPut = await api(server, 'PUT', `${PODS}/a`, {
      body: { ...st.body, status: { phase: 'Failed' } },
    });
    expect(specPut.code).toBe(200);
    expect(specPut.body.status.phase).toBe('Running');

    const moved = await api(server, 'PUT', `${PODS}/a`, {
      body: { ...specPut.body, spec: { ...specPut.body.spec, nodeName: 'n2' } },
    });
    expect(moved.code).toBe(422);
    expect(moved.body.message).toContain('pod updates may not change fields other than');

    const image = structuredClone(specPut.body);
    image.spec.containers[0].image = 'alpine';
    expect((await api(server, 'PUT', `${PODS}/a`, { body: image })).body.spec.containers[0].image).toBe(
      'alpine',
    );

    const getStatus = await api(server, 'GET', `${PODS}/a/status`);
    expect(getStatus.body.status.phase).toBe('Running');
  });

  it('PATCH: merge patch, strategic merge treated as merge, JSON patch; unknown types are 415', async () => {
    await api(server, 'POST', PODS, { body: pod('a', { labels: { a: '1', b: '2' } }) });
    const merge = await api(server, 'PATCH', `${PODS}/a`, {
      body: { metadata: { labels: { a: null, c: '3' } } },
      contentType: 'application/merge-patch+json',
    });
    expect(merge.code).toBe(200);
    expect(merge.body.metadata.labels).toEqual({ b: '2', c: '3' });

    const status = await api(server, 'PATCH', `${PODS}/a/status`, {
      body: { status: { phase: 'Running' } },
      contentType: 'application/strategic-merge-patch+json',
    });
    expect(status.body.status.phase).toBe('Running');

    const json = await api(server, 'PATCH', `${PODS}/a`, {
      body: [
        { op: 'test', path: '/metadata/labels/b', value: '2' },
        { op: 'add', path: '/metadata/labels/d', value: '4' },
      ],
      contentType: 'application/json-patch+json',
    });
    expect(json.body.metadata.labels).toEqual({ b: '2', c: '3', d: '4' });

    const failed = await api(server, 'PATCH', `${PODS}/a`, {
      body: [{ op: 'test', path: '/metadata/labels/b', value: 'x' }],
      contentType: 'application/json-patch+json',
    });
    expect(failed.code).toBe(422);

    const stale = await api(server, 'PATCH', `${PODS}/a`, {
      body: { metadata: { resourceVersion: '1', labels: { e: '5' } } },
      contentType: 'application/merge-patch+json',
    });
    expect(stale.code).toBe(409);

    // Server-side apply is served (handlers/apply.test.ts): without a fieldManager it is a 422;
    // its CBOR form is not, a 415.
    const apply = await api(server, 'PATCH', `${PODS}/a`, {
      raw: '{}',
      contentType: 'application/apply-patch+yaml',
    });
    expect(apply.code).toBe(422);
    const cbor = await api(server, 'PATCH', `${PODS}/a?fieldManager=m`, {
      raw: '{}',
      contentType: 'application/apply-patch+cbor',
    });
    expect(cbor.code).toBe(415);
    expect(
      (await api(server, 'PATCH', `${PODS}/none`, { body: {}, contentType: 'application/merge-patch+json' }))
        .code,
    ).toBe(404);
  });
});

describe('nodes', () => {
  it('create with status, get, list, status update; cluster-scoped paths only', async () => {
    const created = await api(server, 'POST', '/api/v1/nodes', { body: node('n1', '127.0.0.1', 10250) });
    expect(created.code).toBe(201);
    expect(created.body.metadata.namespace).toBeUndefined();
    expect(created.body.status.addresses[0]).toEqual({ type: 'InternalIP', address: '127.0.0.1' });

    const st = await api(server, 'PUT', '/api/v1/nodes/n1/status', {
      body: {
        ...created.body,
        status: { ...created.body.status, conditions: [{ type: 'Ready', status: 'True' }] },
      },
    });
    expect(st.code).toBe(200);
    expect(st.body.status.conditions[0].type).toBe('Ready');

    const list = await api(server, 'GET', '/api/v1/nodes?fieldSelector=metadata.name%3Dn1');
    expect(list.body.kind).toBe('NodeList');
    expect(list.body.items).toHaveLength(1);
    expect((await api(server, 'GET', '/api/v1/nodes/n2')).body.message).toBe('nodes "n2" not found');
    expect((await api(server, 'GET', '/api/v1/namespaces/default/nodes/n1')).code).toBe(404);
    const del = await api(server, 'DELETE', '/api/v1/nodes/n1');
    expect(del.body).toMatchObject({
      kind: 'Status',
      status: 'Success',
      details: { name: 'n1', kind: 'nodes' },
    });
  });
});

describe('routing', () => {
  it('unknown resources and subresources are 404; unsupported methods are 405', async () => {
    await api(server, 'POST', PODS, { body: pod('a') });
    for (const path of [
      `${PODS}/a/bogus`,
      '/api/v1/namespaces/default/services',
      '/api/v2/pods',
      '/apis/apps/v1/deployments',
      '/nonsense',
    ]) {
      const r = await api(server, 'GET', path);
      expect([path, r.code, r.body?.reason]).toEqual([path, 404, 'NotFound']);
    }
    const post = await api(server, 'POST', '/api/v1/pods', { body: pod('b') });
    expect(post.code).toBe(404);
    const put = await api(server, 'PUT', `${PODS}/a/exec`, { body: {} });
    expect(put.code).toBe(405);
    expect(put.body.reason).toBe('MethodNotAllowed');
    expect((await api(server, 'POST', `${PODS}/a`, { body: pod('a') })).code).toBe(405);
    expect((await api(server, 'PUT', PODS, { body: pod('a') })).code).toBe(405);
    expect((await api(server, 'DELETE', `${PODS}/a/status`)).code).toBe(405);
  });

  it('serves version and discovery generated from the registry', async () => {
    const version = await api(server, 'GET', '/version', { token: null });
    expect(version.body).toMatchObject({ major: '1', minor: '35', gitVersion: 'v1.35.0-kexec-lab' });
    expect((await api(server, 'GET', '/healthz', { token: null })).text).toBe('ok');

    const apiRoot = await api(server, 'GET', '/api');
    expect(apiRoot.body).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = (await api(server, 'GET', '/apis')).body;
    expect(groups.kind).toBe('APIGroupList');
    expect(
      groups.groups.map(
        (g: { preferredVersion: { groupVersion: string } }) => g.preferredVersion.groupVersion,
      ),
    ).toEqual(['coordination.k8s.io/v1', 'authorization.k8s.io/v1', 'authentication.k8s.io/v1']);
    const leases = (await api(server, 'GET', '/apis/coordination.k8s.io/v1')).body;
    expect(leases).toMatchObject({
      kind: 'APIResourceList',
      groupVersion: 'coordination.k8s.io/v1',
      resources: [{ name: 'leases', namespaced: true, kind: 'Lease' }],
    });

    const v1 = await api(server, 'GET', '/api/v1');
    expect(v1.body.kind).toBe('APIResourceList');
    const byName = Object.fromEntries(v1.body.resources.map((r: { name: string }) => [r.name, r]));
    expect(Object.keys(byName).sort()).toEqual([
      'events',
      'namespaces',
      'nodes',
      'nodes/proxy',
      'nodes/status',
      'pods',
      'pods/attach',
      'pods/binding',
      'pods/exec',
      'pods/log',
      'pods/portforward',
      'pods/status',
    ]);
    expect(byName.pods).toMatchObject({
      singularName: 'pod',
      namespaced: true,
      kind: 'Pod',
      shortNames: ['po'],
      verbs: ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'],
    });
    expect(byName['pods/binding']).toMatchObject({ kind: 'Binding', verbs: ['create'] });
    expect(byName['pods/exec']).toMatchObject({ kind: 'PodExecOptions', verbs: ['create', 'get'] });
    expect(byName['pods/log'].verbs).toEqual(['get']);
    expect(byName['pods/status'].verbs).toEqual(['get', 'patch', 'update']);
    expect(byName.nodes).toMatchObject({ namespaced: false, shortNames: ['no'] });
  });
});

describe('watch', () => {
  it('delivers ADDED, MODIFIED and DELETED from a resourceVersion, and ends at timeoutSeconds', async () => {
    const list = await api(server, 'GET', PODS);
    const w = await watch(
      server,
      `${PODS}?watch=true&resourceVersion=${list.body.metadata.resourceVersion}&timeoutSeconds=5`,
    );
    expect(w.code).toBe(200);
    const created = (await api(server, 'POST', PODS, { body: pod('a') })).body;
    await api(server, 'PATCH', `${PODS}/a`, {
      body: { metadata: { labels: { x: 'y' } } },
      contentType: 'application/merge-patch+json',
    });
    await api(server, 'DELETE', `${PODS}/a`);
    const e1 = await w.next();
    const e2 = await w.next();
    const e3 = await w.next();
    expect([e1.type, e2.type, e3.type]).toEqual(['ADDED', 'MODIFIED', 'DELETED']);
    expect(e1.object).toMatchObject({
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: { name: 'a', uid: created.metadata.uid },
    });
    expect(e2.object.metadata.labels).toEqual({ x: 'y' });
    expect(Number(e3.object.metadata.resourceVersion)).toBeGreaterThan(
      Number(e2.object.metadata.resourceVersion),
    );
    w.close();
  });

  it('honours timeoutSeconds', async () => {
    const w = await watch(server, `${PODS}?watch=1&timeoutSeconds=1`);
    const started = Date.now();
    await w.ended;
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('without a resourceVersion starts with the current objects; selectors turn moves into ADDED / DELETED', async () => {
    await api(server, 'POST', PODS, { body: pod('old', { nodeName: 'n1' }) });
    const w = await watch(
      server,
      `/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dn1&timeoutSeconds=10`,
    );
    expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'old' } } });
    await api(server, 'POST', PODS, { body: pod('elsewhere', { nodeName: 'n2' }) });
    await api(server, 'POST', '/api/v1/namespaces', { body: { metadata: { name: 'x' } } });
    await api(server, 'POST', '/api/v1/namespaces/x/pods', { body: pod('mine', { nodeName: 'n1' }) });
    expect(await w.next()).toMatchObject({
      type: 'ADDED',
      object: { metadata: { name: 'mine', namespace: 'x' } },
    });
    await api(server, 'PATCH', `${PODS}/old/status`, {
      body: { status: { phase: 'Running' } },
      contentType: 'application/merge-patch+json',
    });
    expect(await w.next()).toMatchObject({ type: 'MODIFIED', object: { status: { phase: 'Running' } } });
    await api(server, 'DELETE', `${PODS}/old`);
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'old' } } });
    w.close();

    const labelled = await watch(server, `${PODS}?watch=true&labelSelector=tier%3Dweb&timeoutSeconds=10`);
    await api(server, 'POST', PODS, { body: pod('p', { labels: { tier: 'db' } }) });
    await api(server, 'PATCH', `${PODS}/p`, {
      body: { metadata: { labels: { tier: 'web' } } },
      contentType: 'application/merge-patch+json',
    });
    await api(server, 'PATCH', `${PODS}/p`, {
      body: { metadata: { labels: { tier: 'db' } } },
      contentType: 'application/merge-patch+json',
    });
    expect((await labelled.next()).type).toBe('ADDED');
    expect((await labelled.next()).type).toBe('DELETED');
    labelled.close();
  });

  it('a resourceVersion older than the history gets an ERROR event with a 410 Status', async () => {
    await server.close();
    server = await testServer({ store: new MemoryStore({ historySize: 2 }) });
    for (const n of ['a', 'b', 'c', 'd']) await api(server, 'POST', PODS, { body: pod(n) });
    const w = await watch(server, `${PODS}?watch=true&resourceVersion=1`);
    expect(w.code).toBe(200);
    const ev = await w.next();
    expect(ev).toMatchObject({ type: 'ERROR', object: { kind: 'Status', code: 410, status: 'Failure' } });
    await w.ended;
  });

  it('the legacy /api/v1/watch/ path watches one object', async () => {
    await api(server, 'POST', PODS, { body: pod('a') });
    await api(server, 'POST', PODS, { body: pod('b') });
    const w = await watch(server, '/api/v1/watch/namespaces/default/pods/b?timeoutSeconds=5');
    expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'b' } } });
    await api(server, 'DELETE', `${PODS}/a`);
    await api(server, 'DELETE', `${PODS}/b`);
    expect(await w.next()).toMatchObject({ type: 'DELETED', object: { metadata: { name: 'b' } } });
    w.close();
  });
});
