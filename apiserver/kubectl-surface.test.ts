/**
 * What kubectl asks of the apiserver besides plain JSON, over real loopback HTTP: Table
 * renderings (get, list, watch), aggregated discovery, the OpenAPI v3 index, strategic merge
 * patch, server-side field validation, dryRun, deletecollection; and pods/binding with the
 * in-process scheduler.
 */
import { api, node, pod, testServer, watch, ADMIN } from './test-support/harness.js';
import type { ApiServer } from './server.js';

let server: ApiServer;
afterEach(() => server?.close());

const PODS = '/api/v1/namespaces/default/pods';
const TABLE =
  'application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json';

async function getAs(path: string, accept: string) {
  const res = await fetch(server.url + path, {
    headers: { Authorization: `Bearer ${ADMIN}`, Accept: accept },
  });
  return { code: res.status, type: res.headers.get('content-type'), body: await res.json() };
}

describe('Table output (kubectl get)', () => {
  beforeEach(async () => {
    server = await testServer();
  });

  it('lists pods as a Table with the pod printer columns and metadata rows', async () => {
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    const r = await getAs(PODS, TABLE);
    expect(r.code).toBe(200);
    expect(r.type).toBe('application/json;g=meta.k8s.io;v=v1;as=Table');
    expect(r.body.kind).toBe('Table');
    expect(
      r.body.columnDefinitions.map((c: { name: string; priority: number }) => [c.name, c.priority]),
    ).toEqual([
      ['Name', 0],
      ['Ready', 0],
      ['Status', 0],
      ['Restarts', 0],
      ['Age', 0],
      ['IP', 1],
      ['Node', 1],
      ['Nominated Node', 1],
      ['Readiness Gates', 1],
    ]);
    expect(r.body.rows).toHaveLength(1);
    expect(r.body.rows[0].cells).toEqual([
      'demo',
      '0/1',
      'Pending',
      '0',
      expect.stringMatching(/^\d+s$/),
      '<none>',
      'node-1',
      '<none>',
      '<none>',
    ]);
    expect(r.body.rows[0].object).toMatchObject({
      kind: 'PartialObjectMetadata',
      metadata: { name: 'demo', namespace: 'default' },
    });
    expect(r.body.metadata.resourceVersion).toMatch(/^\d+$/);

    const one = await getAs(`${PODS}/demo?includeObject=None`, TABLE);
    expect(one.body.rows).toEqual([{ cells: expect.any(Array) }]);
    const plain = await getAs(`${PODS}/demo`, 'application/json');
    expect(plain.body.kind).toBe('Pod');
  });

  it('nodes as a Table; metadata-only lists; 406 for renderings it cannot make', async () => {
    await api(server, 'POST', '/api/v1/nodes', { body: node('node-1', '127.0.0.1', 10250) });
    const nodes = await getAs('/api/v1/nodes', TABLE);
    expect(nodes.body.rows[0].cells.slice(0, 3)).toEqual(['node-1', 'Unknown', '<none>']);
    const meta = await getAs(
      '/api/v1/nodes',
      'application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io',
    );
    expect(meta.body).toMatchObject({
      kind: 'PartialObjectMetadataList',
      items: [{ metadata: { name: 'node-1' } }],
    });
    const refused = await getAs('/api/v1/nodes', 'application/json;as=Table;v=v9;g=meta.k8s.io');
    expect(refused.code).toBe(406);
    expect(refused.body.reason).toBe('NotAcceptable');
  });

  it('watch events carry one-row Tables when asked (kubectl get -w)', async () => {
    const created = await api(server, 'POST', PODS, { body: pod('w') });
    const res = await fetch(
      `${server.url}${PODS}?watch=true&resourceVersion=${created.body.metadata.resourceVersion}`,
      {
        headers: { Authorization: `Bearer ${ADMIN}`, Accept: TABLE },
      },
    );
    const reader = res.body!.getReader();
    await api(server, 'DELETE', `${PODS}/w`);
    let text = '';
    while (!text.includes('\n')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    const ev = JSON.parse(text.split('\n')[0]!);
    expect(ev.type).toBe('DELETED');
    expect(ev.object).toMatchObject({
      kind: 'Table',
      rows: [
        { cells: ['w', '0/1', 'Pending', '0', expect.any(String), '<none>', '<none>', '<none>', '<none>'] },
      ],
    });
  });
});

describe('discovery and OpenAPI', () => {
  beforeEach(async () => {
    server = await testServer();
  });

  it('serves aggregated discovery with subresources, and legacy documents otherwise', async () => {
    const accept =
      'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';
    const core = await getAs('/api', accept);
    expect(core.type).toBe('application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    expect(core.body).toMatchObject({ kind: 'APIGroupDiscoveryList', apiVersion: 'apidiscovery.k8s.io/v2' });
    const v1 = core.body.items[0].versions[0];
    expect(v1).toMatchObject({ version: 'v1', freshness: 'Current' });
    const pods = v1.resources.find((r: { resource: string }) => r.resource === 'pods');
    expect(pods).toMatchObject({
      responseKind: { group: '', version: 'v1', kind: 'Pod' },
      scope: 'Namespaced',
      singularResource: 'pod',
      shortNames: ['po'],
    });
    expect(pods.subresources.map((s: { subresource: string }) => s.subresource)).toEqual([
      'attach',
      'binding',
      'exec',
      'log',
      'portforward',
      'status',
    ]);
    expect(pods.subresources.find((s: { subresource: string }) => s.subresource === 'binding')).toEqual({
      subresource: 'binding',
      responseKind: { group: '', version: 'v1', kind: 'Binding' },
      verbs: ['create'],
    });
    const named = (await getAs('/apis', accept)).body;
    expect(named.kind).toBe('APIGroupDiscoveryList');
    expect(named.items.map((i: { metadata: { name: string } }) => i.metadata.name)).toEqual([
      'coordination.k8s.io',
      'authorization.k8s.io',
      'authentication.k8s.io',
    ]);
    expect((await getAs('/api', 'application/json')).body.kind).toBe('APIVersions');
  });

  it('publishes an OpenAPI v3 index whose core/v1 document declares fieldValidation on Pod PATCH', async () => {
    const index = await api(server, 'GET', '/openapi/v3');
    const url = index.body.paths['api/v1'].serverRelativeURL;
    expect(url).toMatch(/^\/openapi\/v3\/api\/v1\?hash=[0-9A-F]+$/);
    const doc = await api(server, 'GET', url);
    const patch = doc.body.paths['/api/v1/namespaces/{namespace}/pods/{name}'].patch;
    expect(patch['x-kubernetes-group-version-kind']).toEqual({ group: '', version: 'v1', kind: 'Pod' });
    expect(patch.parameters.map((p: { name: string }) => p.name)).toContain('fieldValidation');
    expect((await api(server, 'GET', '/openapi/v2')).code).toBe(404);
  });
});

describe('writes as kubectl sends them', () => {
  beforeEach(async () => {
    server = await testServer();
  });

  it('kubectl apply patch: containers merge by name; the last-applied annotation is kept', async () => {
    const base = pod('demo', { containers: ['main', 'side'] });
    await api(server, 'POST', PODS, {
      body: {
        ...base,
        metadata: {
          ...base.metadata,
          annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' },
        },
      },
    });
    const r = await api(
      server,
      'PATCH',
      `${PODS}/demo?fieldManager=kubectl-client-side-apply&fieldValidation=Strict`,
      {
        contentType: 'application/strategic-merge-patch+json',
        body: {
          spec: {
            '$setElementOrder/containers': [{ name: 'main' }, { name: 'side' }],
            containers: [{ image: 'busybox:1.36', name: 'main' }],
          },
        },
      },
    );
    expect(r.code).toBe(200);
    expect(r.body.spec.containers).toEqual([
      { name: 'main', image: 'busybox:1.36' },
      { name: 'side', image: 'busybox' },
    ]);
    expect(r.body.metadata.annotations).toEqual({ 'kubectl.kubernetes.io/last-applied-configuration': '{}' });
  });

  it('fieldValidation: Strict refuses unknown fields, Warn drops them with a Warning header', async () => {
    const bad = { ...pod('bad'), spec: { foo: 1, containers: [{ name: 'main', image: 'x', imagee: 'y' }] } };
    const strict = await api(server, 'POST', `${PODS}?fieldValidation=Strict`, { body: bad });
    expect(strict.code).toBe(400);
    expect(strict.body.message).toBe(
      'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field "spec.foo", unknown field "spec.containers[0].imagee"',
    );
    const warned = await api(server, 'POST', `${PODS}?fieldValidation=Warn`, { body: bad });
    expect(warned.code).toBe(201);
    expect(warned.headers.get('warning')).toBe(
      '299 - "unknown field \\"spec.foo\\"", 299 - "unknown field \\"spec.containers[0].imagee\\""',
    );
    expect(warned.body.spec).toEqual({ containers: [{ name: 'main', image: 'x' }] });
    expect((await api(server, 'POST', `${PODS}?fieldValidation=Loose`, { body: pod('x') })).code).toBe(400);
  });

  it('dryRun=All stores nothing; DeleteOptions bodies are accepted; deletecollection by label', async () => {
    const dry = await api(server, 'POST', `${PODS}?dryRun=All`, { body: pod('dry') });
    expect(dry.code).toBe(201);
    expect((await api(server, 'GET', `${PODS}/dry`)).code).toBe(404);
    await api(server, 'POST', PODS, { body: pod('a', { labels: { app: 'x' } }) });
    await api(server, 'POST', PODS, { body: pod('b', { labels: { app: 'x' } }) });
    await api(server, 'POST', PODS, { body: pod('c') });
    const keep = await api(server, 'DELETE', `${PODS}/c?dryRun=All`, {
      body: {
        kind: 'DeleteOptions',
        apiVersion: 'v1',
        propagationPolicy: 'Background',
        gracePeriodSeconds: 0,
      },
    });
    expect(keep.code).toBe(200);
    expect((await api(server, 'GET', `${PODS}/c`)).code).toBe(200);
    const gone = await api(server, 'DELETE', `${PODS}?labelSelector=app%3Dx`);
    expect(gone.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['a', 'b']);
    const left = await api(server, 'GET', PODS);
    expect(left.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['c']);
  });
});

describe('pods/binding', () => {
  beforeEach(async () => {
    server = await testServer();
  });
  const binding = (name: string, nodeName: string) => ({
    apiVersion: 'v1',
    kind: 'Binding',
    metadata: { name },
    target: { kind: 'Node', name: nodeName },
  });

  it('binds a pending pod (201 Success, PodScheduled True); a second binding is a 409', async () => {
    await api(server, 'POST', PODS, { body: pod('p') });
    const r = await api(server, 'POST', `${PODS}/p/binding`, { body: binding('p', 'node-1') });
    expect(r.code).toBe(201);
    expect(r.body).toMatchObject({ kind: 'Status', status: 'Success' });
    const got = await api(server, 'GET', `${PODS}/p`);
    expect(got.body.spec.nodeName).toBe('node-1');
    expect(got.body.status.conditions).toEqual([
      expect.objectContaining({ type: 'PodScheduled', status: 'True' }),
    ]);

    const again = await api(server, 'POST', `${PODS}/p/binding`, { body: binding('p', 'node-2') });
    expect(again.code).toBe(409);
    expect(again.body).toMatchObject({
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on pods/binding "p": pod p is already assigned to node "node-1"',
    });
  });

  it('refuses a missing pod, a mismatched name and a target that is not a node', async () => {
    expect((await api(server, 'POST', `${PODS}/nope/binding`, { body: binding('nope', 'n') })).code).toBe(
      404,
    );
    await api(server, 'POST', PODS, { body: pod('p') });
    const mismatch = await api(server, 'POST', `${PODS}/p/binding`, { body: binding('q', 'n') });
    expect([mismatch.code, mismatch.body.message]).toEqual([
      400,
      'name in URL does not match name in Binding object',
    ]);
    const wrong = await api(server, 'POST', `${PODS}/p/binding`, {
      body: { ...binding('p', ''), target: { kind: 'Pod' } },
    });
    expect(wrong.code).toBe(422);
    expect(wrong.body.message).toBe(
      'Binding "p" is invalid: [target.kind: Unsupported value: "Pod": supported values: "Node", "<empty>", target.name: Required value]',
    );
  });
});

describe('scheduler', () => {
  const readyNode = (name: string, heartbeat: Date) => {
    const n = node(name, '127.0.0.1', 10250);
    return {
      ...n,
      status: {
        ...n.status,
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            lastHeartbeatTime: heartbeat.toISOString().replace(/\.\d+Z$/, 'Z'),
          },
        ],
      },
    };
  };

  it('binds a pod created without a node to the only ready node', async () => {
    server = await testServer({ scheduler: true });
    await api(server, 'POST', '/api/v1/nodes', {
      body: readyNode('stale', new Date(Date.now() - 10 * 60_000)),
    });
    const notReady = node('down', '127.0.0.1', 10250);
    await api(server, 'POST', '/api/v1/nodes', {
      body: { ...notReady, status: { ...notReady.status, conditions: [{ type: 'Ready', status: 'False' }] } },
    });
    await api(server, 'POST', '/api/v1/nodes', { body: readyNode('good', new Date()) });

    const w = await watch(server, `${PODS}?watch=true&fieldSelector=metadata.name%3Dp`);
    await api(server, 'POST', PODS, { body: pod('p') });
    let ev = await w.next();
    while (!ev.object.spec.nodeName) ev = await w.next();
    w.close();
    expect(ev.object.spec.nodeName).toBe('good');
    expect(ev.object.status.conditions).toEqual([
      expect.objectContaining({ type: 'PodScheduled', status: 'True' }),
    ]);
  });

  it('marks a pod Unschedulable while no node is ready, and binds it once one is', async () => {
    server = await testServer({ scheduler: true });
    const w = await watch(server, `${PODS}?watch=true`);
    await api(server, 'POST', PODS, { body: pod('p') });
    let ev = await w.next();
    while (!ev.object.status.conditions) ev = await w.next();
    expect(ev.object.status.conditions).toEqual([
      expect.objectContaining({
        type: 'PodScheduled',
        status: 'False',
        reason: 'Unschedulable',
        message: '0/0 nodes are available: no nodes registered.',
      }),
    ]);
    await api(server, 'POST', '/api/v1/nodes', { body: readyNode('late', new Date()) });
    while (!ev.object.spec.nodeName) ev = await w.next();
    w.close();
    expect(ev.object.spec.nodeName).toBe('late');
  });

  it('spreads pods over ready nodes by least pods', async () => {
    server = await testServer({ scheduler: true });
    await api(server, 'POST', '/api/v1/nodes', { body: readyNode('n1', new Date()) });
    await api(server, 'POST', '/api/v1/nodes', { body: readyNode('n2', new Date()) });
    for (const name of ['a', 'b', 'c', 'd']) await api(server, 'POST', PODS, { body: pod(name) });
    await server.scheduler!.idle();
    const list = await api(server, 'GET', PODS);
    const counts: Record<string, number> = {};
    for (const p of list.body.items) counts[p.spec.nodeName] = (counts[p.spec.nodeName] ?? 0) + 1;
    expect(counts).toEqual({ n1: 2, n2: 2 });
  });
});
