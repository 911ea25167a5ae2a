/**
 * An object read through its schema, the four walks server-side apply needs: the set of fields a
 * configuration sets (ToFieldSet), what changed between two objects (Compare: added, modified,
 * removed), a configuration merged into the live object (Merge), and items taken out by path
 * (RemoveItems).
 *
 * Mirrors structured-merge-diff `typed/tofieldset.go`, `typed/compare.go`, `typed/merge.go` and
 * `typed/remove.go`, with the schema reduced to what api/patch-meta.ts knows: objects are granular
 * maps, a list is associative (by its keys), a set, or atomic (replaced whole), and everything
 * else is a scalar leaf. Not modelled: unions, `x-kubernetes-map-type: atomic` maps, per-field
 * scalar types (a config may set a string where an integer belongs; validation answers that),
 * and list order after a merge (live items keep their places, new items go last).
 */
import { StatusError } from '../../../../shared/status.js';
import { isRecord, jsonEqual } from '../../../api/json-values.js';
import type { PatchMeta } from '../../../api/patch-meta.js';
import {
  child,
  descend,
  emptySet,
  fieldElement,
  insert,
  isEmpty,
  keyElement,
  MAX_DEPTH,
  valueElement,
  type FieldSet,
} from './field-set.js';

type Obj = Record<string, unknown>;
type ListType = { kind: 'map'; keys: string[]; defaults: Obj } | { kind: 'set' } | { kind: 'atomic' };

/** `+listType`: associative by key, a set of scalars, or atomic (the default for lists). */
function listType(meta: PatchMeta | undefined): ListType {
  if (!meta?.merge) return { kind: 'atomic' };
  if (!meta.mergeKey) return { kind: 'set' };
  return { kind: 'map', keys: meta.listMapKeys ?? [meta.mergeKey], defaults: meta.keyDefaults ?? {} };
}

const fieldMeta = (meta: PatchMeta | undefined, name: string): PatchMeta | undefined => meta?.fields?.[name];
/** The schema of each item of an associative list: its fields. */
const itemMeta = (meta: PatchMeta | undefined): PatchMeta | undefined =>
  meta?.fields ? { fields: meta.fields } : undefined;

/** A value the schema cannot read (an item without its key, a duplicate key): a 400 for apply. */
export class TypedError extends StatusError {
  constructor(path: readonly string[], why: string) {
    super(StatusError.of(400, `${pathText(path)}: ${why}`, 'BadRequest').status);
  }
}

function pathText(path: readonly string[]): string {
  return path.map((pe) => (pe.startsWith('f:') ? `.${pe.slice(2)}` : `[${pe.slice(2)}]`)).join('') || '.';
}

/** The key element of one associative-list item (missing key fields take their defaults). */
function keyOf(item: unknown, lt: { keys: string[]; defaults: Obj }, path: string[], i: number): string {
  if (!isRecord(item)) throw new TypedError(path, `element ${i}: expected map, got ${JSON.stringify(item)}`);
  const key: Obj = {};
  for (const k of lt.keys) {
    const v = item[k] ?? lt.defaults[k];
    if (v === undefined || v === null) {
      throw new TypedError(
        path,
        `element ${i}: associative list with keys has an element that omits key field ${JSON.stringify(k)} (and doesn't have default value)`,
      );
    }
    key[k] = v;
  }
  return keyElement(key);
}

/** The items of an associative list by key element; a duplicate key is refused. */
function byKey(list: unknown[], lt: { keys: string[]; defaults: Obj }, path: string[]): Map<string, unknown> {
  const out = new Map<string, unknown>();
  list.forEach((item, i) => {
    const pe = keyOf(item, lt, path, i);
    if (out.has(pe)) throw new TypedError(path, `duplicate entries for key ${pe.slice(2)}`);
    out.set(pe, item);
  });
  return out;
}

/** ToFieldSet: every leaf, every list item, every empty map the value sets. */
export function toFieldSet(value: unknown, meta: PatchMeta | undefined): FieldSet {
  const out = emptySet();
  const under = (node: FieldSet, pe: string, fill: (c: FieldSet) => void): void => {
    const c = descend(node, pe);
    fill(c);
    if (isEmpty(c)) node.children.delete(pe); // an empty list sets nothing
  };
  const walk = (v: unknown, m: PatchMeta | undefined, node: FieldSet, path: string[]): void => {
    if (path.length > MAX_DEPTH) {
      node.member = true;
      return;
    }
    if (isRecord(v)) {
      const entries = Object.entries(v).filter(([, x]) => x !== undefined);
      if (!entries.length && path.length) node.member = true;
      for (const [k, x] of entries) {
        const pe = fieldElement(k);
        under(node, pe, (c) => walk(x, fieldMeta(m, k), c, [...path, pe]));
      }
      return;
    }
    if (Array.isArray(v)) {
      const lt = listType(m);
      if (lt.kind === 'atomic') node.member = true;
      else if (lt.kind === 'set') for (const x of v) descend(node, valueElement(x)).member = true;
      else {
        for (const [pe, item] of byKey(v, lt, path)) {
          const c = descend(node, pe);
          c.member = true;
          walk(item, itemMeta(m), c, [...path, pe]);
          // The item's own path is what `.` says; its fields are below it.
          c.member = true;
        }
      }
      return;
    }
    node.member = true;
  };
  walk(value, meta, out, []);
  out.member = false;
  return out;
}

export interface Comparison {
  added: FieldSet;
  modified: FieldSet;
  removed: FieldSet;
}

type Shape = 'map' | 'list' | 'leaf';
const shapeOf = (v: unknown, depth: number): Shape =>
  depth > MAX_DEPTH ? 'leaf' : isRecord(v) ? 'map' : Array.isArray(v) ? 'list' : 'leaf';

/** Compare: which paths `rhs` adds to, changes in, or removes from `lhs`. */
export function compare(lhs: unknown, rhs: unknown, meta: PatchMeta | undefined): Comparison {
  const out: Comparison = { added: emptySet(), modified: emptySet(), removed: emptySet() };
  const walk = (l: unknown, r: unknown, m: PatchMeta | undefined, path: string[]): void => {
    if (l === undefined && r === undefined) return;
    if (l === undefined || r === undefined) {
      // A node that appears or goes: itself and everything under it.
      const present = l === undefined ? r : l;
      if (path.length) insert(l === undefined ? out.added : out.removed, path);
      for (const [pe, c] of childMap(present, m, path)) {
        if (l === undefined) walk(undefined, c.value, c.meta, [...path, pe]);
        else walk(c.value, undefined, c.meta, [...path, pe]);
      }
      return;
    }
    // Equal subtrees hold no change: one deep comparison instead of a walk (the common case).
    if (jsonEqual(l, r)) return;
    const ls = shapeOf(l, path.length);
    const rs = shapeOf(r, path.length);
    // null against a map or list is that container empty (a Go nil slice or map), not a change of kind.
    const lc = l === null && rs !== 'leaf' ? (rs === 'map' ? {} : []) : l;
    const rc = r === null && ls !== 'leaf' ? (ls === 'map' ? {} : []) : r;
    const lcs = shapeOf(lc, path.length);
    if (
      lcs !== shapeOf(rc, path.length) ||
      lcs === 'leaf' ||
      (lcs === 'list' && listType(m).kind === 'atomic')
    ) {
      if (!jsonEqual(lc, rc)) insert(out.modified, path);
      return;
    }
    const lm = childMap(lc, m, path);
    const rm = childMap(rc, m, path);
    for (const [pe, c] of lm) walk(c.value, rm.get(pe)?.value, c.meta, [...path, pe]);
    for (const [pe, c] of rm) if (!lm.has(pe)) walk(undefined, c.value, c.meta, [...path, pe]);
  };
  walk(lhs, rhs, meta, []);
  return out;
}

/** The children of a map or non-atomic list by path element (none for a leaf or atomic list). */
function childMap(
  v: unknown,
  m: PatchMeta | undefined,
  path: string[],
): Map<string, { value: unknown; meta: PatchMeta | undefined }> {
  const out = new Map<string, { value: unknown; meta: PatchMeta | undefined }>();
  if (path.length > MAX_DEPTH) return out;
  if (isRecord(v)) {
    for (const [k, x] of Object.entries(v)) {
      if (x !== undefined) out.set(fieldElement(k), { value: x, meta: fieldMeta(m, k) });
    }
  } else if (Array.isArray(v)) {
    const lt = listType(m);
    if (lt.kind === 'set') for (const x of v) out.set(valueElement(x), { value: x, meta: undefined });
    else if (lt.kind === 'map')
      for (const [pe, x] of byKey(v, lt, path)) out.set(pe, { value: x, meta: itemMeta(m) });
  }
  return out;
}

/** Merge: the configuration's values over the live object's (live keys it does not name stay). */
export function merge(live: unknown, config: unknown, meta: PatchMeta | undefined, depth = 0): unknown {
  if (config === undefined) return structuredClone(live);
  if (config === null) return undefined;
  if (depth > MAX_DEPTH) return structuredClone(config);
  if (isRecord(config)) {
    const out: Obj = isRecord(live) ? structuredClone(live) : {};
    for (const [k, v] of Object.entries(config)) {
      const merged = merge(out[k], v, fieldMeta(meta, k), depth + 1);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    }
    return out;
  }
  if (Array.isArray(config)) {
    const lt = listType(meta);
    if (lt.kind === 'atomic' || !Array.isArray(live)) return structuredClone(config);
    const out = structuredClone(live);
    if (lt.kind === 'set') {
      const present = new Set(out.map(valueElement));
      for (const x of config) {
        if (!present.has(valueElement(x))) out.push(structuredClone(x));
        present.add(valueElement(x));
      }
      return out;
    }
    const index = new Map([...byKey(out, lt, []).keys()].map((pe, i) => [pe, i]));
    for (const [pe, item] of byKey(config, lt, [])) {
      const i = index.get(pe);
      const merged = merge(i === undefined ? undefined : out[i], item, itemMeta(meta), depth + 1);
      if (i === undefined) out.push(merged);
      else out[i] = merged;
    }
    return out;
  }
  return config;
}

/**
 * RemoveItems: a copy of `value` without the member paths of `set` (each with what is under it).
 * A map or list emptied by the removal goes too, as Go's omitempty drops an empty map or slice.
 */
export function removeItems(value: unknown, set: FieldSet, meta: PatchMeta | undefined): unknown {
  const out = structuredClone(value);
  prune(out, set, meta, []);
  return out;
}

function prune(v: unknown, set: FieldSet, m: PatchMeta | undefined, path: string[]): void {
  if (isRecord(v)) {
    for (const [pe, s] of set.children) {
      if (!pe.startsWith('f:')) continue;
      const k = pe.slice(2);
      if (!(k in v)) continue;
      if (s.member) {
        delete v[k];
        continue;
      }
      if (emptiedBy(v[k], s, fieldMeta(m, k), [...path, pe])) delete v[k];
    }
    return;
  }
  if (!Array.isArray(v)) return;
  const lt = listType(m);
  if (lt.kind === 'atomic') return;
  for (let i = v.length - 1; i >= 0; i--) {
    const pe = lt.kind === 'set' ? valueElement(v[i]) : keyOf(v[i], lt, path, i);
    const s = child(set, pe);
    if (!s) continue;
    if (s.member) v.splice(i, 1);
    else if (lt.kind === 'map' && emptiedBy(v[i], s, itemMeta(m), [...path, pe])) v.splice(i, 1);
  }
}

/** Prunes inside a map or list; true when that emptied it. */
function emptiedBy(v: unknown, s: FieldSet, m: PatchMeta | undefined, path: string[]): boolean {
  const size = (x: unknown) => (isRecord(x) ? Object.keys(x).length : Array.isArray(x) ? x.length : -1);
  const before = size(v);
  prune(v, s, m, path);
  return before > 0 && size(v) === 0;
}
