/**
 * The behaviour every Store backend shares (storage/store.ts), run against each of them:
 * storage/memory-store.test.ts and storage/etcd-store.test.ts. One place for the behaviour; what
 * only one backend does (its history limit, its keys in etcd) stays in its own test file.
 *
 * Written for backends that deliver watch events later than the write resolves (etcd): waits for
 * them, bounded, instead of expecting them at once. resourceVersions are compared relative to the
 * store's revision when the test starts, since an etcd may have been written to before.
 */
import type { KubeObject } from '../../shared/api/core-v1.js';
import { waitFor } from '../../shared/test-support/poll.js';
import { StorageError, type Store, type StoreEvent } from '../storage/store.js';

export interface ConformanceBackend {
  /**
   * A store in which the suite's keys are absent and nothing else writes while a test runs.
   * `historySize`: changes kept for watches (memory store); `maxWatchers`: concurrent watches.
   */
  fresh(opts?: { historySize?: number; maxWatchers?: number }): Promise<Store>;
  /**
   * Makes every revision before `revision` unavailable to watches, as compaction does (etcd); a
   * backend whose `fresh({historySize})` already drops them does nothing.
   */
  compact(store: Store, revision: number): Promise<void>;
}

const obj = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name },
  ...extra,
});

export function describeStoreConformance(name: string, backend: ConformanceBackend): void {
  describe(`${name}: Store conformance`, () => {
    const open: Store[] = [];
    const fresh = async (opts?: { historySize?: number; maxWatchers?: number }) => {
      const s = await backend.fresh(opts);
      open.push(s);
      return { s, base: Number(s.currentResourceVersion()) };
    };
    afterEach(async () => {
      await Promise.all(open.splice(0).map((s) => s.close()));
    });

    it('hands out one increasing resourceVersion across keys, and clones in and out', async () => {
      const { s } = await fresh();
      const input = obj('a', { spec: { x: 1 } });
      const a = await s.create('/registry/pods/ns/a', input);
      const b = await s.create('/registry/minions/b', obj('b'));
      expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
      input.spec = { x: 2 };
      a.spec = { x: 3 };
      expect((await s.get('/registry/pods/ns/a'))?.spec).toEqual({ x: 1 });
      expect((await s.get('/registry/pods/ns/a'))?.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
      expect(s.currentResourceVersion()).toBe(b.metadata.resourceVersion);
      await expect(s.create('/registry/minions/b', obj('b'))).rejects.toMatchObject({ code: 'KeyExists' });
      expect(await s.get('/registry/minions/none')).toBeUndefined();
    });

    it('lists by prefix in key order with the current resourceVersion', async () => {
      const { s, base } = await fresh();
      await s.create('/registry/pods/ns2/b', obj('b'));
      await s.create('/registry/pods/ns1/a', obj('a'));
      await s.create('/registry/pods/ns1x/c', obj('c'));
      const ns1 = await s.list('/registry/pods/ns1/');
      expect(ns1.items.map((o) => o.metadata.name)).toEqual(['a']);
      expect(ns1.items[0]!.metadata.resourceVersion).toBe(String(base + 2));
      const all = await s.list('/registry/pods/');
      expect(all.items.map((o) => o.metadata.name)).toEqual(['a', 'c', 'b']);
      expect(all.resourceVersion).toBe(String(base + 3));
      expect((await s.list('/registry/nodes/')).items).toEqual([]);
    });

    it('guaranteedUpdate bumps the version, skips no-op writes, retries a raced write and checks preconditions', async () => {
      const { s, base } = await fresh();
      const created = await s.create('k', obj('a', { n: 0 }));
      const same = await s.guaranteedUpdate('k', (cur) => cur);
      expect(same.metadata.resourceVersion).toBe(created.metadata.resourceVersion);
      expect(s.currentResourceVersion()).toBe(String(base + 1));

      let calls = 0;
      const updated = await s.guaranteedUpdate('k', async (cur) => {
        calls++;
        // The first attempt races with another writer; the second must see its result.
        if (calls === 1) await s.guaranteedUpdate('k', (c) => ({ ...c, n: 10 }));
        return { ...cur, n: (cur.n as number) + 1 };
      });
      expect(calls).toBe(2);
      expect(updated.n).toBe(11);
      expect(Number(updated.metadata.resourceVersion)).toBe(base + 3);
      expect((await s.get('k'))?.n).toBe(11);

      await expect(
        s.guaranteedUpdate('k', (c) => c, { resourceVersion: String(base + 1) }),
      ).rejects.toMatchObject({ code: 'Conflict' });
      await expect(s.guaranteedUpdate('k', (c) => c, { uid: 'other' })).rejects.toMatchObject({
        code: 'Conflict',
      });
      await expect(s.guaranteedUpdate('missing', (c) => c)).rejects.toBeInstanceOf(StorageError);
      await expect(
        s.guaranteedUpdate('k', () => {
          throw new Error('refused');
        }),
      ).rejects.toThrow('refused');
      expect((await s.get('k'))?.metadata.resourceVersion).toBe(String(base + 3));
    });

    it('delete returns the last state and refuses failed preconditions', async () => {
      const { s } = await fresh();
      const a = await s.create('k', obj('a'));
      await expect(s.delete('k', { uid: 'other' })).rejects.toMatchObject({ code: 'Conflict' });
      const gone = await s.delete('k', { resourceVersion: a.metadata.resourceVersion });
      expect(gone.metadata.name).toBe('a');
      expect(gone.metadata.resourceVersion).toBe(a.metadata.resourceVersion);
      expect(await s.get('k')).toBeUndefined();
      await expect(s.delete('k')).rejects.toMatchObject({ code: 'KeyNotFound' });
    });

    it('watch: current state first when no version is given, then changes in order', async () => {
      const { s, base } = await fresh();
      await s.create('/p/a', obj('a'));
      await s.create('/q/x', obj('x'));
      const seen: StoreEvent[] = [];
      const w = await s.watch('/p/', {}, (ev) => seen.push(ev));
      await s.guaranteedUpdate('/p/a', (c) => ({ ...c, n: 1 }));
      await s.create('/q/y', obj('y'));
      await s.delete('/p/a');
      await waitFor('watch events', () => seen.length >= 3);
      w.stop();
      // Another watch sees /p/b: by then the stopped one would have had it too.
      const later: string[] = [];
      const w2 = await s.watch('/p/', { resourceVersion: s.currentResourceVersion() }, (ev) =>
        later.push(ev.object.metadata.name!),
      );
      await s.create('/p/b', obj('b'));
      await waitFor('watch events', () => later.length > 0);
      w2.stop();
      expect(later).toEqual(['b']);
      expect(
        seen.map(
          (e) => `${e.type} ${e.object.metadata.name} ${Number(e.object.metadata.resourceVersion) - base}`,
        ),
      ).toEqual(['ADDED a 1', 'MODIFIED a 3', 'DELETED a 5']);
      expect(seen[1]!.prevObject?.metadata.resourceVersion).toBe(String(base + 1));
      expect(seen[2]!.prevObject?.metadata.resourceVersion).toBe(String(base + 3));
      expect(seen[2]!.object.n).toBe(1);
    });

    it('watch from a resourceVersion replays what followed it; older than the history is too old', async () => {
      const { s, base } = await fresh({ historySize: 3 });
      for (let i = 0; i < 5; i++) await s.create(`/p/${i}`, obj(`o${i}`));
      // Revisions base+1 … base+5; those before base+3 are gone.
      await backend.compact(s, base + 3);
      const seen: string[] = [];
      const w = await s.watch('/p/', { resourceVersion: String(base + 3) }, (ev) =>
        seen.push(ev.object.metadata.name!),
      );
      await waitFor('watch events', () => seen.length >= 2);
      expect(seen).toEqual(['o3', 'o4']);
      w.stop();
      const fromOldest: string[] = [];
      const w2 = await s.watch('/p/', { resourceVersion: String(base + 2) }, (ev) =>
        fromOldest.push(ev.object.metadata.name!),
      );
      await waitFor('watch events', () => fromOldest.length >= 3);
      expect(fromOldest).toEqual(['o2', 'o3', 'o4']);
      w2.stop();
      await expect(s.watch('/p/', { resourceVersion: String(base + 1) }, () => {})).rejects.toMatchObject({
        code: 'ResourceVersionTooOld',
        message: expect.stringMatching(/too old/),
      });
    });

    it('a watch from the current resourceVersion sees only what follows, and survives a throwing watcher', async () => {
      const { s } = await fresh();
      await s.create('/p/a', obj('a'));
      const seen: string[] = [];
      await s.watch('/p/', { resourceVersion: s.currentResourceVersion() }, () => {
        throw new Error('bad watcher');
      });
      await s.watch('/p/', { resourceVersion: s.currentResourceVersion() }, (ev) =>
        seen.push(`${ev.type} ${ev.object.metadata.name}`),
      );
      await s.create('/p/b', obj('b'));
      await s.guaranteedUpdate('/p/b', (c) => ({ ...c, n: 1 }));
      await waitFor('watch events', () => seen.length >= 2);
      expect(seen).toEqual(['ADDED b', 'MODIFIED b']);
    });

    it('refuses watches beyond its limit', async () => {
      const { s } = await fresh({ maxWatchers: 2 });
      await s.watch('/', {}, () => {});
      const second = await s.watch('/', {}, () => {});
      await expect(s.watch('/', {}, () => {})).rejects.toBeInstanceOf(StorageError);
      second.stop();
      (await s.watch('/', {}, () => {})).stop();
    });
  });
}
