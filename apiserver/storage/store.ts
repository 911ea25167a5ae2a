/**
 * The storage interface every backend implements: objects by key, a global monotonically increasing
 * resourceVersion, compare-and-swap updates and watches from a resourceVersion.
 *
 * Mirrors k8s.io/apiserver `pkg/storage/interfaces.go` (storage.Interface: Create, Delete, Watch,
 * Get, GetList, GuaranteedUpdate) and `pkg/storage/errors.go`. The in-memory store is the default;
 * an etcd backend (`--etcd-servers`) implements the same interface, with etcd's revision as the
 * resourceVersion. Keys look like upstream's: `/registry/pods/{ns}/{name}`, `/registry/minions/{name}`.
 */
import type { KubeObject } from '../../shared/api/core-v1.js';

export type StorageErrorCode =
  'KeyNotFound' | 'KeyExists' | 'Conflict' | 'ResourceVersionTooOld' | 'Internal';

/** A storage failure; the registry turns it into an API Status naming the resource. */
export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'StorageError';
  }
}

export interface Preconditions {
  uid?: string;
  resourceVersion?: string;
}

export interface StoreEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  /** The object after the change (for DELETED: the last stored state, at the delete's resourceVersion). */
  object: KubeObject;
  /** The object before the change, for MODIFIED and DELETED (field selectors need both). */
  prevObject?: KubeObject;
}

export interface StoreWatchOptions {
  /**
   * Unset or "0": synthetic ADDED events for every current object, then changes (upstream "get
   * state and start at most recent"). Otherwise: every change after that resourceVersion; too old
   * for the retained history → StorageError ResourceVersionTooOld (410 Expired).
   */
  resourceVersion?: string;
}

export interface StoreWatch {
  stop(): void;
}

/** Computes the new object from the current one; throwing aborts the update. */
export type TryUpdate = (current: KubeObject) => KubeObject | Promise<KubeObject>;

export interface Store {
  /** undefined when the key does not exist. */
  get(key: string): Promise<KubeObject | undefined>;
  /** Every object under a key prefix, with the store's resourceVersion at the time of the read. */
  list(prefix: string): Promise<{ items: KubeObject[]; resourceVersion: string }>;
  /** Stores a new object; KeyExists when the key is taken. Returns it with its resourceVersion. */
  create(key: string, obj: KubeObject): Promise<KubeObject>;
  /**
   * Read-modify-write: calls tryUpdate with the current object and stores the result if nothing
   * changed meanwhile (retrying otherwise). KeyNotFound when absent; Conflict on failed preconditions.
   */
  guaranteedUpdate(key: string, tryUpdate: TryUpdate, preconditions?: Preconditions): Promise<KubeObject>;
  /** Removes an object and returns its last state; KeyNotFound when absent, Conflict on preconditions. */
  delete(key: string, preconditions?: Preconditions): Promise<KubeObject>;
  /**
   * Delivers changes under a prefix, in resourceVersion order: the memory store synchronously as
   * they happen, etcd as its watch stream brings them (shortly after the write resolves).
   * `onError` ends a watch the backend can no longer continue (etcd cancelled it, e.g. its
   * revision was compacted while the stream was down): no event follows it.
   */
  watch(
    prefix: string,
    opts: StoreWatchOptions,
    onEvent: (ev: StoreEvent) => void,
    onError?: (err: StorageError) => void,
  ): Promise<StoreWatch>;
  /** The newest resourceVersion handed out. */
  currentResourceVersion(): string;
  close(): Promise<void>;
}

/** Checks uid / resourceVersion preconditions against the stored object. */
export function checkPreconditions(key: string, current: KubeObject, pre: Preconditions | undefined): void {
  if (pre?.uid && pre.uid !== current.metadata.uid) {
    throw new StorageError(
      'Conflict',
      key,
      `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid ?? ''}`,
    );
  }
  if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) {
    throw new StorageError(
      'Conflict',
      key,
      `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion ?? ''}`,
    );
  }
}
