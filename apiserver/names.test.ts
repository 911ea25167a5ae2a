/**
 * Names as upstream validates them (issue #11 "Names and objects"): a namespace is a DNS-1123
 * label, a pod a DNS-1123 subdomain, a container a label; and a list in one namespace never sees
 * another namespace's objects, in the memory store and in etcd alike.
 */
import type { PolicyRule } from './authz-policy.js';
import { MemoryStore } from './storage/memory-store.js';
import type { Store } from './storage/store.js';
import { api, pod, testServer, tokenFor } from './test-support/harness.js';
import { startTestEtcd, type TestEtcd } from '../lab/test-support/etcd.js';
import { EtcdStore } from './storage/etcd-store.js';

const LABEL_DETAIL =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start " +
  "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

/** alice may do anything with pods in `default`, nothing elsewhere. */
const rules: PolicyRule[] = [
  {
    subjects: [{ kind: 'User', name: 'alice' }],
    verbs: ['*'],
    resources: ['pods'],
    namespaces: ['default'],
    apiGroups: [''],
    nonResourceURLs: [],
  },
];
const alice = tokenFor('alice');

describe('object names', () => {
  it('refuses a namespace that is not a DNS-1123 label with upstream’s 422, in the URL or the body', async () => {
    const server = await testServer();
    try {
      const viaUrl = await api(server, 'POST', '/api/v1/namespaces/default%2Fsecret-team/pods', {
        body: pod('db'),
      });
      expect(viaUrl.code).toBe(422);
      expect(viaUrl.body.message).toBe(
        `Pod "db" is invalid: metadata.namespace: Invalid value: "default/secret-team": ${LABEL_DETAIL}`,
      );
      expect(viaUrl.body.details.causes).toEqual([
        {
          reason: 'FieldValueInvalid',
          field: 'metadata.namespace',
          message: `Invalid value: "default/secret-team": ${LABEL_DETAIL}`,
        },
      ]);
      const upper = await api(server, 'POST', '/api/v1/namespaces/Team/pods', { body: pod('db') });
      expect(upper.code).toBe(422);
      expect(upper.body.message).toContain('metadata.namespace: Invalid value: "Team"');
      // Reading a path that is not one segment is a BadRequest, as upstream's key functions answer.
      const get = await api(server, 'GET', '/api/v1/namespaces/default/pods/a%2Fb');
      expect({ code: get.code, message: get.body.message }).toEqual({
        code: 400,
        message: `Name parameter invalid: "a/b": may not contain '/'`,
      });
      const list = await api(server, 'GET', '/api/v1/namespaces/default%2Fsecret-team/pods');
      expect(list.code).toBe(400);
    } finally {
      await server.close();
    }
  });

  it('refuses bad pod, container, hostname, node and image values with upstream’s details', async () => {
    const server = await testServer();
    try {
      const create = (body: unknown) => api(server, 'POST', '/api/v1/namespaces/default/pods', { body });
      const base = pod('web');
      const bad = await create({
        ...base,
        spec: {
          hostname: 'Web.1',
          subdomain: 'a.b',
          nodeName: 'node/../x',
          containers: [{ name: 'Main', image: ' busybox' }],
        },
      });
      expect(bad.code).toBe(422);
      const causes = (bad.body.details.causes as { field: string; message: string }[]).map(
        (c) => `${c.field}: ${c.message}`,
      );
      expect(causes).toEqual([
        `spec.hostname: Invalid value: "Web.1": ${LABEL_DETAIL}`,
        'spec.subdomain: Invalid value: "a.b": must not contain dots',
        expect.stringMatching(
          /^spec\.nodeName: Invalid value: "node\/\.\.\/x": a lowercase RFC 1123 subdomain/,
        ),
        `spec.containers[0].name: Invalid value: "Main": ${LABEL_DETAIL}`,
        'spec.containers[0].image: Invalid value: " busybox": must not have leading or trailing whitespace',
      ]);
      const long = await create(pod('x'.repeat(254)));
      expect(long.body.details.causes[0].message).toBe(
        `Invalid value: "${'x'.repeat(254)}": must be no more than 253 characters`,
      );
      expect((await create(pod('web-1.example'))).code).toBe(201);
    } finally {
      await server.close();
    }
  });
});

describe('a list in one namespace', () => {
  let etcd: TestEtcd | undefined;
  afterAll(async () => etcd?.stop());

  const stores: [string, () => Promise<Store>][] = [
    ['memory', async () => new MemoryStore()],
    [
      'etcd',
      async () => {
        etcd ??= await startTestEtcd();
        return EtcdStore.connect({ servers: [etcd.endpoint], prefix: `/names-${Date.now()}` });
      },
    ],
  ];

  it.each(stores)('never shows another namespace’s pod (%s store)', async (_, makeStore) => {
    const store = await makeStore();
    const server = await testServer({ store, authorizationPolicy: rules });
    try {
      // Written past the API (as data from an older apiserver would be): a key under default/'s prefix.
      await store.create('/registry/pods/default/secret-team/db', {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'db', namespace: 'default/secret-team' },
        spec: {
          containers: [{ name: 'db', image: 'busybox', env: [{ name: 'PASSWORD', value: 'hunter2' }] }],
        },
      });
      expect(
        (await api(server, 'POST', '/api/v1/namespaces/default/pods', { body: pod('mine'), token: alice }))
          .code,
      ).toBe(201);
      const list = await api(server, 'GET', '/api/v1/namespaces/default/pods', { token: alice });
      expect(list.code).toBe(200);
      expect(list.body.items.map((p: { metadata: { name: string } }) => p.metadata.name)).toEqual(['mine']);
      expect(list.text).not.toContain('hunter2');
      const denied = await api(server, 'GET', '/api/v1/namespaces/other/pods', { token: alice });
      expect(denied.code).toBe(403);
    } finally {
      await server.close();
    }
  });
});
