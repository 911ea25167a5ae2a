/**
 * The etcd backend (`--etcd-servers`): objects as JSON values in a real etcd v3, etcd's
 * mod_revision as their resourceVersion, so that Nodes and Pods outlive an apiserver restart and
 * a watch resumes from a resourceVersion handed out before it.
 *
 * Mirrors k8s.io/apiserver `pkg/storage/etcd3/store.go` and `watcher.go`:
 * - Create is a txn `mod_revision(key) == 0` → put (KeyExists otherwise);
 * - GuaranteedUpdate reads, calls tryUpdate and writes in a txn `mod_revision(key) == read's`,
 *   retrying from a fresh read when another write won; a no-op update is not written;
 * - Delete is a txn `mod_revision(key) == read's` → delete, after the preconditions are checked;
 * - List is one range read: every item and the list's resourceVersion come from one revision;
 * - Watch is an etcd watch from revision+1 with `prev_kv` (MODIFIED and DELETED carry the previous
 *   state; DELETED carries it at the delete's revision); unset or "0" first sends the current
 *   state as ADDED events read at revision R, then watches from R+1. A resourceVersion etcd has
 *   compacted away is ResourceVersionTooOld (410), with upstream's etcd3 message.
 *
 * Keys: every Store key is rooted at `/registry` (store.ts); that root is replaced by `prefix`
 * (`--etcd-prefix`, default `/registry`), so etcd holds `/registry/pods/default/demo` as upstream
 * does. Keys outside the root (tests) are put under the prefix as they are.
 *
 * Client: the npm `etcd3` package (microsoft/etcd3, on @grpc/grpc-js), used at its low level (the
 * KV and Watch RPCs with etcd's own request objects) so that every response header's revision is
 * seen. Its watch manager resumes a broken watch stream by itself; the revision it resumes from
 * is set here to the last event delivered (see `resumeAfter`), so nothing is skipped or repeated.
 *
 * A watch that etcd cancels (its revision compacted while the stream was down) is ended through
 * `onError`: the client's watch gets a 410 ERROR event and re-lists, as upstream.
 */
import { Etcd3, type IKeyValue, type IResponseHeader, type IWatchResponse, type Watcher } from 'etcd3';
import type { KubeObject } from '../../shared/api/core-v1.js';
import { jsonEqual } from '../api/json-values.js';
import {
  checkPreconditions,
  StorageError,
  type Preconditions,
  type Store,
  type StoreEvent,
  type StoreWatch,
  type StoreWatchOptions,
  type TryUpdate,
} from './store.js';
import { errorMessage, stderrLogger, type Logger } from '../../shared/logging.js';

export interface EtcdStoreOptions {
  /** Client URLs, e.g. `http://127.0.0.1:2379` (`--etcd-servers`). */
  servers: string[];
  /** Replaces the `/registry` root of every key in etcd (`--etcd-prefix`). Default `/registry`. */
  prefix?: string;
  /** Deadline of each unary etcd call. Default 10 s. */
  requestTimeoutMs?: number;
  /** How long `connect` keeps trying to reach etcd. Default 10 s. */
  connectTimeoutMs?: number;
  /** Concurrent watches; more are refused (as the memory store). Default 10,000. */
  maxWatchers?: number;
  /** One line per notable event (a watch cancelled by etcd). Default: stderr. */
  log?: Logger;
  /**
   * For `https://` servers: the CA that verifies etcd (`--etcd-cafile`) and the apiserver's client
   * certificate (`--etcd-certfile`, `--etcd-keyfile`), PEM.
   */
  tls?: { ca: Buffer; cert?: Buffer; key?: Buffer };
}

/** The root every Store key has (store.ts); etcd keys replace it with the prefix. */
const KEY_ROOT = '/registry';

/**
 * An update whose compare-and-swap lost a race is retried, as upstream's GuaranteedUpdate loops
 * until it wins; here for at most this long, after a short random pause that grows with each lost
 * race (so writers contending for one key take turns instead of colliding again).
 */
const UPDATE_RETRY_MS = 10_000;
const MAX_RETRY_PAUSE_MS = 50;
const LOST_RACE = Symbol('lost race');

/** Runs a read-compare-and-swap until it does not lose the race (bounded by UPDATE_RETRY_MS). */
async function retryLostRaces<T>(key: string, attempt: () => Promise<T | typeof LOST_RACE>): Promise<T> {
  const deadline = Date.now() + UPDATE_RETRY_MS;
  for (let n = 0; n === 0 || Date.now() < deadline; n++) {
    if (n > 0) {
      const pause = Math.random() * Math.min(MAX_RETRY_PAUSE_MS, 2 * n);
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
    const result = await attempt();
    if (result !== LOST_RACE) return result;
  }
  throw new StorageError('Conflict', key, `too many concurrent updates to ${key}`);
}

/** Upstream etcd3's interpretWatchError for ErrCompacted. */
const TOO_OLD_WATCH = 'The resourceVersion for the provided watch is too old.';
/** etcd's answer to a read at (or a watch from) a revision it has compacted. */
const COMPACTED = /required revision has been compacted/;
/** etcd's answer to a read at a revision it has not reached yet. */
const FUTURE = /required revision is a future revision/;

interface EtcdWatch {
  watcher: Watcher;
  stopped: boolean;
}

export class EtcdStore implements Store {
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly maxWatchers: number;
  private readonly log: Logger;
  private readonly watches = new Set<EtcdWatch>();
  /** The newest etcd revision seen in any response header or event. */
  private revision = 0;

  private constructor(private readonly opts: EtcdStoreOptions) {
    const timeout = opts.requestTimeoutMs ?? 10_000;
    this.client = new Etcd3({
      hosts: opts.servers,
      dialTimeout: opts.connectTimeoutMs ?? 10_000,
      ...(opts.tls
        ? {
            credentials: {
              rootCertificate: opts.tls.ca,
              ...(opts.tls.cert && opts.tls.key
                ? { certChain: opts.tls.cert, privateKey: opts.tls.key }
                : {}),
            },
          }
        : {}),
      // Unary calls get a deadline; the watch stream lives as long as it is needed.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    });
    this.prefix = (opts.prefix ?? KEY_ROOT).replace(/\/+$/, '');
    this.maxWatchers = opts.maxWatchers ?? 10_000;
    this.log = opts.log ?? stderrLogger('etcd-store');
  }

  /** Connects (bounded by `connectTimeoutMs`) and learns etcd's current revision. */
  static async connect(opts: EtcdStoreOptions): Promise<EtcdStore> {
    if (opts.servers.length === 0) throw new Error('no etcd servers given');
    const store = new EtcdStore(opts);
    const deadline = Date.now() + (opts.connectTimeoutMs ?? 10_000);
    for (;;) {
      try {
        const res = await store.client.kv.range(
          { key: Buffer.from(store.prefix + '/'), count_only: true },
          { deadline: Math.max(deadline, Date.now() + 1000) },
        );
        store.seen(res.header);
        return store;
      } catch (err) {
        if (Date.now() >= deadline) {
          store.client.close();
          throw new Error(`cannot reach etcd at ${opts.servers.join(',')}: ${errorMessage(err)}`);
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  currentResourceVersion(): string {
    return String(this.revision);
  }

  async get(key: string): Promise<KubeObject | undefined> {
    const res = await this.call(key, () => this.client.kv.range({ key: this.etcdKey(key) }));
    this.seen(res.header);
    const kv = res.kvs[0];
    return kv && decode(kv);
  }

  async list(prefix: string): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const start = this.etcdKey(prefix);
    // One range read: the items and the revision belong together (etcd sorts by key).
    const res = await this.call(prefix, () =>
      this.client.kv.range({ key: start, range_end: prefixEnd(start) }),
    );
    this.seen(res.header);
    return { items: res.kvs.map(decode), resourceVersion: res.header.revision };
  }

  async create(key: string, obj: KubeObject): Promise<KubeObject> {
    const k = this.etcdKey(key);
    const value = encode(obj);
    const res = await this.call(key, () =>
      this.client.kv.txn({
        compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: 0 }],
        success: [{ request_put: { key: k, value } }],
      }),
    );
    this.seen(res.header);
    if (!res.succeeded) throw new StorageError('KeyExists', key, `key ${key} already exists`);
    return withVersion(JSON.parse(value.toString()) as KubeObject, res.header.revision);
  }

  /** The stored key-value and its object, checked against the preconditions (update, delete). */
  private async readChecked(
    key: string,
    pre?: Preconditions,
  ): Promise<{ cur: IKeyValue; current: KubeObject }> {
    const cur = await this.read(key);
    if (!cur) throw new StorageError('KeyNotFound', key, `key ${key} not found`);
    const current = decode(cur);
    checkPreconditions(key, current, pre);
    return { cur, current };
  }

  /** One compare-and-swap: `op` happens only if the key is still at `cur`'s mod_revision. */
  private async swap(
    key: string,
    cur: IKeyValue,
    op: { request_put: { key: Buffer; value: Buffer } } | { request_delete_range: { key: Buffer } },
  ) {
    const k = this.etcdKey(key);
    const res = await this.call(key, () =>
      this.client.kv.txn({
        compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: cur.mod_revision }],
        success: [op],
      }),
    );
    this.seen(res.header);
    return res;
  }

  async guaranteedUpdate(key: string, tryUpdate: TryUpdate, pre?: Preconditions): Promise<KubeObject> {
    const k = this.etcdKey(key);
    return retryLostRaces(key, async () => {
      const { cur, current } = await this.readChecked(key, pre);
      const next = await tryUpdate(decode(cur));
      // A no-op update is not written and keeps its resourceVersion, as upstream.
      const candidate = {
        ...next,
        metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion },
      };
      if (jsonEqual(candidate, current)) return current;
      const value = encode(next);
      const res = await this.swap(key, cur, { request_put: { key: k, value } });
      // Another write landed since the read: start again from the new state.
      if (!res.succeeded) return LOST_RACE;
      return withVersion(JSON.parse(value.toString()) as KubeObject, res.header.revision);
    });
  }

  async delete(key: string, pre?: Preconditions): Promise<KubeObject> {
    const k = this.etcdKey(key);
    return retryLostRaces(key, async () => {
      const { cur, current } = await this.readChecked(key, pre);
      const res = await this.swap(key, cur, { request_delete_range: { key: k } });
      return res.succeeded ? current : LOST_RACE;
    });
  }

  async watch(
    prefix: string,
    opts: StoreWatchOptions,
    onEvent: (ev: StoreEvent) => void,
    onError?: (err: StorageError) => void,
  ): Promise<StoreWatch> {
    if (this.watches.size >= this.maxWatchers) {
      throw new StorageError('Internal', prefix, `too many watches (${this.maxWatchers})`);
    }
    const start = this.etcdKey(prefix);
    const end = prefixEnd(start);
    const rv = opts.resourceVersion;
    const backlog: StoreEvent[] = [];
    /** The revision of the last change this watch has covered; it resumes after it. */
    let covered: number;
    if (rv === undefined || rv === '' || rv === '0') {
      const res = await this.call(prefix, () => this.client.kv.range({ key: start, range_end: end }));
      this.seen(res.header);
      for (const kv of res.kvs) backlog.push({ type: 'ADDED', object: decode(kv) });
      covered = Number(res.header.revision);
    } else {
      covered = Number(rv);
      await this.checkNotCompacted(prefix, start, end, covered);
    }

    const watcher = this.client
      .watch()
      .inRange({ start, end })
      .withPreviousKV()
      .startRevision(String(covered + 1))
      .watcher();
    const w: EtcdWatch = { watcher, stopped: false };
    const deliver = (ev: StoreEvent): void => {
      if (w.stopped) return;
      try {
        onEvent(ev);
      } catch {
        // The watch's owner handles its own failures; the store carries on.
      }
    };
    watcher.on('data', (res: IWatchResponse) => {
      this.seen(res.header);
      for (const e of res.events) {
        const ev = toStoreEvent(e.type, e.kv, e.prev_kv);
        covered = Math.max(covered, Number(e.kv.mod_revision));
        if (ev) deliver(ev);
      }
    });
    // The stream broke: the watch manager reconnects on its own, from here (resumeAfter).
    watcher.on('disconnected', () => resumeAfter(watcher, covered));
    this.watches.add(w);
    try {
      await new Promise<void>((resolve, reject) => {
        watcher.once('connected', () => resolve());
        watcher.once('error', reject);
      });
    } catch (err) {
      this.watches.delete(w);
      throw this.storageError(prefix, err);
    }
    watcher.on('error', (err: unknown) => {
      // etcd cancelled the watch (its revision was compacted while the stream was down): the
      // owner ends its client's watch with 410, so the client re-lists (upstream's cacher does).
      this.watches.delete(w);
      if (w.stopped) return;
      w.stopped = true;
      this.log(`watch on ${prefix} cancelled by etcd after revision ${covered}: ${errorMessage(err)}`);
      onError?.(
        COMPACTED.test(errorMessage(err))
          ? new StorageError('ResourceVersionTooOld', prefix, TOO_OLD_WATCH)
          : new StorageError('Internal', prefix, `watch cancelled by etcd: ${errorMessage(err)}`),
      );
    });
    // The current state, before any change the watch reports (those arrive later, from the stream).
    for (const ev of backlog) deliver(ev);
    return {
      stop: () => {
        if (w.stopped) return;
        w.stopped = true;
        this.watches.delete(w);
        watcher.cancel().catch(() => {});
      },
    };
  }

  async close(): Promise<void> {
    const open = [...this.watches];
    this.watches.clear();
    for (const w of open) w.stopped = true;
    await Promise.allSettled(open.map((w) => w.watcher.cancel()));
    this.client.close();
  }

  /** The etcd key of a Store key: its `/registry` root replaced by the prefix. */
  private etcdKey(key: string): Buffer {
    const rest =
      key === KEY_ROOT || key.startsWith(`${KEY_ROOT}/`)
        ? key.slice(KEY_ROOT.length)
        : key.startsWith('/')
          ? key
          : `/${key}`;
    return Buffer.from(this.prefix + rest);
  }

  private async read(key: string): Promise<IKeyValue | undefined> {
    const res = await this.call(key, () => this.client.kv.range({ key: this.etcdKey(key) }));
    this.seen(res.header);
    return res.kvs[0];
  }

  /**
   * A watch from `rv` needs every revision after it: read at rv+1 (etcd refuses a compacted one
   * the way it would cancel the watch; a revision not reached yet is fine, the watch waits).
   */
  private async checkNotCompacted(prefix: string, start: Buffer, end: Buffer, rv: number): Promise<void> {
    try {
      const res = await this.client.kv.range({
        key: start,
        range_end: end,
        revision: rv + 1,
        count_only: true,
      });
      this.seen(res.header);
    } catch (err) {
      if (COMPACTED.test(errorMessage(err))) {
        // Upstream etcd3's interpretWatchError for ErrCompacted.
        throw new StorageError('ResourceVersionTooOld', prefix, TOO_OLD_WATCH);
      }
      if (!FUTURE.test(errorMessage(err))) throw this.storageError(prefix, err);
    }
  }

  private async call<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.storageError(key, err);
    }
  }

  private storageError(key: string, err: unknown): StorageError {
    if (err instanceof StorageError) return err;
    return new StorageError('Internal', key, `etcd: ${errorMessage(err)}`);
  }

  private seen(header: IResponseHeader | undefined): void {
    const rev = Number(header?.revision ?? 0);
    if (rev > this.revision) this.revision = rev;
  }
}

/** The value stored: JSON without resourceVersion (etcd's mod_revision is the version). */
function encode(obj: KubeObject): Buffer {
  const metadata = { ...obj.metadata };
  delete metadata.resourceVersion;
  return Buffer.from(JSON.stringify({ ...obj, metadata }));
}

function decode(kv: IKeyValue): KubeObject {
  return withVersion(JSON.parse(kv.value.toString()) as KubeObject, kv.mod_revision);
}

function withVersion(obj: KubeObject, revision: string): KubeObject {
  obj.metadata = { ...obj.metadata, resourceVersion: String(revision) };
  return obj;
}

function toStoreEvent(type: string, kv: IKeyValue, prev: IKeyValue | undefined): StoreEvent | undefined {
  if (type === 'Put') {
    // A key created (again) has create_revision == mod_revision.
    if (kv.create_revision === kv.mod_revision || !prev) return { type: 'ADDED', object: decode(kv) };
    return { type: 'MODIFIED', object: decode(kv), prevObject: decode(prev) };
  }
  // DELETE: the last state, at the delete's own revision (upstream etcd3 watcher).
  if (!prev) return undefined;
  return {
    type: 'DELETED',
    object: withVersion(JSON.parse(prev.value.toString()) as KubeObject, kv.mod_revision),
    prevObject: decode(prev),
  };
}

/** The first key after every key starting with `prefix` (etcd's GetPrefixRangeEnd). */
function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * Makes the watch manager resume `watcher` right after `revision` when it reconnects. Its own
 * resume point is the last response header's revision + 1, which can lie beyond events not yet
 * delivered (the header of a watch's creation, or of a batch of history); this one cannot.
 */
function resumeAfter(watcher: Watcher, revision: number): void {
  const request = (watcher as unknown as { request?: { start_revision?: string } }).request;
  if (request) request.start_revision = String(revision + 1);
}
