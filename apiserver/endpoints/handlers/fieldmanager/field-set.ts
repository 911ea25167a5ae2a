/**
 * A set of field paths, the unit of ownership in server-side apply, kept as the tree its wire
 * form (`fieldsType: FieldsV1`) already is: each node is one path element, `f:spec` (a field),
 * `k:{"name":"c"}` (an associative-list item by its key), `v:"x"` (a set item), `i:3` (an index),
 * and `.` marks that the path to the node is itself a member, not only its children.
 *
 * Mirrors structured-merge-diff `fieldpath/set.go` (Set: Union, Difference, Intersection, Empty),
 * `fieldpath/serialize.go` / `serialize-pe.go` (the FieldsV1 JSON form) and `fieldpath/path.go`
 * (Path.String: `.spec.containers[name="c"].image`, the form conflict messages print). Mirrors
 * apimachinery `pkg/util/managedfields/internal/fields.go` too (decoding FieldsV1). Differences: the
 * elements stay in their encoded string form (no PathElement structs), and a decoded set deeper
 * than MAX_DEPTH is refused rather than walked.
 */

/** One node: whether its own path is a member, and its children by encoded path element. */
export interface FieldSet {
  member: boolean;
  children: Map<string, FieldSet>;
}

/** Deeper than any served kind nests; a deeper FieldsV1 or object is refused or kept whole. */
export const MAX_DEPTH = 64;

export function emptySet(): FieldSet {
  return { member: false, children: new Map() };
}

export function isEmpty(s: FieldSet): boolean {
  return !s.member && s.children.size === 0;
}

/** Adds one path (a list of encoded elements) to a set being built, in place. */
export function insert(s: FieldSet, path: readonly string[]): void {
  let node = s;
  for (const pe of path) node = descend(node, pe);
  node.member = true;
}

/** The child at `pe` of a set being built, made when missing. */
export function descend(s: FieldSet, pe: string): FieldSet {
  let c = s.children.get(pe);
  if (!c) {
    c = emptySet();
    s.children.set(pe, c);
  }
  return c;
}

/** The node for a path prefix, if the set has one. */
export function child(s: FieldSet, pe: string): FieldSet | undefined {
  return s.children.get(pe);
}

// A set is never changed once built (only insert and descend build), so results share the
// subtrees an operation leaves alone instead of copying them.

export function union(a: FieldSet, b: FieldSet): FieldSet {
  if (isEmpty(b)) return a;
  if (isEmpty(a)) return b;
  const out: FieldSet = { member: a.member || b.member, children: new Map(a.children) };
  for (const [pe, c] of b.children) {
    const mine = a.children.get(pe);
    out.children.set(pe, mine ? union(mine, c) : c);
  }
  return out;
}

/** The members of `a` that are not members of `b`. */
export function difference(a: FieldSet, b: FieldSet): FieldSet {
  if (isEmpty(a) || isEmpty(b)) return a;
  const out: FieldSet = { member: a.member && !b.member, children: new Map(a.children) };
  for (const [pe, c] of b.children) {
    const mine = a.children.get(pe);
    if (!mine) continue;
    const d = difference(mine, c);
    if (isEmpty(d)) out.children.delete(pe);
    else out.children.set(pe, d);
  }
  return out;
}

export function intersection(a: FieldSet, b: FieldSet): FieldSet {
  const out: FieldSet = { member: a.member && b.member, children: new Map() };
  const [small, large] = a.children.size <= b.children.size ? [a, b] : [b, a];
  for (const [pe, c] of small.children) {
    const other = large.children.get(pe);
    if (!other) continue;
    const i = intersection(c, other);
    if (!isEmpty(i)) out.children.set(pe, i);
  }
  return out;
}

/** Every member path, parents before children, elements in sorted order. */
export function members(s: FieldSet, prefix: string[] = []): string[][] {
  const out: string[][] = [];
  if (s.member && prefix.length) out.push(prefix);
  for (const pe of [...s.children.keys()].sort()) out.push(...members(s.children.get(pe)!, [...prefix, pe]));
  return out;
}

/** A field element: `f:name`. */
export const fieldElement = (name: string): string => `f:${name}`;

/** A key element: `k:{"containerPort":80,"protocol":"TCP"}`, the key fields in name order. */
export function keyElement(key: Record<string, unknown>): string {
  const fields = Object.keys(key)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${JSON.stringify(key[k])}`);
  return `k:{${fields.join(',')}}`;
}

/** A value element, for an item of a set-typed list: `v:"kubernetes"`. */
export const valueElement = (value: unknown): string => `v:${JSON.stringify(value)}`;

/** The FieldsV1 form: `{"f:metadata":{"f:labels":{".":{},"f:app":{}}}}`. */
export function toFieldsV1(s: FieldSet): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  // A member with children says so with `.`; a leaf member is just `{}`.
  if (s.member && s.children.size) out['.'] = {};
  for (const pe of [...s.children.keys()].sort()) out[pe] = toFieldsV1(s.children.get(pe)!);
  return out;
}

/** Decodes FieldsV1; throws on anything that is not a well-formed set (the caller decides). */
export function fromFieldsV1(value: unknown, depth = 0): FieldSet {
  if (depth > MAX_DEPTH) throw new Error('FieldsV1 nests too deep');
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error('FieldsV1 nodes must be objects');
  const out = emptySet();
  for (const [pe, v] of Object.entries(value)) {
    if (pe === '.') {
      out.member = true;
      continue;
    }
    if (!/^[fkvi]:/.test(pe)) throw new Error(`invalid path element ${JSON.stringify(pe)}`);
    if (pe[0] === 'k' || pe[0] === 'v') JSON.parse(pe.slice(2));
    if (pe[0] === 'i' && !/^i:\d+$/.test(pe)) throw new Error(`invalid index ${JSON.stringify(pe)}`);
    out.children.set(pe, fromFieldsV1(v, depth + 1));
  }
  // A leaf `{}` under a parent is that path as a member (`f:app: {}`).
  if (depth > 0 && out.children.size === 0) out.member = true;
  return out;
}

/** Path.String: `.spec.containers[name="c"].ports[containerPort=80,protocol="TCP"]`. */
export function pathString(path: readonly string[]): string {
  return path
    .map((pe) => {
      const body = pe.slice(2);
      switch (pe[0]) {
        case 'f':
          return `.${body}`;
        case 'k': {
          const key = JSON.parse(body) as Record<string, unknown>;
          return `[${Object.entries(key)
            .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
            .join(',')}]`;
        }
        case 'v':
          return `[=${body}]`;
        default:
          return `[${body}]`;
      }
    })
    .join('');
}
