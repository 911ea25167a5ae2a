import {
  apiserverOnly,
  requestAttributes,
  webhookAuthorizer,
  type SubjectAccessReviewSpec,
} from './kubelet-authorizer.js';

const apiserver = { name: 'kube-apiserver-kubelet-client', groups: [] };

test('request attributes: the method is the verb; /metrics is nodes/metrics, the rest nodes/proxy', () => {
  expect(requestAttributes(apiserver, 'POST', '/exec/default/demo/demo')).toEqual({
    user: apiserver,
    verb: 'create',
    subresource: 'proxy',
  });
  expect(requestAttributes(apiserver, 'GET', '/containerLogs/default/demo/demo').verb).toBe('get');
  expect(requestAttributes(apiserver, 'PUT', '/debug/flags/fault').verb).toBe('update');
  expect(requestAttributes(apiserver, 'GET', '/metrics').subresource).toBe('metrics');
  expect(requestAttributes(apiserver, 'GET', '/metricsx').subresource).toBe('proxy');
});

test('webhook: one SubjectAccessReview per request, its answer obeyed in upstream words', async () => {
  const asked: SubjectAccessReviewSpec[] = [];
  const lines: string[] = [];
  let answer: { allowed?: boolean; reason?: string } | Error = { allowed: true };
  const authorize = webhookAuthorizer(
    'node-7',
    async (spec) => {
      asked.push(spec);
      if (answer instanceof Error) throw answer;
      return answer;
    },
    (l) => lines.push(l),
    { authorizedTtlMs: 0, unauthorizedTtlMs: 0 },
  );
  const exec = requestAttributes({ name: 'u', groups: ['g'], uid: '42' }, 'POST', '/exec/ns/p/c');
  expect(await authorize(exec)).toBeUndefined();
  expect(asked).toEqual([
    {
      user: 'u',
      groups: ['g'],
      uid: '42',
      resourceAttributes: {
        verb: 'create',
        group: '',
        version: 'v1',
        resource: 'nodes',
        subresource: 'proxy',
        name: 'node-7',
      },
    },
  ]);

  answer = { allowed: false, reason: 'no binding' };
  expect(await authorize(exec)).toMatchObject({
    code: 403,
    reason: 'Forbidden',
    message: 'Forbidden (user=u, verb=create, resource=nodes, subresource(s)=[proxy])',
  });
  expect(lines.at(-1)).toBe(
    'Forbidden (user=u, verb=create, resource=nodes, subresource(s)=[proxy]). Reason: "no binding".',
  );
  // An answer without allowed: true is a denial.
  answer = {};
  expect((await authorize(exec))?.code).toBe(403);

  answer = new Error('connect ECONNREFUSED');
  expect(await authorize(exec)).toMatchObject({
    code: 500,
    message: 'Authorization error (user=u, verb=create, resource=nodes, subresource=proxy)',
  });
  expect(lines.at(-1)).toMatch(/ECONNREFUSED$/);
  expect(asked).toHaveLength(4);
});

test('webhook cache: answers kept for their TTL, allowed and denied apart, per user and verb', async () => {
  const asked: string[] = [];
  let allowed = true;
  const authorize = webhookAuthorizer(
    'node-1',
    async (spec) => {
      asked.push(`${spec.user} ${spec.resourceAttributes.verb}`);
      return { allowed };
    },
    () => {},
    { authorizedTtlMs: 60_000, unauthorizedTtlMs: 100, maxEntries: 2 },
  );
  const as = (name: string, method = 'POST') =>
    requestAttributes({ name, groups: [] }, method, '/exec/a/b/c');
  expect(await authorize(as('a'))).toBeUndefined();
  allowed = false;
  // Cached: still allowed, not asked again; another verb or user is asked.
  expect(await authorize(as('a'))).toBeUndefined();
  expect((await authorize(as('a', 'GET')))?.code).toBe(403);
  expect((await authorize(as('b')))?.code).toBe(403);
  expect(asked).toEqual(['a create', 'a get', 'b create']);
  // A denial is kept for its own, shorter TTL; then asked again.
  allowed = true;
  expect((await authorize(as('b')))?.code).toBe(403);
  await new Promise((res) => setTimeout(res, 150));
  expect(await authorize(as('b'))).toBeUndefined();
  // At most maxEntries answers: the oldest ('a create') went first.
  expect(await authorize(as('a'))).toBeUndefined();
  expect(asked).toEqual(['a create', 'a get', 'b create', 'b create', 'a create']);
});

test('default mode: the apiserver identities only', async () => {
  expect(await apiserverOnly(requestAttributes(apiserver, 'POST', '/exec/a/b/c'))).toBeUndefined();
  expect(
    await apiserverOnly(requestAttributes({ name: 'system:apiserver', groups: [] }, 'GET', '/x')),
  ).toBeUndefined();
  expect(
    (await apiserverOnly(requestAttributes({ name: 'alice', groups: [] }, 'GET', '/metrics')))?.message,
  ).toBe('Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[metrics])');
});
