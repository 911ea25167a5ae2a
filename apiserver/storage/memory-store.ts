/**
 * The default storage backend: objects in a Map, one revision counter for every key (etcd's
 * revision plays that role upstream), and a bounded history of changes for watches.
 *
 * Mirrors the behaviour of k8s.io/apiserver `pkg/storage/etcd3/store.go` together with the watch
 * cache (`pkg/storage/cacher`): resourceVersions are global and increasing, a watch can resume
 * from any resourceVersion still in the history, and an older one is "too old" (410). Objects are
 * cloned on the way in and out, so no caller can change stored state by mutating what it holds.
 */
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

export interface MemoryStoreOptions {
  /** Changes kept for watches that resume from a resourceVersion (upstream's watch cache size). */
  historySize?: number;
  /** Concurrent watches; more are refused (each costs a listener on every write). */
  maxWatchers?: number;
}

interface Watcher {
  prefix: string;
  onEvent: (ev: StoreEvent) => void;
}

interface HistoryEntry {
  rv: number;
  key: string;
  event: StoreEvent;
}

/** An update whose tryUpdate raced with another write is retried at most this often. */
const MAX_UPDATE_ATTEMPTS = 16;

export class MemoryStore implements Store {
  private readonly objects = new Map<string, KubeObject>();
  private readonly history: HistoryEntry[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly historySize: number;
  private readonly maxWatchers: number;
  private revision = 0;
  /** Changes at or below this revision have left the history. */
  private compacted = 0;

  constructor(opts: MemoryStoreOptions = {}) {
    this.historySize = opts.historySize ?? 1000;
    this.maxWatchers = opts.maxWatchers ?? 10_000;
  }

  currentResourceVersion(): string {
    return String(this.revision);
  }

  async get(key: string): Promise<KubeObject | undefined> {
    const obj = this.objects.get(key);
    return obj && structuredClone(obj);
  }

  async list(prefix: string): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const items: KubeObject[] = [];
    for (const key of [...this.objects.keys()].sort()) {
      if (key.startsWith(prefix)) items.push(structuredClone(this.objects.get(key)!));
    }
    return { items, resourceVersion: this.currentResourceVersion() };
  }

  async create(key: string, obj: KubeObject): Promise<KubeObject> {
    if (this.objects.has(key)) throw new StorageError('KeyExists', key, `key ${key} already exists`);
    const stored = this.stamp(obj);
    this.objects.set(key, stored);
    this.record(key, { type: 'ADDED', object: stored });
    return structuredClone(stored);
  }

  async guaranteedUpdate(key: string, tryUpdate: TryUpdate, pre?: Preconditions): Promise<KubeObject> {
    for (let attempt = 0; attempt < MAX_UPDATE_ATTEMPTS; attempt++) {
      const current = this.objects.get(key);
      if (!current) throw new StorageError('KeyNotFound', key, `key ${key} not found`);
      checkPreconditions(key, current, pre);
      const next = await tryUpdate(structuredClone(current));
      // Another write landed while tryUpdate ran: start again from the new state (etcd's CAS loop).
      if (this.objects.get(key) !== current) continue;
      // A no-op update is not written and keeps its resourceVersion, as upstream.
      const candidate = {
        ...next,
        metadata: { ...next.metadata, resourceVersion: current.metadata.resourceVersion },
      };
      if (jsonEqual(candidate, current)) return structuredClone(current);
      const stored = this.stamp(next);
      this.objects.set(key, stored);
      this.record(key, { type: 'MODIFIED', object: stored, prevObject: current });
      return structuredClone(stored);
    }
    throw new StorageError('Conflict', key, `too many concurrent updates to ${key}`);
  }

  async delete(key: string, pre?: Preconditions): Promise<KubeObject> {
    const current = this.objects.get(key);
    if (!current) throw new StorageError('KeyNotFound', key, `key ${key} not found`);
    checkPreconditions(key, current, pre);
    this.objects.delete(key);
    // The DELETED event carries the last state at the delete's own resourceVersion, as etcd3's watcher does.
    const last = this.stamp(current);
    this.record(key, { type: 'DELETED', object: last, prevObject: current });
    return structuredClone(current);
  }

  async watch(
    prefix: string,
    opts: StoreWatchOptions,
    onEvent: (ev: StoreEvent) => void,
  ): Promise<StoreWatch> {
    if (this.watchers.size >= this.maxWatchers) {
      throw new StorageError('Internal', prefix, `too many watches (${this.maxWatchers})`);
    }
    const rv = opts.resourceVersion;
    const backlog: StoreEvent[] = [];
    if (rv === undefined || rv === '' || rv === '0') {
      for (const key of [...this.objects.keys()].sort()) {
        if (key.startsWith(prefix)) backlog.push({ type: 'ADDED', object: this.objects.get(key)! });
      }
    } else {
      const from = Number(rv);
      if (from < this.compacted) {
        throw new StorageError(
          'ResourceVersionTooOld',
          prefix,
          `too old resource version: ${from} (${this.compacted + 1})`,
        );
      }
      for (const h of this.history) if (h.rv > from && h.key.startsWith(prefix)) backlog.push(h.event);
    }
    const watcher: Watcher = { prefix, onEvent };
    this.watchers.add(watcher);
    for (const ev of backlog) deliver(watcher, ev);
    return { stop: () => void this.watchers.delete(watcher) };
  }

  async close(): Promise<void> {
    this.watchers.clear();
  }

  /** A clone of obj carrying the next resourceVersion. */
  private stamp(obj: KubeObject): KubeObject {
    const copy = structuredClone(obj);
    this.revision++;
    copy.metadata = { ...copy.metadata, resourceVersion: String(this.revision) };
    return copy;
  }

  private record(key: string, event: StoreEvent): void {
    this.history.push({ rv: this.revision, key, event });
    while (this.history.length > this.historySize) this.compacted = this.history.shift()!.rv;
    for (const w of [...this.watchers]) if (key.startsWith(w.prefix)) deliver(w, event);
  }
}

/** Watchers get their own copies; a throwing watcher does not stop the others. */
function deliver(w: Watcher, ev: StoreEvent): void {
  try {
    w.onEvent(structuredClone(ev));
  } catch {
    // The watch's owner handles its own failures; the store carries on.
  }
}
