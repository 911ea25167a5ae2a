/**
 * A watch the storage can no longer continue (etcd cancelled it: its revision was compacted while
 * the stream was down) ends with an ERROR event carrying a Status, 410 Expired for a compacted
 * revision so the client re-lists, and nothing after it (upstream's watch server stops there).
 */
import { MemoryStore } from './storage/memory-store.js';
import { StorageError, type StoreEvent, type StoreWatch, type StoreWatchOptions } from './storage/store.js';
import type { ApiServer } from './server.js';
import { api, pod, testServer, watch } from './test-support/harness.js';

/** The memory store, with a handle on each watch's error path (as etcd's cancellation uses it). */
class CancellableStore extends MemoryStore {
  readonly cancels: ((err: StorageError) => void)[] = [];
  override watch(
    prefix: string,
    opts: StoreWatchOptions,
    onEvent: (ev: StoreEvent) => void,
    onError?: (err: StorageError) => void,
  ): Promise<StoreWatch> {
    if (onError) this.cancels.push(onError);
    return super.watch(prefix, opts, onEvent);
  }
}

const PODS = '/api/v1/namespaces/default/pods';
let server: ApiServer;
let store: CancellableStore;
beforeEach(async () => {
  store = new CancellableStore();
  server = await testServer({ store });
});
afterEach(() => server.close());

describe('a watch the storage cancels', () => {
  it.each([
    [
      'a compacted revision: 410 Expired',
      new StorageError('ResourceVersionTooOld', '/registry/pods/default', 'too old'),
      { code: 410, reason: 'Expired', message: 'too old' },
    ],
    [
      'anything else: 500 InternalError',
      new StorageError('Internal', '/registry/pods/default', 'watch cancelled by etcd: boom'),
      { code: 500, reason: 'InternalError', message: 'watch cancelled by etcd: boom' },
    ],
  ])('ends with an ERROR event, %s', async (_name, err, status) => {
    await api(server, 'POST', PODS, { body: pod('a') });
    const w = await watch(server, `${PODS}?watch=1`);
    expect(w.code).toBe(200);
    expect(await w.next()).toMatchObject({ type: 'ADDED', object: { metadata: { name: 'a' } } });
    expect(store.cancels).toHaveLength(1);
    store.cancels[0]!(err);
    expect(await w.next()).toEqual({
      type: 'ERROR',
      object: expect.objectContaining({ kind: 'Status', status: 'Failure', ...status }),
    });
    await w.ended;
    // Nothing follows the ERROR: a later change is not written to the ended watch.
    await api(server, 'POST', PODS, { body: pod('b') });
    await expect(w.next()).rejects.toThrow(/watch ended/);
  });
});
