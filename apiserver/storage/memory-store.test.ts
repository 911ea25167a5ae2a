import { MemoryStore } from './memory-store.js';
import type { StoreEvent } from './store.js';
import type { KubeObject } from '../../shared/api/core-v1.js';
import { describeStoreConformance } from '../test-support/store-conformance.js';

const obj = (name: string): KubeObject => ({ metadata: { name } });

describeStoreConformance('MemoryStore', {
  fresh: async (opts) => new MemoryStore(opts),
  // fresh({historySize}) keeps only that many changes: nothing more to drop.
  compact: async () => {},
});

describe('MemoryStore', () => {
  it('counts resourceVersions from 1 and delivers watch events before the write resolves', async () => {
    const s = new MemoryStore();
    expect(s.currentResourceVersion()).toBe('0');
    const seen: StoreEvent[] = [];
    await s.watch('/p/', {}, (ev) => seen.push(ev));
    const a = s.create('/p/a', obj('a'));
    expect(seen.map((e) => e.type)).toEqual(['ADDED']);
    expect((await a).metadata.resourceVersion).toBe('1');
  });

  it('names the oldest resourceVersion it still has when one is too old', async () => {
    const s = new MemoryStore({ historySize: 3 });
    for (let i = 0; i < 5; i++) await s.create(`/p/${i}`, obj(`o${i}`));
    await expect(s.watch('/p/', { resourceVersion: '1' }, () => {})).rejects.toMatchObject({
      code: 'ResourceVersionTooOld',
      message: 'too old resource version: 1 (3)',
    });
  });
});
