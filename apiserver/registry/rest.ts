/**
 * The small interfaces a REST storage object implements; the router offers a verb exactly when the
 * storage for that resource path implements the matching interface.
 *
 * Mirrors k8s.io/apiserver `pkg/registry/rest/rest.go` (Getter, Lister, Creater, NamedCreater, Updater,
 * GracefulDeleter, CollectionDeleter, Watcher, Connecter, UpdatedObjectInfo). Differences: one Context object carries
 * the namespace and the user (upstream puts them in context.Context), and a Watcher pushes events
 * to a callback instead of returning a channel.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UserInfo } from '../../shared/auth/tokens.js';
import type { Status } from '../../shared/status.js';
import type { KubeList, KubeObject, WatchEvent } from '../../shared/api/core-v1.js';

export interface Context {
  /** '' for cluster-scoped resources and for lists across all namespaces. */
  namespace: string;
  user: UserInfo;
  /** The request's Audit-Id (filters/request-observer.ts), for what this request logs. */
  auditID?: string;
  /** Adds an annotation to the request's later audit Events (upstream audit.AddAuditAnnotation). */
  annotate?: (key: string, value: string) => void;
}

export interface ListOptions {
  /** Raw selector text from the query; the storage parses it against its field labels. */
  fieldSelector?: string;
  labelSelector?: string;
  resourceVersion?: string;
}

/** Options of a write: `dryRun=All` runs every check and stores nothing. */
export interface WriteOptions {
  dryRun?: boolean;
}

export interface DeleteOptions extends WriteOptions {
  preconditions?: { uid?: string; resourceVersion?: string };
}

/** Every storage describes itself (for discovery and for the messages that name it). */
export interface Storage {
  /** The kind served (`Pod`, `PodExecOptions` …). */
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: string[];
  readonly singularName?: string;
  readonly categories?: string[];
}

export interface Getter extends Storage {
  get(ctx: Context, name: string): Promise<KubeObject>;
}

export interface Lister extends Storage {
  list(ctx: Context, opts: ListOptions): Promise<KubeList>;
}

export interface Creater extends Storage {
  create(ctx: Context, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject>;
}

/** A create addressed to a named object's subresource, e.g. POST pods/NAME/binding (upstream NamedCreater). */
export interface NamedCreater extends Storage {
  createNamed(ctx: Context, name: string, obj: KubeObject, opts?: WriteOptions): Promise<KubeObject | Status>;
}

/** Computes the updated object from the stored one: a PUT body, or a patch applied to it. */
export type UpdatedObjectInfo = (old: KubeObject) => KubeObject | Promise<KubeObject>;

export interface Updater extends Storage {
  update(ctx: Context, name: string, objInfo: UpdatedObjectInfo, opts?: WriteOptions): Promise<KubeObject>;
}

export interface GracefulDeleter extends Storage {
  delete(ctx: Context, name: string, opts: DeleteOptions): Promise<KubeObject | Status>;
}

export interface CollectionDeleter extends Storage {
  /** Deletes every object the list options select; returns them as a list. */
  deleteCollection(ctx: Context, opts: DeleteOptions, listOpts: ListOptions): Promise<KubeList>;
}

export interface WatchHandle {
  stop(): void;
}

export interface Watcher extends Storage {
  watch(ctx: Context, opts: ListOptions, onEvent: (ev: WatchEvent) => void): Promise<WatchHandle>;
}

/** What a Connecter returns: something that serves the request, plain or upgraded (an UpgradeAwareHandler). */
export interface ConnectHandler {
  handle(req: IncomingMessage, res: ServerResponse): void;
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

export interface Connecter extends Storage {
  /** HTTP methods this subresource accepts (upstream ConnectMethods). */
  readonly connectMethods: string[];
  connect(ctx: Context, name: string, options: URLSearchParams): Promise<ConnectHandler>;
}

export const isGetter = (s: Storage): s is Getter => typeof (s as Partial<Getter>).get === 'function';
export const isLister = (s: Storage): s is Lister => typeof (s as Partial<Lister>).list === 'function';
export const isCreater = (s: Storage): s is Creater => typeof (s as Partial<Creater>).create === 'function';
export const isNamedCreater = (s: Storage): s is NamedCreater =>
  typeof (s as Partial<NamedCreater>).createNamed === 'function';
export const isCollectionDeleter = (s: Storage): s is CollectionDeleter =>
  typeof (s as Partial<CollectionDeleter>).deleteCollection === 'function';
export const isUpdater = (s: Storage): s is Updater => typeof (s as Partial<Updater>).update === 'function';
export const isDeleter = (s: Storage): s is GracefulDeleter =>
  typeof (s as Partial<GracefulDeleter>).delete === 'function';
export const isWatcher = (s: Storage): s is Watcher => typeof (s as Partial<Watcher>).watch === 'function';
export const isConnecter = (s: Storage): s is Connecter =>
  typeof (s as Partial<Connecter>).connect === 'function';
