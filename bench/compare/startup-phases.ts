/**
 * Where a `kexec demo -- true` spends its time, phase by phase: runs a command N times with this
 * module preloaded (`node --import`), which timestamps the kubeconfig read, each `tls.connect`,
 * its handshake and its data, and the exit, then prints the median of each phase as a Markdown
 * table (bench/compare/findings.md, "kexec start-up"). Look for waits (a phase the client spends
 * idle) against CPU (compare with `node --cpu-prof`).
 *
 * Run: node dist/bench/compare/startup-phases.js [--runs 20] -- node bin/kexec.js --kubeconfig K demo -- true
 * Several commands: separate them with `---`; their runs interleave, one column each.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

type Marks = Record<string, number>;
const OUT_ENV = 'KEXEC_STARTUP_PHASES_OUT';

/** In the measured process: patch what the phases are read from, write the marks at exit. */
function record(out: string): void {
  const m: Marks = {};
  let n = 0;
  const connect = tls.connect;
  tls.connect = function (this: unknown, ...args: unknown[]) {
    const id = ++n;
    m[`c${id}`] = performance.now();
    const s = (connect as (...a: unknown[]) => tls.TLSSocket).apply(this, args);
    s.once('secureConnect', () => (m[`tls${id}`] = performance.now()));
    s.on('data', () => {
      m[`last${id}`] = performance.now();
      m[`first${id}`] ??= m[`last${id}`];
    });
    return s;
  } as typeof tls.connect;
  const readFileSync = fs.readFileSync;
  fs.readFileSync = function (this: unknown, p: unknown, ...a: unknown[]) {
    if (m.config === undefined && String(p).endsWith('kubeconfig')) m.config = performance.now();
    return (readFileSync as (...x: unknown[]) => unknown).call(this, p, ...a);
  } as typeof fs.readFileSync;
  process.on('exit', () => {
    m.exit = performance.now();
    m.boot = performance.nodeTiming.bootstrapComplete;
    fs.appendFileSync(out, `${JSON.stringify(m)}\n`);
  });
}

const PHASES: [string, (r: Marks) => number][] = [
  ['node start → bootstrap complete', (r) => r.boot!],
  ['bootstrap → kubeconfig read (loading modules, argv)', (r) => r.config! - r.boot!],
  ['kubeconfig read → pod GET dialled', (r) => r.c1! - r.config!],
  ['pod GET: dial → TLS handshake done', (r) => r.tls1! - r.c1!],
  ['pod GET: TLS done → response', (r) => r.first1! - r.tls1!],
  ['GET response → exec dialled', (r) => r.c2! - r.first1!],
  ['exec: dial → TLS handshake done', (r) => r.tls2! - r.c2!],
  ['exec: TLS done → 101', (r) => r.first2! - r.tls2!],
  ['exec: 101 → exit Status', (r) => r.last2! - r.first2!],
  ['exit Status → process exit', (r) => r.exit! - r.last2!],
  ['total', (r) => r.exit!],
];

function median(xs: number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  return v.length ? v[Math.floor(v.length / 2)]! : NaN;
}

function main(argv: string[]): void {
  let runs = 20;
  const i = argv.indexOf('--runs');
  if (i >= 0) runs = Number(argv[i + 1]);
  const dd = argv.indexOf('--');
  if (dd < 0 || !(runs > 0 && runs <= 1000)) {
    console.error('usage: startup-phases [--runs N] -- node SCRIPT ARGS... [--- node SCRIPT ARGS...]');
    process.exit(2);
  }
  const commands: string[][] = [[]];
  for (const a of argv.slice(dd + 1)) {
    if (a === '---') commands.push([]);
    else commands[commands.length - 1]!.push(a);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'startup-phases-'));
  const self = fileURLToPath(import.meta.url);
  try {
    for (let r = 0; r < runs; r++) {
      commands.forEach(([node, ...rest], c) => {
        const res = spawnSync(node!, ['--import', self, ...rest], {
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, [OUT_ENV]: path.join(dir, `${c}.jsonl`) },
          timeout: 60_000,
        });
        if (res.status !== 0) console.error(`run ${r} of command ${c + 1}: exit ${res.status ?? res.signal}`);
      });
    }
    const tables = commands.map((_, c) =>
      fs
        .readFileSync(path.join(dir, `${c}.jsonl`), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Marks),
    );
    console.log(
      `| phase (median of ${runs} runs, ms) | ${commands.map((_, c) => `command ${c + 1}`).join(' | ')} |`,
    );
    console.log(`|---|${commands.map(() => '---:').join('|')}|`);
    for (const [name, f] of PHASES) {
      console.log(`| ${name} | ${tables.map((t) => median(t.map(f)).toFixed(1)).join(' | ')} |`);
    }
    commands.forEach((cmd, c) => console.log(`\ncommand ${c + 1}: ${cmd.join(' ')}`));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env[OUT_ENV]) record(process.env[OUT_ENV]);
else if (process.argv[1] && fs.realpathSync(process.argv[1]) === fileURLToPath(import.meta.url))
  main(process.argv.slice(2));
