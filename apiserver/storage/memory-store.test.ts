import { MemoryStore } from './memory-store.js';
import { StorageError, type StoreEvent } from './store.js';
import type { KubeObject } from '../api/types.js';

const obj = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  metadata: { name },
  ...extra,
});

describe('MemoryStore', () => {
  it('hands out one increasing resourceVersion across keys, and clones in and out', async () => {
    const s = new MemoryStore();
    const input = obj('a', { spec: { x: 1 } });
    const a = await s.create('/registry/pods/ns/a', input);
    const b = await s.create('/registry/minions/b', obj('b'));
    expect(Number(b.metadata.resourceVersion)).toBeGreaterThan(Number(a.metadata.resourceVersion));
    input.spec = { x: 2 };
    a.spec = { x: 3 };
    expect((await s.get('/registry/pods/ns/a'))?.spec).toEqual({ x: 1 });
    expect(s.currentResourceVersion()).toBe(b.metadata.resourceVersion);
    await expect(s.create('/registry/minions/b', obj('b'))).rejects.toMatchObject({ code: 'KeyExists' });
  });

  it('lists by prefix in key order with the current resourceVersion', async () => {
    const s = new MemoryStore();
    await s.create('/registry/pods/ns2/b', obj('b'));
    await s.create('/registry/pods/ns1/a', obj('a'));
    await s.create('/registry/pods/ns1x/c', obj('c'));
    const ns1 = await s.list('/registry/pods/ns1/');
    expect(ns1.items.map((o) => o.metadata.name)).toEqual(['a']);
    const all = await s.list('/registry/pods/');
    expect(all.items.map((o) => o.metadata.name)).toEqual(['a', 'c', 'b']);
    expect(all.resourceVersion).toBe('3');
  });

  it('guaranteedUpdate bumps the version, skips no-op writes, retries a raced write and checks preconditions', async () => {
    const s = new MemoryStore();
    const created = await s.create('k', obj('a', { n: 0 }));
    const same = await s.guaranteedUpdate('k', (cur) => cur);
    expect(same.metadata.resourceVersion).toBe(created.metadata.resourceVersion);

    let calls = 0;
    const updated = await s.guaranteedUpdate('k', async (cur) => {
      calls++;
      // The first attempt races with another writer; the second must see its result.
      if (calls === 1) await s.guaranteedUpdate('k', (c) => ({ ...c, n: 10 }));
      return { ...cur, n: (cur.n as number) + 1 };
    });
    expect(calls).toBe(2);
    expect(updated.n).toBe(11);
    expect(Number(updated.metadata.resourceVersion)).toBe(3);

    await expect(s.guaranteedUpdate('k', (c) => c, { resourceVersion: '1' })).rejects.toMatchObject({
      code: 'Conflict',
    });
    await expect(s.guaranteedUpdate('missing', (c) => c)).rejects.toBeInstanceOf(StorageError);
  });

  it('delete returns the last state and refuses failed preconditions', async () => {
    const s = new MemoryStore();
    const a = await s.create('k', obj('a'));
    await expect(s.delete('k', { uid: 'other' })).rejects.toMatchObject({ code: 'Conflict' });
    expect((await s.delete('k', { resourceVersion: a.metadata.resourceVersion })).metadata.name).toBe('a');
    expect(await s.get('k')).toBeUndefined();
    await expect(s.delete('k')).rejects.toMatchObject({ code: 'KeyNotFound' });
  });

  it('watch: current state first when no version is given, then changes in order', async () => {
    const s = new MemoryStore();
    await s.create('/p/a', obj('a'));
    await s.create('/q/x', obj('x'));
    const seen: StoreEvent[] = [];
    const w = await s.watch('/p/', {}, (ev) => seen.push(ev));
    await s.guaranteedUpdate('/p/a', (c) => ({ ...c, n: 1 }));
    await s.create('/q/y', obj('y'));
    await s.delete('/p/a');
    w.stop();
    await s.create('/p/b', obj('b'));
    expect(
      seen.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.metadata.resourceVersion}`),
    ).toEqual(['ADDED a 1', 'MODIFIED a 3', 'DELETED a 5']);
    expect(seen[1]!.prevObject?.metadata.resourceVersion).toBe('1');
  });

  it('watch from a resourceVersion replays what followed it; older than the history is too old', async () => {
    const s = new MemoryStore({ historySize: 3 });
    for (let i = 0; i < 5; i++) await s.create(`/p/${i}`, obj(`o${i}`));
    const seen: string[] = [];
    const w = await s.watch('/p/', { resourceVersion: '3' }, (ev) => seen.push(ev.object.metadata.name!));
    expect(seen).toEqual(['o3', 'o4']);
    w.stop();
    await expect(s.watch('/p/', { resourceVersion: '1' }, () => {})).rejects.toMatchObject({
      code: 'ResourceVersionTooOld',
      message: 'too old resource version: 1 (3)',
    });
  });

  it('refuses watches beyond its limit', async () => {
    const s = new MemoryStore({ maxWatchers: 2 });
    await s.watch('/', {}, () => {});
    await s.watch('/', {}, () => {});
    await expect(s.watch('/', {}, () => {})).rejects.toBeInstanceOf(StorageError);
  });
});
