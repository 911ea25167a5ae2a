/**
 * The generic REST storage every simple resource is built from: Get, List, Create, Update, Delete
 * and Watch on top of a Store, driven by a per-resource strategy (defaults and validation).
 *
 * Mirrors k8s.io/apiserver `pkg/registry/generic/registry/store.go` (genericregistry.Store with
 * CreateStrategy / UpdateStrategy, KeyFunc, ReturnDeletedObject) and `pkg/registry/rest/create.go`
 * / `update.go` (BeforeCreate, BeforeUpdate). A status subresource is the same store with another
 * update strategy, as upstream's `statusStore := *store`.
 */
import { randomUUID } from 'node:crypto';
import { StatusError, type Status } from '../../shared/status.js';
import {
  alreadyExists,
  badRequest,
  conflict,
  invalid,
  notFound,
  OBJECT_MODIFIED,
  resourceExpired,
  type FieldError,
} from '../api/errors.js';
import type { KubeList, KubeObject, WatchEvent } from '../../shared/api/core-v1.js';
import { checkPreconditions, StorageError, type Store } from '../storage/store.js';
import { generatedName, timestamp, untyped } from './object-meta.js';
import { isValidPathSegmentName } from './validation.js';
import type {
  Context,
  Creater,
  DeleteOptions,
  CollectionDeleter,
  GracefulDeleter,
  Getter,
  Lister,
  ListOptions,
  UpdatedObjectInfo,
  Updater,
  Watcher,
  WatchHandle,
  WriteOptions,
} from './rest.js';
import {
  matches,
  parseFieldSelector,
  parseLabelSelector,
  type FieldSet,
  type Selector,
} from './selectors.js';

export interface Strategy {
  /** Clears or defaults fields on create (upstream PrepareForCreate). */
  prepareForCreate?(obj: KubeObject): void;
  validate(obj: KubeObject): FieldError[];
  /** Carries fields the update may not change over from the stored object (PrepareForUpdate). */
  prepareForUpdate?(obj: KubeObject, old: KubeObject): void;
  validateUpdate(obj: KubeObject, old: KubeObject): FieldError[];
  /** A PUT without metadata.resourceVersion overwrites instead of failing (AllowUnconditionalUpdate). */
  allowUnconditionalUpdate: boolean;
}

export interface GenericStoreOptions {
  store: Store;
  /** Plural resource name, as in messages: `pods`. */
  resource: string;
  kind: string;
  listKind: string;
  /** The group/version objects are served as: `v1` (core, the default), `coordination.k8s.io/v1` … */
  apiVersion?: string;
  namespaced: boolean;
  /** Key prefix: `/registry/pods`. */
  keyRoot: string;
  strategy: Strategy;
  /** Field values for field selectors (upstream GetAttrs / the field label conversion func). */
  fields: (obj: KubeObject) => FieldSet;
  /** The keys `fields` returns: the only ones a field selector may name. */
  fieldLabels: readonly string[];
  /** Return the deleted object (pods) rather than a Success Status (ReturnDeletedObject). */
  returnDeletedObject?: boolean;
  shortNames?: string[];
  singularName?: string;
  categories?: string[];
}

export class GenericStore
  implements Getter, Lister, Creater, Updater, GracefulDeleter, CollectionDeleter, Watcher
{
  readonly kind: string;
  readonly namespaced: boolean;
  readonly shortNames?: string[];
  readonly singularName?: string;
  readonly categories?: string[];

  get apiVersion(): string {
    return this.opts.apiVersion ?? 'v1';
  }

  constructor(readonly opts: GenericStoreOptions) {
    this.kind = opts.kind;
    this.namespaced = opts.namespaced;
    this.shortNames = opts.shortNames;
    this.singularName = opts.singularName;
    this.categories = opts.categories;
  }

  /** The same storage with another update strategy (for a status subresource, see status-rest.ts). */
  withStrategy(strategy: Strategy): GenericStore {
    return new GenericStore({ ...this.opts, strategy, shortNames: undefined, categories: undefined });
  }

  /**
   * NamespaceKeyFunc / NoNamespaceKeyFunc: `/registry/pods/{ns}/{name}`. A name (or namespace)
   * that is not one path segment is a BadRequest, so no key ever lands under another's prefix.
   */
  key(ctx: Context, name: string): string {
    if (!name) throw badRequest('Name parameter required.');
    checkPathSegment('Name', name);
    if (!this.namespaced) return `${this.opts.keyRoot}/${name}`;
    if (!ctx.namespace) throw badRequest('Namespace parameter required.');
    checkPathSegment('Namespace', ctx.namespace);
    return `${this.opts.keyRoot}/${ctx.namespace}/${name}`;
  }

  /** NamespaceKeyRootFunc, ending in `/`: what a list or watch reads (one namespace, or all). */
  private prefix(ctx: Context): string {
    if (!this.namespaced || !ctx.namespace) return `${this.opts.keyRoot}/`;
    checkPathSegment('Namespace', ctx.namespace);
    return `${this.opts.keyRoot}/${ctx.namespace}/`;
  }

  async get(ctx: Context, name: string): Promise<KubeObject> {
    const obj = await this.opts.store.get(this.key(ctx, name));
    if (!obj) throw notFound(this.opts.resource, name);
    return this.typed(obj);
  }

  async list(ctx: Context, opts: ListOptions): Promise<KubeList> {
    const sel = this.selection(opts);
    const { items, resourceVersion } = await this.opts.store.list(this.prefix(ctx));
    const selected = items.filter((o) => this.inScope(ctx, o) && this.selects(o, sel)).map(untyped);
    return {
      kind: this.opts.listKind,
      apiVersion: this.apiVersion,
      metadata: { resourceVersion },
      items: selected,
    };
  }

  async create(ctx: Context, input: KubeObject, wopts: WriteOptions = {}): Promise<KubeObject> {
    const obj = this.checkTypeAndScope(ctx, input);
    const meta = obj.metadata;
    if (!meta.name && meta.generateName) meta.name = generatedName(meta.generateName);
    meta.uid = randomUUID();
    meta.creationTimestamp = timestamp();
    delete meta.resourceVersion;
    delete meta.deletionTimestamp;
    this.opts.strategy.prepareForCreate?.(obj);
    const errs = this.opts.strategy.validate(obj);
    if (errs.length) throw invalid(this.kind, meta.name ?? '', errs);
    try {
      if (wopts.dryRun) {
        if (await this.opts.store.get(this.key(ctx, meta.name!)))
          throw new StorageError('KeyExists', this.key(ctx, meta.name!), 'exists');
        return this.typed(obj);
      }
      return this.typed(await this.opts.store.create(this.key(ctx, meta.name!), obj));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'KeyExists')
        throw alreadyExists(this.opts.resource, meta.name!);
      throw err;
    }
  }

  async update(
    ctx: Context,
    name: string,
    objInfo: UpdatedObjectInfo,
    wopts: WriteOptions = {},
  ): Promise<KubeObject> {
    try {
      if (wopts.dryRun) {
        const existing = await this.opts.store.get(this.key(ctx, name));
        if (!existing) throw notFound(this.opts.resource, name);
        return this.typed(await this.updated(ctx, name, existing, objInfo));
      }
      const stored = await this.opts.store.guaranteedUpdate(this.key(ctx, name), (existing) =>
        this.updated(ctx, name, existing, objInfo),
      );
      return this.typed(stored);
    } catch (err) {
      throw this.interpret(err, name);
    }
  }

  /** The object an update would store (upstream rest.BeforeUpdate after objInfo.UpdatedObject). */
  private async updated(
    ctx: Context,
    name: string,
    existing: KubeObject,
    objInfo: UpdatedObjectInfo,
  ): Promise<KubeObject> {
    const strategy = this.opts.strategy;
    const obj = this.checkTypeAndScope(ctx, await objInfo(structuredClone(existing)));
    if (obj.metadata.name !== name) {
      throw badRequest(
        `the name of the object (${obj.metadata.name ?? ''}) does not match the name on the URL (${name})`,
      );
    }
    const rv = obj.metadata.resourceVersion;
    if (!rv && !strategy.allowUnconditionalUpdate) {
      throw invalid(this.kind, name, [
        {
          type: 'FieldValueInvalid',
          field: 'metadata.resourceVersion',
          value: 0,
          detail: 'must be specified for an update',
        },
      ]);
    }
    if (rv && rv !== existing.metadata.resourceVersion)
      throw conflict(this.opts.resource, name, OBJECT_MODIFIED);
    // System fields are the server's (upstream FillObjectMetaSystemFields / ValidateObjectMetaUpdate).
    obj.metadata.uid = existing.metadata.uid;
    obj.metadata.creationTimestamp = existing.metadata.creationTimestamp;
    strategy.prepareForUpdate?.(obj, existing);
    const errs = strategy.validateUpdate(obj, existing);
    if (errs.length) throw invalid(this.kind, name, errs);
    return obj;
  }

  async delete(ctx: Context, name: string, opts: DeleteOptions): Promise<KubeObject | Status> {
    try {
      const key = this.key(ctx, name);
      let deleted: KubeObject;
      if (opts.dryRun) {
        const current = await this.opts.store.get(key);
        if (!current) throw new StorageError('KeyNotFound', key, `key ${key} not found`);
        checkPreconditions(key, current, opts.preconditions);
        deleted = current;
      } else {
        deleted = await this.opts.store.delete(key, opts.preconditions);
      }
      if (this.opts.returnDeletedObject) return this.typed(deleted);
      return {
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Success',
        details: { name, kind: this.opts.resource, uid: deleted.metadata.uid } as Status['details'],
      };
    } catch (err) {
      throw this.interpret(err, name);
    }
  }

  /** DELETE on the collection: every selected object, one by one (upstream DeleteCollection). */
  async deleteCollection(ctx: Context, opts: DeleteOptions, listOpts: ListOptions): Promise<KubeList> {
    const list = await this.list(ctx, listOpts);
    const deleted: KubeObject[] = [];
    for (const item of list.items) {
      const itemCtx = { ...ctx, namespace: item.metadata.namespace ?? ctx.namespace };
      try {
        const gone = await this.delete(itemCtx, item.metadata.name ?? '', { dryRun: opts.dryRun });
        deleted.push(untyped(this.opts.returnDeletedObject ? (gone as KubeObject) : item));
      } catch (err) {
        // Deleted meanwhile by someone else: that is what was asked for.
        if (!(err instanceof StatusError) || err.code !== 404) throw err;
      }
    }
    return { ...list, items: deleted };
  }

  async watch(ctx: Context, opts: ListOptions, onEvent: (ev: WatchEvent) => void): Promise<WatchHandle> {
    const sel = this.selection(opts);
    const rv = opts.resourceVersion;
    if (rv && !/^\d+$/.test(rv)) throw badRequest(`invalid resourceVersion: ${rv}`);
    try {
      return await this.opts.store.watch(
        this.prefix(ctx),
        { resourceVersion: rv },
        (ev) => {
          if (!this.inScope(ctx, ev.object)) return;
          const now = this.selects(ev.object, sel);
          const before = ev.prevObject !== undefined && this.selects(ev.prevObject, sel);
          let type = ev.type;
          // An object moving into or out of the selection is ADDED / DELETED for this watch (upstream cacher).
          if (ev.type === 'MODIFIED' && now && !before) type = 'ADDED';
          else if (ev.type === 'MODIFIED' && !now && before) type = 'DELETED';
          else if (ev.type === 'DELETED' ? !before : !now) return;
          onEvent({ type, object: this.typed(ev.object) });
        },
        // The store can go on no longer: the client gets an ERROR event (410 for a compacted
        // revision, so it re-lists) and its watch ends.
        (err) => {
          const status =
            err.code === 'ResourceVersionTooOld'
              ? resourceExpired(err.message).status
              : StatusError.of(500, err.message).status;
          onEvent({ type: 'ERROR', object: status });
        },
      );
    } catch (err) {
      if (err instanceof StorageError && err.code === 'ResourceVersionTooOld')
        throw resourceExpired(err.message);
      throw err;
    }
  }

  private selection(opts: ListOptions): { field?: Selector; label?: Selector } {
    return {
      field: parseFieldSelector(opts.fieldSelector ?? '', this.opts.fieldLabels),
      label: parseLabelSelector(opts.labelSelector ?? ''),
    };
  }

  private selects(obj: KubeObject, sel: { field?: Selector; label?: Selector }): boolean {
    return matches(sel.field, this.opts.fields(obj)) && matches(sel.label, obj.metadata.labels ?? {});
  }

  /** Only the request's namespace, whatever a store holds under its prefix (data from older versions). */
  private inScope(ctx: Context, obj: KubeObject): boolean {
    return !this.namespaced || !ctx.namespace || obj.metadata.namespace === ctx.namespace;
  }

  /** A body's kind / apiVersion must be this resource's; its namespace must be the URL's. */
  private checkTypeAndScope(ctx: Context, obj: KubeObject): KubeObject {
    if ((obj.kind && obj.kind !== this.kind) || (obj.apiVersion && obj.apiVersion !== this.apiVersion)) {
      throw badRequest(
        `${obj.kind ?? ''} in version "${obj.apiVersion ?? ''}" cannot be handled as a ${this.kind}`,
      );
    }
    const meta = obj.metadata;
    if (this.namespaced) {
      if (meta.namespace && meta.namespace !== ctx.namespace) {
        throw badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      meta.namespace = ctx.namespace;
    }
    return obj;
  }

  private typed(obj: KubeObject): KubeObject {
    return { kind: this.kind, apiVersion: this.apiVersion, ...untyped(obj) };
  }

  private interpret(err: unknown, name: string): unknown {
    if (err instanceof StatusError || !(err instanceof StorageError)) return err;
    if (err.code === 'KeyNotFound') return notFound(this.opts.resource, name);
    if (err.code === 'Conflict') return conflict(this.opts.resource, name, err.message);
    return err;
  }
}

/** IsValidPathSegmentName as the key functions use it: "Name parameter invalid: …" (400). */
function checkPathSegment(what: 'Name' | 'Namespace', value: string): void {
  const msgs = isValidPathSegmentName(value);
  if (msgs.length) throw badRequest(`${what} parameter invalid: ${JSON.stringify(value)}: ${msgs.join(';')}`);
}
