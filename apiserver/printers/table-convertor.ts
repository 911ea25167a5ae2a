/**
 * Server-side renderings of a response object: a `meta.k8s.io` Table (what `kubectl get` prints)
 * or PartialObjectMetadata(List), for objects, lists and watch events.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/response.go` (transformResponseObject,
 * asTable, asPartialObjectMetadata(List)) and `pkg/registry/rest/table.go` (the default convertor);
 * `includeObject=None|Metadata|Object` chooses what each row carries (Metadata by default, a
 * PartialObjectMetadata). Every Table carries its column definitions, watch events included:
 * kubectl prints the header again only when the columns change.
 */
import { StatusError } from '../../shared/status.js';
import { badRequest } from '../api/errors.js';
import type { KubeList, KubeObject } from '../../shared/api/core-v1.js';
import { isRecord } from '../api/json-values.js';
import type { Target } from '../endpoints/negotiation.js';
import { defaultPrinter, PRINTERS, type RowCondition, type TableColumnDefinition } from './printers.js';

export type IncludeObject = 'None' | 'Metadata' | 'Object';

export interface TableRow {
  cells: unknown[];
  conditions?: RowCondition[];
  object?: unknown;
}

export interface Table {
  kind: 'Table';
  apiVersion: string;
  metadata: { resourceVersion?: string; continue?: string };
  columnDefinitions: TableColumnDefinition[];
  rows: TableRow[];
}

export function includeObjectPolicy(value: string | null): IncludeObject {
  if (value === null || value === '') return 'Metadata';
  if (value === 'None' || value === 'Metadata' || value === 'Object') return value;
  throw badRequest(
    `includeObject: Unsupported value: ${JSON.stringify(value)}: supported values: "Metadata", "None", "Object"`,
  );
}

export function isList(v: unknown): v is KubeList {
  return isRecord(v) && Array.isArray(v.items);
}

function partial(obj: KubeObject, groupVersion: string): KubeObject {
  return { kind: 'PartialObjectMetadata', apiVersion: groupVersion, metadata: obj.metadata };
}

/** Renders a typed object, or a list whose items are of `itemKind`, as the target asks. */
export function transform(
  value: KubeObject | KubeList,
  target: Target,
  itemKind: string,
  includeObject: IncludeObject = 'Metadata',
  now = new Date(),
): unknown {
  if (!target.as) return value;
  const gv = target.groupVersion!;
  const items: KubeObject[] = isList(value)
    ? value.items.map((i) => ({ kind: itemKind, apiVersion: 'v1', ...i }))
    : [value];
  const resourceVersion = isList(value) ? value.metadata.resourceVersion : value.metadata.resourceVersion;
  switch (target.as) {
    case 'PartialObjectMetadata':
      if (isList(value)) throw notAcceptable('PartialObjectMetadata', 'a list');
      return partial(value, gv);
    case 'PartialObjectMetadataList':
      if (!isList(value)) throw notAcceptable('PartialObjectMetadataList', 'an object');
      return {
        kind: 'PartialObjectMetadataList',
        apiVersion: gv,
        metadata: { resourceVersion },
        items: items.map((i) => ({ metadata: i.metadata })),
      };
    case 'Table': {
      const printer = PRINTERS[itemKind] ?? defaultPrinter;
      const table: Table = {
        kind: 'Table',
        apiVersion: gv,
        metadata: resourceVersion === undefined ? {} : { resourceVersion },
        columnDefinitions: printer.columns,
        rows: items.map((obj) => {
          const { cells, conditions } = printer.row(obj, now);
          const row: TableRow = { cells };
          if (conditions) row.conditions = conditions;
          if (includeObject === 'Metadata') row.object = partial(obj, gv);
          else if (includeObject === 'Object') row.object = obj;
          return row;
        }),
      };
      return table;
    }
    default:
      throw notAcceptable(target.as, 'this resource');
  }
}

function notAcceptable(as: string, what: string): StatusError {
  return StatusError.of(406, `${as} is not a valid rendering of ${what}`, 'NotAcceptable');
}
