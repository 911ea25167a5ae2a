/**
 * `metadata.managedFields` read and written: each entry (manager, operation Apply or Update,
 * apiVersion, time, `fieldsType: FieldsV1`, fieldsV1, subresource) becomes a manager identity and
 * the set it owns, and back, in upstream's order.
 *
 * Mirrors apimachinery `pkg/util/managedfields/internal/managedfields.go` (DecodeManagedFields,
 * EncodeObjectManagedFields, sortEncodedManagedFields: Apply before Update, then by time, manager,
 * apiVersion, subresource) and `buildmanagerinfo.go` (BuildManagerIdentifier: the entry without
 * fields and time, and without apiVersion for an applier, as JSON). A malformed list is an Error
 * the caller turns into upstream's answer (an update keeps the live entries; an apply fails).
 */
import type { ManagedFieldsEntry } from '../../../../shared/api/core-v1.js';
import { isRecord } from '../../../api/json-values.js';
import { fromFieldsV1, isEmpty, toFieldsV1 } from './field-set.js';
import type { ManagedFields } from './updater.js';

export type Operation = 'Apply' | 'Update';

export interface ManagerInfo {
  manager: string;
  operation: Operation;
  apiVersion?: string;
  subresource?: string;
}

/** The fields per manager identity, and when each last changed something. */
export interface Managed {
  fields: ManagedFields;
  times: Map<string, string>;
}

export const emptyManaged = (): Managed => ({ fields: new Map(), times: new Map() });

/** BuildManagerIdentifier: `{"manager":"kubectl","operation":"Apply"}`, keys in the Go struct's order. */
export function managerIdentifier(info: ManagerInfo): string {
  const id: Record<string, string> = { manager: info.manager, operation: info.operation };
  if (info.operation === 'Update' && info.apiVersion) id.apiVersion = info.apiVersion;
  if (info.subresource) id.subresource = info.subresource;
  return JSON.stringify(id);
}

export function parseIdentifier(id: string): ManagerInfo {
  return JSON.parse(id) as ManagerInfo;
}

/** DecodeManagedFields; throws on an entry that is not a valid one. */
export function decodeManagedFields(entries: unknown): Managed {
  const out = emptyManaged();
  if (entries === undefined || entries === null) return out;
  if (!Array.isArray(entries)) throw new Error('managedFields must be a list');
  for (const e of entries) {
    if (!isRecord(e)) throw new Error('a managedFields entry must be an object');
    if (e.operation !== 'Apply' && e.operation !== 'Update')
      throw new Error(`operation must be "Apply" or "Update", not ${JSON.stringify(e.operation)}`);
    if (e.fieldsType !== undefined && e.fieldsType !== 'FieldsV1')
      throw new Error(`unsupported fieldsType ${JSON.stringify(e.fieldsType)}`);
    for (const k of ['manager', 'apiVersion', 'time', 'subresource'] as const) {
      if (e[k] !== undefined && typeof e[k] !== 'string') throw new Error(`${k} must be a string`);
    }
    const info: ManagerInfo = {
      manager: (e.manager as string | undefined) ?? '',
      operation: e.operation,
      apiVersion: e.apiVersion as string | undefined,
      subresource: e.subresource as string | undefined,
    };
    const id = managerIdentifier(info);
    if (out.fields.has(id)) throw new Error(`duplicate managedFields entry ${id}`);
    const set = fromFieldsV1(e.fieldsV1 ?? {});
    out.fields.set(id, { set, apiVersion: info.apiVersion ?? '', applied: e.operation === 'Apply' });
    if (typeof e.time === 'string') out.times.set(id, e.time);
  }
  return out;
}

/** EncodeObjectManagedFields: the entries, sorted as upstream; undefined when there are none. */
export function encodeManagedFields(managed: Managed): ManagedFieldsEntry[] | undefined {
  const entries: ManagedFieldsEntry[] = [];
  for (const [id, vs] of managed.fields) {
    if (isEmpty(vs.set)) continue;
    const info = parseIdentifier(id);
    const entry: ManagedFieldsEntry = { manager: info.manager, operation: info.operation };
    if (vs.apiVersion) entry.apiVersion = vs.apiVersion;
    const time = managed.times.get(id);
    if (time) entry.time = time;
    entry.fieldsType = 'FieldsV1';
    entry.fieldsV1 = toFieldsV1(vs.set);
    if (info.subresource) entry.subresource = info.subresource;
    entries.push(entry);
  }
  const seconds = (t?: string) => (t ? Math.floor(Date.parse(t) / 1000) : 0);
  const cmp = (a = '', b = '') => (a < b ? -1 : a > b ? 1 : 0);
  entries.sort(
    (p, q) =>
      cmp(p.operation, q.operation) ||
      seconds(p.time) - seconds(q.time) ||
      cmp(p.manager, q.manager) ||
      cmp(p.apiVersion, q.apiVersion) ||
      cmp(p.subresource, q.subresource),
  );
  return entries.length ? entries : undefined;
}
