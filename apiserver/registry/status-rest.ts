/**
 * A `/status` subresource: get and update (PUT or PATCH) of an object's status, nothing else.
 *
 * Mirrors the StatusREST types of kubernetes `pkg/registry/core/pod/storage/storage.go` and
 * `pkg/registry/core/node/storage/storage.go`: a view of the main store with the status update
 * strategy, exposing only Getter and Updater so that discovery and the router offer only those.
 */
import type { KubeObject } from '../../shared/api/core-v1.js';
import type { GenericStore, Strategy } from './generic-store.js';
import type { Context, Getter, UpdatedObjectInfo, Updater, WriteOptions } from './rest.js';

export class StatusREST implements Getter, Updater {
  readonly kind: string;
  readonly namespaced: boolean;
  private readonly store: GenericStore;

  constructor(main: GenericStore, statusStrategy: Strategy) {
    this.store = main.withStrategy(statusStrategy);
    this.kind = main.kind;
    this.namespaced = main.namespaced;
  }

  get(ctx: Context, name: string): Promise<KubeObject> {
    return this.store.get(ctx, name);
  }

  update(ctx: Context, name: string, objInfo: UpdatedObjectInfo, opts?: WriteOptions): Promise<KubeObject> {
    return this.store.update(ctx, name, objInfo, opts);
  }
}
