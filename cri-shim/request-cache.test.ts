import { GrpcStatus } from '../shared/cri/client.js';
import { CriError } from './errors.js';
import { MAX_IN_FLIGHT, RequestCache, TOKEN_TTL_MS, type StreamingRequest } from './request-cache.js';

const req: StreamingRequest = {
  kind: 'exec',
  containerId: 'c',
  cmd: ['ls'],
  stdin: false,
  stdout: true,
  stderr: true,
  tty: false,
};

test('tokens are URL-safe, random and single use', () => {
  const cache = new RequestCache();
  const a = cache.insert(req);
  const b = cache.insert(req);
  expect(a).toMatch(/^[A-Za-z0-9_-]{16,}$/);
  expect(a).not.toBe(b);
  expect(cache.consume(a)).toBe(req);
  expect(cache.consume(a)).toBeUndefined();
  expect(cache.consume('unknown')).toBeUndefined();
});

test('tokens expire after one minute', () => {
  let now = 1_000_000;
  const cache = new RequestCache(TOKEN_TTL_MS, MAX_IN_FLIGHT, () => now);
  const early = cache.insert(req);
  now += TOKEN_TTL_MS - 1;
  const late = cache.insert(req);
  expect(cache.consume(early)).toBe(req);
  now += 2;
  expect(cache.consume(late)).toBe(req); // inserted later, still valid
  const t = cache.insert(req);
  now += TOKEN_TTL_MS;
  expect(cache.consume(t)).toBeUndefined();
});

test('at most 1000 outstanding: the 1001st is RESOURCE_EXHAUSTED until one is used or expires', () => {
  let now = 0;
  const cache = new RequestCache(TOKEN_TTL_MS, MAX_IN_FLIGHT, () => now);
  const tokens = Array.from({ length: 1000 }, () => cache.insert(req));
  expect(cache.size).toBe(1000);
  let err: unknown;
  try {
    cache.insert(req);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(CriError);
  expect((err as CriError).code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
  cache.consume(tokens[0]!);
  expect(() => cache.insert(req)).not.toThrow();
  now += TOKEN_TTL_MS;
  expect(cache.size).toBe(0);
});
