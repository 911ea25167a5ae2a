/**
 * Compare two V8 heap snapshots (e.g. from `node dist/bench/soak-heap.js --snapshots --keep DIR`):
 * objects counted and summed (self size) by type and constructor name, sorted by the growth in
 * count. `--retainers NAME` also prints, for objects named NAME that are in B and whose id is not
 * in A (new since A; NAME may be TYPE:NAME, e.g. "code:"), their shortest retaining paths from the GC roots (the last --depth steps),
 * grouped, which points at what holds them.
 *
 * --by-name splits every type (code, hidden, string, …) by name too.
 *
 * Run: node dist/bench/heap-diff.js A.heapsnapshot B.heapsnapshot [--top 30] [--by-name]
 *      [--retainers NAME] [--depth 6]
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';

interface Raw {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[], ...unknown[]];
      edge_fields: string[];
      edge_types: [string[], ...unknown[]];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

interface Heap {
  raw: Raw;
  nf: number;
  ef: number;
  nodeType: (i: number) => string;
  nodeName: (i: number) => string;
  nodeId: (i: number) => number;
  nodeSize: (i: number) => number;
  count: number;
  /** first edge index (in edge records) of node i */
  firstEdge: Int32Array;
}

function load(file: string): Heap {
  const raw = JSON.parse(fs.readFileSync(file, 'utf8')) as Raw;
  const m = raw.snapshot.meta;
  const nf = m.node_fields.length;
  const ef = m.edge_fields.length;
  const [T, N, ID, SZ, EC] = ['type', 'name', 'id', 'self_size', 'edge_count'].map((f) =>
    m.node_fields.indexOf(f),
  );
  const count = raw.nodes.length / nf;
  const firstEdge = new Int32Array(count + 1);
  for (let i = 0, e = 0; i < count; i++) {
    firstEdge[i] = e;
    e += raw.nodes[i * nf + EC!]!;
    firstEdge[i + 1] = e;
  }
  return {
    raw,
    nf,
    ef,
    nodeType: (i) => m.node_types[0][raw.nodes[i * nf + T!]!]!,
    nodeName: (i) => raw.strings[raw.nodes[i * nf + N!]!]!,
    nodeId: (i) => raw.nodes[i * nf + ID!]!,
    nodeSize: (i) => raw.nodes[i * nf + SZ!]!,
    count,
    firstEdge,
  };
}

let byName = false;
const key = (h: Heap, i: number): string => {
  const t = h.nodeType(i);
  const n = h.nodeName(i);
  return t === 'object' || t === 'closure' || t === 'native' || byName ? `${t}:${n.slice(0, 80)}` : `${t}`;
};

function histogram(h: Heap): Map<string, { n: number; size: number }> {
  const out = new Map<string, { n: number; size: number }>();
  for (let i = 0; i < h.count; i++) {
    const k = key(h, i);
    const e = out.get(k) ?? { n: 0, size: 0 };
    e.n++;
    e.size += h.nodeSize(i);
    out.set(k, e);
  }
  return out;
}

/**
 * For objects named NAME that are new in B (id not in A): their shortest path from the GC roots
 * (breadth-first over strong edges, as DevTools' "distance"), grouped by path.
 */
function rootPaths(a: Heap, b: Heap, name: string, depth: number): void {
  const old = new Set<number>();
  for (let i = 0; i < a.count; i++) old.add(a.nodeId(i));
  const m = b.raw.snapshot.meta;
  const [ET, EN, ETO] = ['type', 'name_or_index', 'to_node'].map((f) => m.edge_fields.indexOf(f));
  const edgeType = (e: number) => m.edge_types[0][b.raw.edges[e * b.ef + ET!]!]!;
  const edgeLabel = (e: number): string => {
    const et = edgeType(e);
    const v = b.raw.edges[e * b.ef + EN!]!;
    return et === 'element' || et === 'hidden' ? `[${v}]` : String(b.raw.strings[v]);
  };
  // NAME, or TYPE:NAME (e.g. "code:" for unnamed code objects).
  const matches = (i: number) =>
    name.includes(':') ? `${b.nodeType(i)}:${b.nodeName(i)}` === name : b.nodeName(i) === name;
  const parent = new Int32Array(b.count).fill(-1);
  const via = new Int32Array(b.count).fill(-1);
  parent[0] = 0;
  const queue = [0];
  for (let q = 0; q < queue.length; q++) {
    const i = queue[q]!;
    for (let e = b.firstEdge[i]!; e < b.firstEdge[i + 1]!; e++) {
      if (edgeType(e) === 'weak' || edgeType(e) === 'shortcut') continue;
      const to = b.raw.edges[e * b.ef + ETO!]! / b.nf;
      if (parent[to] !== -1) continue;
      parent[to] = i;
      via[to] = e;
      queue.push(to);
    }
  }
  const paths = new Map<string, number>();
  let fresh = 0;
  let unreachable = 0;
  for (let i = 0; i < b.count; i++) {
    if (!matches(i) || old.has(b.nodeId(i))) continue;
    fresh++;
    if (parent[i] === -1) {
      unreachable++;
      continue;
    }
    const parts: string[] = [];
    for (let cur = i; cur !== 0; cur = parent[cur]!) {
      parts.push(`${b.nodeType(cur)}:${b.nodeName(cur).slice(0, 40)}`);
      parts.push(`.${edgeLabel(via[cur]!).slice(0, 40)}`);
    }
    parts.reverse();
    const k = (parts.length > depth * 2 ? ['…', ...parts.slice(-depth * 2)] : parts).join(' ');
    paths.set(k, (paths.get(k) ?? 0) + 1);
  }
  console.log(
    `\n${fresh} objects named ${name} new in B (${unreachable} unreachable); shortest paths from the roots:`,
  );
  for (const [k, n] of [...paths].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`  ${n}×  ${k}`);
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      top: { type: 'string', default: '30' },
      retainers: { type: 'string' },
      depth: { type: 'string', default: '6' },
      'by-name': { type: 'boolean', default: false },
    },
  });
  const [fa, fb] = positionals;
  if (!fa || !fb) throw new Error('usage: heap-diff A.heapsnapshot B.heapsnapshot');
  byName = values['by-name'];
  const a = load(fa);
  const b = load(fb);
  const ha = histogram(a);
  const hb = histogram(b);
  const keys = new Set([...ha.keys(), ...hb.keys()]);
  const rows = [...keys].map((k) => {
    const x = ha.get(k) ?? { n: 0, size: 0 };
    const y = hb.get(k) ?? { n: 0, size: 0 };
    return { k, n0: x.n, n1: y.n, dn: y.n - x.n, ds: y.size - x.size };
  });
  const total = (h: Heap) => {
    let s = 0;
    for (let i = 0; i < h.count; i++) s += h.nodeSize(i);
    return s;
  };
  console.log(
    `A: ${a.count} nodes, ${(total(a) / 1024).toFixed(0)} KiB; B: ${b.count} nodes, ${(total(b) / 1024).toFixed(0)} KiB`,
  );
  console.log('count A -> B (Δ), Δ self size, type:name — by Δ size');
  for (const r of rows.sort((x, y) => y.ds - x.ds).slice(0, Number(values.top)))
    console.log(
      `  ${r.n0} -> ${r.n1} (${r.dn >= 0 ? '+' : ''}${r.dn})  ${(r.ds / 1024).toFixed(1)} KiB  ${r.k}`,
    );
  console.log('by Δ count');
  for (const r of rows.sort((x, y) => y.dn - x.dn).slice(0, Number(values.top)))
    console.log(
      `  ${r.n0} -> ${r.n1} (${r.dn >= 0 ? '+' : ''}${r.dn})  ${(r.ds / 1024).toFixed(1)} KiB  ${r.k}`,
    );
  if (values.retainers) rootPaths(a, b, values.retainers, Number(values.depth));
}

main();
