/**
 * Namespace storage (`namespaces`, cluster-scoped, `ns`) and the two rules that make namespaces
 * matter: an object may be created only in a namespace that exists (NamespaceLifecycle), and
 * deleting a namespace deletes what is in it.
 *
 * Mirrors kubernetes `pkg/registry/core/namespace/storage/storage.go` and `strategy.go` (phase
 * Active on create, the `kubernetes` finalizer, the name a DNS-1123 label),
 * `plugin/pkg/admission/namespace/lifecycle` (create in a missing namespace: 404
 * `namespaces "nope" not found`; `default`, `kube-system` and `kube-public` may not be deleted:
 * "this namespace may not be deleted") and the namespace controller
 * (`pkg/controller/namespace/deletion`). Difference: deletion is not graceful; the content goes
 * at once (pods and leases of the namespace), then the namespace, in the same request, where
 * upstream marks it Terminating and a controller empties it.
 */
import { StatusError, type Status } from '../../../shared/status.js';
import type { KubeObject } from '../../../shared/api/core-v1.js';
import { notFound, type FieldError } from '../../api/errors.js';
import type { Store } from '../../storage/store.js';
import { GenericStore, type Strategy } from '../generic-store.js';
import type { Context, DeleteOptions } from '../rest.js';
import { isDNS1123Label, validateObjectMeta } from '../validation.js';

/** The namespaces every cluster has (kube-apiserver's system namespaces, and the lease one). */
export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'] as const;
/** The ones the lifecycle admission refuses to delete. */
const IMMORTAL = new Set(['default', 'kube-system', 'kube-public']);

const SYSTEM_CONTEXT: Context = { namespace: '', user: { name: 'system:apiserver', groups: [] } };

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function validateNamespace(obj: KubeObject): FieldError[] {
  const errs = validateObjectMeta(obj, false);
  const name = obj.metadata.name ?? '';
  if (name && (name.length > 63 || !DNS1123_LABEL.test(name)) && !errs.length) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'metadata.name',
      value: name,
      detail:
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
    });
  }
  return errs;
}

const namespaceStrategy: Strategy = {
  prepareForCreate(obj) {
    obj.spec = { finalizers: ['kubernetes'] };
    obj.status = { phase: 'Active' };
  },
  validate: validateNamespace,
  prepareForUpdate(obj, old) {
    obj.status = old.status;
  },
  validateUpdate: (obj) => validateObjectMeta(obj, false),
  allowUnconditionalUpdate: true,
};

/** What a namespace holds: the namespaced stores whose objects go with it. */
export interface NamespacedContent {
  deleteCollection(ctx: Context, opts: DeleteOptions, listOpts: object): Promise<unknown>;
}

export class NamespaceREST extends GenericStore {
  private readonly content: NamespacedContent[] = [];

  constructor(store: Store) {
    super({
      store,
      resource: 'namespaces',
      kind: 'Namespace',
      listKind: 'NamespaceList',
      namespaced: false,
      keyRoot: '/registry/namespaces',
      strategy: namespaceStrategy,
      fields: (obj) => ({
        'metadata.name': obj.metadata.name ?? '',
        'status.phase': String((obj.status as { phase?: unknown } | undefined)?.phase ?? ''),
      }),
      fieldLabels: ['metadata.name', 'status.phase'],
      returnDeletedObject: true,
      shortNames: ['ns'],
      singularName: 'namespace',
    });
  }

  /** Registers a namespaced store whose objects are deleted with their namespace. */
  holds(content: NamespacedContent): void {
    this.content.push(content);
  }

  override async delete(ctx: Context, name: string, opts: DeleteOptions): Promise<KubeObject | Status> {
    if (IMMORTAL.has(name)) {
      throw StatusError.of(
        403,
        `namespaces ${JSON.stringify(name)} is forbidden: this namespace may not be deleted`,
        'Forbidden',
        { name, kind: 'namespaces' },
      );
    }
    await this.get(ctx, name); // 404 before touching anything
    if (!opts.dryRun) {
      for (const c of this.content) await c.deleteCollection({ ...ctx, namespace: name }, {}, {});
    }
    return super.delete(ctx, name, opts);
  }

  /** NamespaceLifecycle for a create: the namespace must exist. */
  async admitCreate(namespace: string): Promise<void> {
    // A name that is no DNS-1123 label names no namespace: the object's validation answers it
    // with upstream's 422 (metadata.namespace: Invalid value), not a 400 from the key lookup.
    if (!namespace || isDNS1123Label(namespace).length > 0) return;
    if (!(await this.opts.store.get(this.key(SYSTEM_CONTEXT, namespace)))) {
      throw notFound('namespaces', namespace);
    }
  }

  /** Creates the system namespaces that are missing (kube-apiserver's SystemNamespaces). */
  async ensureSystemNamespaces(): Promise<void> {
    for (const name of SYSTEM_NAMESPACES) {
      try {
        await this.create(SYSTEM_CONTEXT, { metadata: { name } });
      } catch (err) {
        if (!(err instanceof StatusError) || err.code !== 409) throw err;
      }
    }
  }
}
