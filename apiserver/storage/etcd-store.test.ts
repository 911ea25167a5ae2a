/**
 * The etcd backend against a real etcd on loopback (started here; `etcd` from the Debian package
 * etcd-server): the shared Store conformance suite, then what only etcd has — keys and JSON in
 * etcd, state and watches that outlive the store, optimistic concurrency across two apiservers,
 * a watch that survives etcd itself restarting.
 */
import { Etcd3 } from 'etcd3';
import type { KubeObject } from '../../shared/api/core-v1.js';
import { startTestEtcd, type TestEtcd } from '../../lab/test-support/etcd.js';
import { waitFor } from '../../shared/test-support/poll.js';
import { describeStoreConformance } from '../test-support/store-conformance.js';
import { EtcdStore } from './etcd-store.js';
import type { StoreEvent } from './store.js';

let etcd: TestEtcd;
let raw: Etcd3;
let n = 0;
/** Each store its own prefix, so tests never see each other's keys. */
const connect = (opts: { prefix?: string; maxWatchers?: number } = {}) =>
  EtcdStore.connect({ servers: [etcd.endpoint], prefix: opts.prefix ?? `/t${++n}`, ...opts, log: () => {} });

beforeAll(async () => {
  etcd = await startTestEtcd();
  raw = new Etcd3({ hosts: etcd.endpoint });
}, 30_000);
afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

describeStoreConformance('EtcdStore', {
  fresh: (opts) => connect({ maxWatchers: opts?.maxWatchers }),
  compact: async (_store, revision) => {
    await raw.kv.compact({ revision, physical: true });
  },
});

const obj = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name },
  ...extra,
});

describe('EtcdStore', () => {
  it('stores JSON under the prefix in place of /registry, with the mod_revision as resourceVersion', async () => {
    const s = await connect({ prefix: '/kexec' });
    const created = await s.create('/registry/pods/default/demo', obj('demo', { spec: { x: 1 } }));
    const kv = (await raw.kv.range({ key: Buffer.from('/kexec/pods/default/demo') })).kvs[0]!;
    expect(JSON.parse(kv.value.toString())).toEqual({ metadata: { name: 'demo' }, spec: { x: 1 } });
    expect(created.metadata.resourceVersion).toBe(kv.mod_revision);
    // Written by someone else (another apiserver): seen with etcd's revision.
    await raw
      .put('/kexec/minions/node-9')
      .value(JSON.stringify(obj('node-9')))
      .exec();
    const node = await s.get('/registry/minions/node-9');
    expect(node?.metadata.resourceVersion).toBe(s.currentResourceVersion());
    await s.close();
  });

  it('keeps objects across stores, and a new store resumes a watch from an older resourceVersion', async () => {
    const prefix = `/restart${++n}`;
    const first = await connect({ prefix });
    const a = await first.create('/registry/pods/ns/a', obj('a'));
    const { resourceVersion } = await first.list('/registry/pods/');
    await first.guaranteedUpdate('/registry/pods/ns/a', (c) => ({ ...c, n: 1 }));
    await first.create('/registry/pods/ns/b', obj('b'));
    await first.close();

    const second = await connect({ prefix });
    expect(Number(second.currentResourceVersion())).toBeGreaterThanOrEqual(Number(resourceVersion) + 2);
    expect((await second.get('/registry/pods/ns/a'))?.n).toBe(1);
    expect((await second.get('/registry/pods/ns/a'))?.metadata.uid).toBe(a.metadata.uid);
    const seen: string[] = [];
    const w = await second.watch('/registry/pods/', { resourceVersion }, (ev) =>
      seen.push(`${ev.type} ${ev.object.metadata.name}`),
    );
    await waitFor('watch events', () => seen.length >= 2);
    w.stop();
    expect(seen).toEqual(['MODIFIED a', 'ADDED b']);
    await second.close();
  });

  it('two stores (two apiservers) updating one object lose no update', async () => {
    const prefix = `/race${++n}`;
    const [s1, s2] = await Promise.all([connect({ prefix }), connect({ prefix })]);
    await s1.create('/registry/counters/c', obj('c', { n: 0 }));
    const bump = async (s: EtcdStore) => {
      for (let i = 0; i < 10; i++) {
        await s.guaranteedUpdate('/registry/counters/c', (c) => ({ ...c, n: (c.n as number) + 1 }));
      }
    };
    // Eight writers on one key: each loses races often, and must retry until it wins.
    await Promise.all([s1, s2, s1, s2, s1, s2, s1, s2].map(bump));
    const final = await s2.get('/registry/counters/c');
    expect(final?.n).toBe(80);
    await Promise.all([s1.close(), s2.close()]);
  });

  it('a watch carries on, nothing lost or repeated, when etcd is killed and started again', async () => {
    const s = await connect();
    const seen: StoreEvent[] = [];
    const w = await s.watch('/registry/pods/', {}, (ev) => seen.push(ev));
    await s.create('/registry/pods/ns/a', obj('a'));
    await waitFor('watch events', () => seen.length === 1);
    await etcd.restart('SIGKILL');
    // Writes after the restart, through another client: the old stream is gone.
    const other = await connect({ prefix: `/t${n}` });
    await other.create('/registry/pods/ns/b', obj('b'));
    await other.guaranteedUpdate('/registry/pods/ns/a', (c) => ({ ...c, n: 1 }));
    // A last write marks the end: events come in revision order, so a repeat would show before it.
    await other.create('/registry/pods/ns/z', obj('z'));
    await waitFor('watch events', () => seen.some((e) => e.object.metadata.name === 'z'), 20_000);
    w.stop();
    expect(seen.map((e) => `${e.type} ${e.object.metadata.name}`)).toEqual([
      'ADDED a',
      'ADDED b',
      'MODIFIED a',
      'ADDED z',
    ]);
    // The first store's own calls work again too.
    expect((await s.get('/registry/pods/ns/b'))?.metadata.name).toBe('b');
    await Promise.all([s.close(), other.close()]);
  }, 40_000);

  it('connect gives up, bounded, when no etcd answers', async () => {
    const t0 = Date.now();
    await expect(
      EtcdStore.connect({ servers: ['http://127.0.0.1:1'], connectTimeoutMs: 1500, log: () => {} }),
    ).rejects.toThrow(/cannot reach etcd at http:\/\/127\.0\.0\.1:1/);
    expect(Date.now() - t0).toBeLessThan(8000);
  });
});
