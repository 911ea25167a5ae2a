/**
 * Strategic merge patch (`application/strategic-merge-patch+json`): a JSON merge patch in which
 * lists tagged `patchStrategy: merge` merge element by element, by their merge key, and the
 * directives kubectl writes are understood: `$patch: replace | delete | merge`, `$retainKeys`,
 * `$setElementOrder/<list>` and `$deleteFromPrimitiveList/<list>`.
 *
 * Mirrors apimachinery `pkg/util/strategicpatch/patch.go` (StrategicMergePatch → mergeMap /
 * mergeSlice, the directive handling and the "does not contain declared merge key" error), driven
 * by the table in api/patch-meta.ts instead of Go struct tags. Not implemented: `$patch: merge`
 * inside lists of scalars and the "replace keys" (retainKeys) strategy's server-side checks.
 */
import { badRequest } from '../api/errors.js';
import { isRecord, jsonEqual } from '../api/json-values.js';
import type { PatchMeta } from '../api/patch-meta.js';

const SET_ORDER = '$setElementOrder/';
const DELETE_FROM_PRIMITIVE = '$deleteFromPrimitiveList/';

type Obj = Record<string, unknown>;

/** Applies `patch` to `original` (neither is modified); undefined means "delete the object". */
export function strategicMergePatch(original: unknown, patch: Obj, meta: PatchMeta | undefined): Obj {
  const merged = mergeMap(isRecord(original) ? original : {}, patch, meta);
  if (merged === undefined) throw badRequest('a strategic merge patch may not delete the whole object');
  return merged;
}

function mergeMap(original: Obj, patch: Obj, meta: PatchMeta | undefined): Obj | undefined {
  const directive = patch.$patch;
  if (directive === 'delete') return undefined;
  if (directive === 'replace') return stripDirectives(patch) as Obj;
  if (directive !== undefined && directive !== 'merge')
    throw badRequest(`Unknown patch type: ${String(directive)} in map: ${JSON.stringify(patch)}`);

  const result: Obj = structuredClone(original);
  const retain = patch.$retainKeys;
  if (retain !== undefined) {
    if (!Array.isArray(retain)) throw badRequest('$retainKeys must be a list of field names');
    for (const k of Object.keys(result)) if (!retain.includes(k)) delete result[k];
  }
  const orders: [string, unknown[]][] = [];
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch' || k === '$retainKeys') continue;
    if (k.startsWith(SET_ORDER)) {
      if (!Array.isArray(v)) throw badRequest(`${k} must be a list`);
      orders.push([k.slice(SET_ORDER.length), v]);
      continue;
    }
    if (k.startsWith(DELETE_FROM_PRIMITIVE)) {
      const field = k.slice(DELETE_FROM_PRIMITIVE.length);
      if (!Array.isArray(v)) throw badRequest(`${k} must be a list`);
      const current = result[field];
      if (Array.isArray(current)) result[field] = current.filter((x) => !v.some((d) => jsonEqual(d, x)));
      continue;
    }
    const fieldMeta = meta?.fields?.[k];
    if (v === null) {
      delete result[k];
    } else if (isRecord(v)) {
      const merged = mergeMap(isRecord(result[k]) ? (result[k] as Obj) : {}, v, fieldMeta);
      if (merged === undefined) delete result[k];
      else result[k] = merged;
    } else if (Array.isArray(v) && fieldMeta?.merge) {
      result[k] = mergeList(Array.isArray(result[k]) ? (result[k] as unknown[]) : [], v, fieldMeta);
    } else {
      result[k] = stripDirectives(v);
    }
  }
  for (const [field, order] of orders) {
    const list = result[field];
    if (Array.isArray(list)) result[field] = sortByOrder(list, order, meta?.fields?.[field]?.mergeKey);
  }
  return result;
}

function mergeList(original: unknown[], patch: unknown[], meta: PatchMeta): unknown[] {
  const key = meta.mergeKey;
  if (patch.some((e) => isRecord(e) && e.$patch === 'replace')) {
    return patch.filter((e) => !(isRecord(e) && e.$patch !== undefined)).map(stripDirectives);
  }
  if (!key) {
    // A merged list of scalars is a set union in patch order (finalizers).
    const result = [...original];
    for (const e of patch) if (!result.some((x) => jsonEqual(x, e))) result.push(e);
    return result;
  }
  const result = structuredClone(original);
  for (const e of patch) {
    if (!isRecord(e) || e[key] === undefined) {
      throw badRequest(`map: ${JSON.stringify(e)} does not contain declared merge key: ${key}`);
    }
    const i = result.findIndex((x) => isRecord(x) && jsonEqual(x[key], e[key]));
    if (e.$patch === 'delete') {
      if (i >= 0) result.splice(i, 1);
      continue;
    }
    const merged = mergeMap(i >= 0 ? (result[i] as Obj) : {}, e, meta);
    if (merged === undefined) {
      if (i >= 0) result.splice(i, 1);
    } else if (i >= 0) {
      result[i] = merged;
    } else {
      result.push(merged);
    }
  }
  return result;
}

/** `$setElementOrder`: the listed elements first, in that order; the others keep theirs, after. */
function sortByOrder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const id = (e: unknown): unknown => (key && isRecord(e) ? e[key] : e);
  const rank = (e: unknown): number => {
    const i = order.findIndex((o) => jsonEqual(id(o), id(e)));
    return i < 0 ? order.length : i;
  };
  return list
    .map((e, i) => ({ e, i, r: rank(e) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.e);
}

/** A value set wholesale carries no directives into storage. */
function stripDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isRecord(v)) return v;
  const out: Obj = {};
  for (const [k, x] of Object.entries(v)) {
    if (
      k === '$patch' ||
      k === '$retainKeys' ||
      k.startsWith(SET_ORDER) ||
      k.startsWith(DELETE_FROM_PRIMITIVE)
    )
      continue;
    out[k] = stripDirectives(x);
  }
  return out;
}
