/**
 * Server-side apply through the apiserver's HTTP surface (in process): create-on-apply, the
 * managedFields of applies and updates, conflicts and force, pruning, dry run, the options'
 * refusals and a pod's immutable spec.
 */
import { api, pod, testServer } from '../../test-support/harness.js';
import type { ApiServer } from '../../server.js';

const APPLY = 'application/apply-patch+yaml';
const PODS = '/api/v1/namespaces/default/pods';

let server: ApiServer;
beforeAll(async () => {
  server = await testServer();
});
afterAll(async () => {
  await server.close();
});

function apply(name: string, body: unknown, query: string) {
  return api(server, 'PATCH', `${PODS}/${name}?${query}`, {
    raw: typeof body === 'string' ? body : JSON.stringify(body),
    contentType: APPLY,
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const entry = (obj: any, manager: string, operation = 'Apply') =>
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  obj.metadata.managedFields?.find((e: any) => e.manager === manager && e.operation === operation);

describe('server-side apply', () => {
  it('creates a missing pod (201) and records the applier with FieldsV1', async () => {
    const res = await apply('ssa-a', pod('ssa-a', { labels: { app: 'one' } }), 'fieldManager=mgr1');
    expect(res.code).toBe(201);
    const e = entry(res.body, 'mgr1');
    expect(e).toMatchObject({
      manager: 'mgr1',
      operation: 'Apply',
      apiVersion: 'v1',
      fieldsType: 'FieldsV1',
    });
    expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(e.fieldsV1).toEqual({
      'f:metadata': { 'f:labels': { 'f:app': {} } },
      'f:spec': { 'f:containers': { 'k:{"name":"main"}': { '.': {}, 'f:image': {}, 'f:name': {} } } },
    });
    const got = await api(server, 'GET', `${PODS}/ssa-a`);
    expect(got.body.metadata.managedFields).toEqual(res.body.metadata.managedFields);
  });

  it('re-applies a changed label (200); a label it no longer applies is removed', async () => {
    await apply('ssa-b', pod('ssa-b', { labels: { app: 'one', tier: 'web' } }), 'fieldManager=mgr1');
    const res = await apply('ssa-b', pod('ssa-b', { labels: { app: 'two' } }), 'fieldManager=mgr1');
    expect(res.code).toBe(200);
    expect(res.body.metadata.labels).toEqual({ app: 'two' });
    // managedFields a client writes are kept (kubectl's client-side → server-side migration
    // does so): date the applier's entry back, then apply the same again. Nothing changes: no new
    // resourceVersion, the entry keeps its time.
    const current = res.body;
    entry(current, 'mgr1').time = '2020-01-01T00:00:00Z';
    const put = await api(server, 'PUT', `${PODS}/ssa-b`, { body: current });
    expect(entry(put.body, 'mgr1').time).toBe('2020-01-01T00:00:00Z');
    const again = await apply('ssa-b', pod('ssa-b', { labels: { app: 'two' } }), 'fieldManager=mgr1');
    expect(again.body.metadata.resourceVersion).toBe(put.body.metadata.resourceVersion);
    expect(entry(again.body, 'mgr1').time).toBe('2020-01-01T00:00:00Z');
  });

  it('a second manager changing an owned field gets 409 with FieldManagerConflict causes; force takes it', async () => {
    await apply('ssa-c', pod('ssa-c', { labels: { app: 'one' } }), 'fieldManager=mgr1');
    const res = await apply('ssa-c', pod('ssa-c', { labels: { app: 'other' } }), 'fieldManager=mgr2');
    expect(res.code).toBe(409);
    expect(res.body).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Conflict',
      code: 409,
      details: {
        causes: [
          { reason: 'FieldManagerConflict', message: 'conflict with "mgr1"', field: '.metadata.labels.app' },
        ],
      },
    });
    // The image too: two conflicts, grouped by manager.
    const both = pod('ssa-c', { labels: { app: 'other' } });
    both.spec.containers[0]!.image = 'busybox:2';
    const two = await apply('ssa-c', both, 'fieldManager=mgr2');
    expect(two.body.message).toBe(
      'Apply failed with 2 conflicts: conflicts with "mgr1":\n- .metadata.labels.app\n- .spec.containers[name="main"].image',
    );
    const forced = await apply(
      'ssa-c',
      pod('ssa-c', { labels: { app: 'other' } }),
      'fieldManager=mgr2&force=true',
    );
    expect(forced.code).toBe(200);
    expect(forced.body.metadata.labels).toEqual({ app: 'other' });
    expect(entry(forced.body, 'mgr1').fieldsV1['f:metadata']).toBeUndefined();
    expect(entry(forced.body, 'mgr2').fieldsV1['f:metadata']).toEqual({ 'f:labels': { 'f:app': {} } });
  });

  it('applying the same value shares the field; a label only another manager owns stays', async () => {
    await apply('ssa-d', pod('ssa-d', { labels: { app: 'one', team: 'x' } }), 'fieldManager=mgr1');
    const shared = await apply('ssa-d', pod('ssa-d', { labels: { app: 'one' } }), 'fieldManager=mgr2');
    expect(shared.code).toBe(200);
    // mgr1 stops applying both labels: app is still mgr2's, team was mgr1's alone.
    const res = await apply('ssa-d', pod('ssa-d'), 'fieldManager=mgr1');
    expect(res.body.metadata.labels).toEqual({ app: 'one' });
  });

  it('an Update (merge patch, PUT) records its manager, from fieldManager or the User-Agent', async () => {
    const created = await api(server, 'POST', `${PODS}?fieldManager=kubectl-create`, { body: pod('ssa-e') });
    expect(entry(created.body, 'kubectl-create', 'Update').fieldsV1['f:spec']).toEqual({
      'f:containers': { 'k:{"name":"main"}': { '.': {}, 'f:image': {}, 'f:name': {} } },
    });
    const patched = await api(server, 'PATCH', `${PODS}/ssa-e`, {
      body: { metadata: { labels: { run: 'x' } } },
      contentType: 'application/merge-patch+json',
    });
    // Node's fetch says `node`; the manager is the User-Agent's product.
    expect(entry(patched.body, 'node', 'Update').fieldsV1).toEqual({
      'f:metadata': { 'f:labels': { '.': {}, 'f:run': {} } },
    });
    // An apply now changing that label conflicts with the updater, named with its apiVersion.
    const res = await apply('ssa-e', pod('ssa-e', { labels: { run: 'y' } }), 'fieldManager=mgr1');
    expect(res.code).toBe(409);
    expect(res.body.message).toBe(
      'Apply failed with 1 conflict: conflict with "node" using v1: .metadata.labels.run',
    );
  });

  it('dryRun=All answers as the apply would and stores nothing', async () => {
    const dry = await apply('ssa-f', pod('ssa-f'), 'fieldManager=mgr1&dryRun=All');
    expect(dry.code).toBe(201);
    expect((await api(server, 'GET', `${PODS}/ssa-f`)).code).toBe(404);
  });

  it('refuses a missing fieldManager (422), force on other patches, a wrong kind, managedFields in the body', async () => {
    const missing = await apply('ssa-g', pod('ssa-g'), '');
    expect(missing.code).toBe(422);
    expect(missing.body.message).toBe(
      'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch',
    );
    const forced = await api(server, 'PATCH', `${PODS}/ssa-a?force=true`, {
      body: {},
      contentType: 'application/merge-patch+json',
    });
    expect(forced.code).toBe(422);
    expect(forced.body.message).toContain('force: Forbidden: may not be specified for non-apply patch');
    const long = await apply('ssa-g', pod('ssa-g'), `fieldManager=${'m'.repeat(129)}`);
    expect(long.code).toBe(422);
    const wrongKind = await apply('ssa-g', { ...pod('ssa-g'), kind: 'Node' }, 'fieldManager=m');
    expect(wrongKind.body).toMatchObject({ code: 400, message: 'invalid object type: /v1, Kind=Node' });
    const withFields = pod('ssa-g') as ReturnType<typeof pod> & { metadata: Record<string, unknown> };
    withFields.metadata.managedFields = [{ manager: 'x', operation: 'Apply' }];
    expect((await apply('ssa-g', withFields, 'fieldManager=m')).body.message).toBe(
      'metadata.managedFields must be nil',
    );
    const badYaml = await apply('ssa-g', 'a: [', 'fieldManager=m');
    expect(badYaml.code).toBe(400);
    expect(badYaml.body.message).toMatch(/^error decoding YAML: /);
    const noKey = await apply(
      'ssa-g',
      { ...pod('ssa-g'), spec: { containers: [{ image: 'x' }] } },
      'fieldManager=m',
    );
    expect(noKey.code).toBe(400);
    expect(noKey.body.message).toContain('omits key field "name"');
  });

  it('a recursive YAML alias is a 400, on apply and on a YAML create, and the server goes on serving', async () => {
    // `&a {p: *a, q: *a}` parses into an object that holds itself twice: every walk over it
    // (field sets, merge, compare) would run for ever (2^depth calls).
    const cyclic = `apiVersion: v1\nkind: Pod\nmetadata: {name: ssa-cyc}\nspec: &a {p: *a, q: *a}\n`;
    const applied = await apply('ssa-cyc', cyclic, 'fieldManager=m');
    expect(applied.body).toMatchObject({ code: 400, message: expect.stringMatching(/contains itself/) });
    const created = await api(server, 'POST', PODS, {
      raw: `apiVersion: v1\nkind: Pod\nmetadata: {name: cyc, labels: &a {p: *a, q: *a}}\n`,
      contentType: 'application/yaml',
    });
    expect(created.body).toMatchObject({ code: 400, message: expect.stringMatching(/contains itself/) });
    expect((await api(server, 'GET', '/api/v1/namespaces/default/pods')).code).toBe(200);
  });

  it('metadata that is not an object is a 400, not a 500', async () => {
    for (const metadata of [null, 'x', 3]) {
      const r = await apply('ssa-meta', { ...pod('ssa-meta'), metadata }, 'fieldManager=m');
      expect(r.body).toMatchObject({ code: 400, message: 'metadata must be an object' });
    }
  });

  it('a fieldManager of many control characters gets a bounded 422, not one error per character', async () => {
    const r = await apply('ssa-ctl', pod('ssa-ctl'), `fieldManager=${'%01'.repeat(4000)}`);
    expect(r.code).toBe(422);
    expect(r.body.message).toContain('invalid character U+0001 (at position 0)');
    // Five errors at most: the too-long one and the first bad characters (upstream lists all 4,000).
    expect(r.body.details.causes).toHaveLength(5);
    expect(JSON.stringify(r.body).length).toBeLessThan(1_000_000); // 4,000 errors, each with the value, before
  });

  it('application/apply-patch+cbor is a 415 listing the served patch types', async () => {
    const res = await api(server, 'PATCH', `${PODS}/ssa-a?fieldManager=m`, {
      raw: '\xa0',
      contentType: 'application/apply-patch+cbor',
    });
    expect(res.code).toBe(415);
    expect(res.body.reason).toBe('UnsupportedMediaType');
    expect(res.body.message).toContain('application/apply-patch+yaml');
  });

  it("a pod's immutable spec is still the pod's 422", async () => {
    await apply('ssa-h', pod('ssa-h'), 'fieldManager=mgr1');
    const changed = pod('ssa-h');
    changed.spec.containers.push({ name: 'second', image: 'busybox' });
    const res = await apply('ssa-h', changed, 'fieldManager=mgr1');
    expect(res.code).toBe(422);
    expect(res.body.reason).toBe('Invalid');
    expect(res.body.message).toMatch(
      /^Pod "ssa-h" is invalid: spec: Forbidden: pod updates may not change fields/,
    );
  });

  it('a namespace is applied too (cluster-scoped create-on-apply)', async () => {
    const ns = { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'ssa-ns', labels: { a: 'b' } } };
    const res = await api(server, 'PATCH', '/api/v1/namespaces/ssa-ns?fieldManager=m', {
      raw: JSON.stringify(ns),
      contentType: APPLY,
    });
    expect(res.code).toBe(201);
    expect(res.body.status).toEqual({ phase: 'Active' });
    expect(entry(res.body, 'm').fieldsV1).toEqual({ 'f:metadata': { 'f:labels': { 'f:a': {} } } });
  });
});
