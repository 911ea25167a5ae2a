/**
 * Who owns which fields after a write: an update (create, PUT, any non-apply PATCH) takes every
 * field it changed from whoever owned it; an apply merges its configuration, prunes what the same
 * manager applied before and no longer does, and refuses to change a field another manager owns
 * unless forced, in which case it takes that field over.
 *
 * Mirrors structured-merge-diff `merge/update.go` (Updater.Update, Updater.Apply, update, prune,
 * addBackOwnedItems, addBackDanglingItems) and `merge/conflict.go` (Conflicts). Managers are
 * keyed by their identity string (managed-fields.ts). Difference: one API version per kind, so
 * nothing is converted between versions; the fields a kind's strategy resets (a pod's status
 * on the main resource) are left out by an `ignored` filter, as upstream's IgnoreFilter.
 */
import type { PatchMeta } from '../../../api/patch-meta.js';
import { difference, intersection, isEmpty, members, union, type FieldSet } from './field-set.js';
import { compare, merge, removeItems, toFieldSet, type Comparison } from './typed-value.js';

/** The stand-in name of the write being recorded (managedfieldsupdater.go), never a real manager's. */
const CURRENT_OPERATION = '\0current-operation';

export interface VersionedSet {
  set: FieldSet;
  apiVersion: string;
  /** Owned by an apply (which prune and conflicts treat differently from an update). */
  applied: boolean;
}

/** Manager identity → the fields it owns. */
export type ManagedFields = Map<string, VersionedSet>;

export interface Conflict {
  manager: string;
  path: string[];
}

/** An apply would change fields other managers own (merge.Conflicts). */
export class Conflicts extends Error {
  constructor(readonly conflicts: Conflict[]) {
    super(`${conflicts.length} conflict(s)`);
    this.name = 'Conflicts';
  }
}

export interface UpdaterOptions {
  meta: PatchMeta | undefined;
  /** Removes the paths no manager may own (the fields the strategy resets). */
  ignored: (s: FieldSet) => FieldSet;
}

function filtered(c: Comparison, ignored: (s: FieldSet) => FieldSet): Comparison {
  return { added: ignored(c.added), modified: ignored(c.modified), removed: ignored(c.removed) };
}

/**
 * Takes what changed between `oldObject` and `newObject` away from every manager but `workflow`:
 * fields changed or added are conflicts (refused unless `force`), removed fields are simply lost.
 */
function takeOwnership(
  cmp: Comparison,
  managers: ManagedFields,
  workflow: string,
  force: boolean,
): ManagedFields {
  const changed = union(cmp.modified, cmp.added);
  const conflicts: Conflict[] = [];
  const out: ManagedFields = new Map();
  for (const [manager, vs] of managers) {
    if (manager === workflow) {
      out.set(manager, vs);
      continue;
    }
    const conflict = intersection(vs.set, changed);
    for (const path of members(conflict)) conflicts.push({ manager, path });
    const set = difference(difference(vs.set, conflict), cmp.removed);
    if (!isEmpty(set)) out.set(manager, { ...vs, set });
  }
  if (!force && conflicts.length) throw new Conflicts(conflicts);
  return out;
}

/**
 * Updater.Update: `manager` owns what it changed, on top of what it owned; `changed` says whether
 * it changed anything (upstream's "current-operation" manager got fields), which is when its
 * entry's time moves.
 */
export function updateManagers(
  liveObject: unknown,
  newObject: unknown,
  apiVersion: string,
  managers: ManagedFields,
  manager: string,
  opts: UpdaterOptions,
): { managers: ManagedFields; changed: boolean } {
  const cmp = filtered(compare(liveObject, newObject, opts.meta), opts.ignored);
  // Every manager, this one's earlier entry included, loses what this write changed or removed.
  const out = takeOwnership(cmp, managers, CURRENT_OPERATION, true);
  const current = difference(union(cmp.modified, cmp.added), cmp.removed);
  if (isEmpty(current)) return { managers: out, changed: false };
  const previous = out.get(manager)?.set;
  out.set(manager, { set: previous ? union(previous, current) : current, apiVersion, applied: false });
  return { managers: out, changed: true };
}

/** Updater.Apply: the merged object and the managers after `manager` applied `config`. */
export function applyConfig(
  liveObject: unknown,
  config: unknown,
  apiVersion: string,
  managers: ManagedFields,
  manager: string,
  force: boolean,
  opts: UpdaterOptions,
): { object: unknown; managers: ManagedFields } {
  const merged = merge(liveObject, config, opts.meta);
  const lastSet = managers.get(manager);
  const next: ManagedFields = new Map(managers);
  next.set(manager, { set: opts.ignored(toFieldSet(config, opts.meta)), apiVersion, applied: true });
  // Only what it applied before and applies no more can go: usually nothing, and no prune.
  const dropped = lastSet ? difference(lastSet.set, next.get(manager)!.set) : undefined;
  const object = dropped && !isEmpty(dropped) ? prune(merged, next, lastSet!.set, opts.meta) : merged;
  const cmp = filtered(compare(liveObject, object, opts.meta), opts.ignored);
  return { object, managers: takeOwnership(cmp, next, manager, force) };
}

/**
 * Removes what the applier owned last time and does not apply now, unless another applier (or
 * its own new config) claims it; nothing outside its last set is ever removed.
 */
function prune(
  merged: unknown,
  managers: ManagedFields,
  lastSet: FieldSet,
  meta: PatchMeta | undefined,
): unknown {
  const mergedSet = toFieldSet(merged, meta);
  let claimed: FieldSet = { member: false, children: new Map() };
  for (const vs of managers.values()) if (vs.applied) claimed = union(claimed, vs.set);
  // addBackOwnedItems: remove the last set, then put back what appliers claim.
  const prunedSet = toFieldSet(removeItems(merged, lastSet, meta), meta);
  const ownedBack = removeItems(merged, difference(mergedSet, union(prunedSet, claimed)), meta);
  // addBackDanglingItems: only what the last set held may go.
  const gone = intersection(difference(mergedSet, toFieldSet(ownedBack, meta)), lastSet);
  return removeItems(merged, gone, meta);
}
