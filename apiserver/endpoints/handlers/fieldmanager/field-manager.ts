/**
 * The FieldManager every write of a persisted kind goes through: an update (create, PUT, a
 * non-apply PATCH) records what its manager changed in `metadata.managedFields`; an apply merges
 * a configuration into the live object (or into the kind's empty object, to create it) and
 * records it, or fails with the 409 of conflict.ts.
 *
 * Mirrors apimachinery `pkg/util/managedfields/internal/fieldmanager.go` (FieldManager.Update /
 * UpdateNoErrors / Apply, decodeLiveOrNew: managedFields a request sends are kept, `[]` resets
 * them, invalid ones fall back to the live object's; a subresource always starts from the live
 * object's), `managedfieldsupdater.go` (an entry's time moves only when its manager changed
 * something), `stripmeta.go` (apiVersion, kind, name, uid, resourceVersion … belong to no one),
 * `skipnonapplied.go` (the first apply to an object with no managedFields gives what is there to
 * `before-first-apply`) and `versioncheck.go` (the applied kind must be the resource's). Not
 * modelled: the last-applied-configuration annotation bridge (lastappliedmanager.go,
 * lastappliedupdater.go), capping update managers at 10 (capmanagers.go), and conversion
 * between API versions (one version per kind here).
 */
import { StatusError } from '../../../../shared/status.js';
import type { KubeObject } from '../../../../shared/api/core-v1.js';
import { badRequest } from '../../../api/errors.js';
import { isRecord, jsonEqual } from '../../../api/json-values.js';
import { OBJECT_PATCH_META, PATCH_META, type PatchMeta } from '../../../api/patch-meta.js';
import { timestamp } from '../../../registry/object-meta.js';
import { conflictError } from './conflict.js';
import { difference, emptySet, fieldElement, insert, type FieldSet } from './field-set.js';
import {
  decodeManagedFields,
  emptyManaged,
  encodeManagedFields,
  managerIdentifier,
  type Managed,
} from './managed-fields.js';
import { applyConfig, Conflicts, updateManagers, type UpdaterOptions } from './updater.js';

/** Which resource a write addresses. */
export interface FieldManagerScope {
  kind: string;
  /** `v1`, `coordination.k8s.io/v1` … */
  apiVersion: string;
  /** `''` for the resource itself, `status` for its status subresource. */
  subresource: string;
}

/** Go's empty object of a kind, as it encodes (the live side of a create). */
const ZERO_OBJECTS: Record<string, object> = {
  Pod: { metadata: {}, spec: { containers: null }, status: {} },
  Node: { metadata: {}, spec: {}, status: {} },
  Namespace: { metadata: {}, spec: {}, status: {} },
  Lease: { metadata: {}, spec: {} },
};

/** stripmeta.go: the paths no manager ever owns. */
const STRIP_SET: FieldSet = (() => {
  const s = emptySet();
  for (const p of [['apiVersion'], ['kind'], ['metadata']]) insert(s, p.map(fieldElement));
  for (const f of [
    'name',
    'namespace',
    'creationTimestamp',
    'selfLink',
    'uid',
    'clusterName',
    'generation',
    'managedFields',
    'resourceVersion',
  ])
    insert(s, ['metadata', f].map(fieldElement));
  return s;
})();

function updaterOptions(scope: FieldManagerScope): UpdaterOptions {
  const meta: PatchMeta = PATCH_META[scope.kind] ?? OBJECT_PATCH_META;
  const status = fieldElement('status');
  // The strategy resets them, so no one owns them (ResetFieldsStrategy): the resource's status,
  // and all but the status on the status subresource.
  const reset = (s: FieldSet): FieldSet => ({
    member: false,
    children: new Map(
      [...s.children].filter(([pe]) => (scope.subresource === 'status' ? pe === status : pe !== status)),
    ),
  });
  return { meta, ignored: (s) => difference(reset(s), STRIP_SET) };
}

const zeroObject = (kind: string): unknown => structuredClone(ZERO_OBJECTS[kind] ?? { metadata: {} });

/** The object as the walks see it: without its managedFields. */
function withoutManagedFields(obj: KubeObject): KubeObject {
  const { managedFields: _m, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** isResetManagedFields: `[]` or `[{}]` asks to drop them all. */
function isReset(entries: unknown): boolean {
  return (
    Array.isArray(entries) &&
    (entries.length === 0 ||
      (entries.length === 1 && isRecord(entries[0]) && Object.keys(entries[0]).length === 0))
  );
}

function liveManaged(live: KubeObject | undefined): Managed {
  try {
    return decodeManagedFields(live?.metadata.managedFields);
  } catch {
    return emptyManaged();
  }
}

/** decodeLiveOrNew. */
function managedForUpdate(live: KubeObject | undefined, next: KubeObject, scope: FieldManagerScope): Managed {
  if (scope.subresource) return liveManaged(live);
  const sent = next.metadata.managedFields;
  if (isReset(sent)) return emptyManaged();
  try {
    const managed = decodeManagedFields(sent);
    return managed.fields.size ? managed : liveManaged(live);
  } catch {
    return liveManaged(live);
  }
}

/**
 * UpdateNoErrors: records in `next` (in place) what `manager` changed from `live` (undefined for
 * a create). A failure keeps the live object's entries, as upstream does.
 */
export function recordUpdate(
  live: KubeObject | undefined,
  next: KubeObject,
  manager: string,
  scope: FieldManagerScope,
): void {
  const managed = managedForUpdate(live, next, scope);
  delete next.metadata.managedFields;
  try {
    const id = managerIdentifier({
      manager,
      operation: 'Update',
      apiVersion: scope.apiVersion,
      subresource: scope.subresource,
    });
    const before = live ? withoutManagedFields(live) : zeroObject(scope.kind);
    const result = updateManagers(before, next, scope.apiVersion, managed.fields, id, updaterOptions(scope));
    if (result.changed) managed.times.set(id, timestamp());
    const entries = encodeManagedFields({ fields: result.managers, times: managed.times });
    if (entries) next.metadata.managedFields = entries;
  } catch {
    if (live?.metadata.managedFields)
      next.metadata.managedFields = structuredClone(live.metadata.managedFields);
  }
}

/**
 * Apply: `config` merged into `live` (into the kind's empty object when undefined) by `manager`;
 * a 409 when it changes fields others own and `force` is not set.
 */
export function applyObject(
  live: KubeObject | undefined,
  config: unknown,
  manager: string,
  force: boolean,
  scope: FieldManagerScope,
): KubeObject {
  if (!isRecord(config)) throw badRequest('error decoding YAML: the applied configuration must be an object');
  if (config.kind !== scope.kind || config.apiVersion !== scope.apiVersion) {
    const [group, version] = String(config.apiVersion ?? '').includes('/')
      ? String(config.apiVersion).split('/', 2)
      : ['', String(config.apiVersion ?? '')];
    throw badRequest(`invalid object type: ${group}/${version}, Kind=${String(config.kind ?? '')}`);
  }
  if ('metadata' in config && !isRecord(config.metadata)) throw badRequest('metadata must be an object');
  if (isRecord(config.metadata) && config.metadata.managedFields != null)
    throw badRequest('metadata.managedFields must be nil');
  let managed: Managed;
  try {
    managed = decodeManagedFields(live?.metadata.managedFields);
  } catch (err) {
    throw StatusError.of(500, `failed to decode managed fields: ${(err as Error).message}`);
  }
  const opts = updaterOptions(scope);
  const before = live ? withoutManagedFields(live) : zeroObject(scope.kind);
  let fields = managed.fields;
  if (live && fields.size === 0) {
    const id = managerIdentifier({
      manager: 'before-first-apply',
      operation: 'Update',
      apiVersion: scope.apiVersion,
      subresource: scope.subresource,
    });
    const first = updateManagers(zeroObject(scope.kind), before, scope.apiVersion, fields, id, opts);
    fields = first.managers;
    if (first.changed) managed.times.set(id, timestamp());
  }
  const id = managerIdentifier({ manager, operation: 'Apply', subresource: scope.subresource });
  let result: ReturnType<typeof applyConfig>;
  try {
    result = applyConfig(before, config, scope.apiVersion, fields, id, force, opts);
  } catch (err) {
    if (err instanceof Conflicts) throw conflictError(err.conflicts);
    throw err;
  }
  const object = result.object as KubeObject;
  if (!isRecord(object.metadata)) throw badRequest('the applied configuration removed the object metadata');
  // A no-op apply leaves its time alone, so that the store need not write (SMD returns no object).
  const typeless = (o: object) => ({ ...o, kind: undefined, apiVersion: undefined });
  if (!live || !jsonEqual(typeless(before as object), typeless(object))) managed.times.set(id, timestamp());
  const entries = encodeManagedFields({ fields: result.managers, times: managed.times });
  if (entries) object.metadata.managedFields = entries;
  return object;
}
