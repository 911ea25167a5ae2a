/**
 * BENCHMARKS.md from one run of the comparison bench: the machine, the tables, the ratios to the
 * anchors, the goals of issue #16 met or not, the plots (docs/bench/*.svg beside the file) and the
 * hand-written findings (bench/compare/findings.md, included as it is). The raw results are kept
 * in docs/bench/results.json (`npm run bench -- --from-json docs/bench/results.json` redoes the report).
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../../shared/package-root.js';
import { barChart, lineChart, type Bar, type Point } from './plots.js';

export interface Results {
  startedAt: string;
  finishedAt?: string;
  config: {
    mib: number;
    repeats: number;
    rttCount: number;
    execsSeconds: number;
    sessions: number;
    quick: boolean;
  };
  machine: Record<string, string | number>;
  load: { min: number; mean: number; max: number };
  peers: { path: string; tls: boolean; down: number; up: number; to101Ms: number; cpuMsPerMiB?: number }[];
  chain: {
    path: string;
    tls: boolean;
    stdout: number;
    stdin: number;
    cpuMsPerMiB?: { apiserver: number; kubelet: number; criShim: number };
  }[];
  portForward: { path: string; tls: boolean; mibPerSec: number }[];
  latency: {
    path: string;
    tls: boolean;
    to101P50?: number;
    to101P99?: number;
    rttP50: number;
    rttP99: number;
  }[];
  execs: { path: string; concurrency: number; rate: number; errors: number }[];
  idle: {
    path: string;
    sessions: number;
    openSeconds: number;
    allRunning: boolean;
    perSessionBytes: { apiserver: number; kubelet: number; criShim: number };
  }[];
  throttle?: string;
  /** cpuMs: user + system, mean (absent in results saved before it was measured). */
  startup: { command: string; meanMs: number; stddevMs: number; medianMs: number; cpuMs?: number }[];
  errors: string[];
}

const f1 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(1));
const f2 = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(2));
const mode = (tls: boolean): string => (tls ? 'TLS' : 'plain');

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');
}

interface Goal {
  goal: string;
  measured: string;
  met: boolean | undefined;
}

function goals(r: Results): Goal[] {
  const peer = (p: string, tls: boolean) => r.peers.find((x) => x.path === p && x.tls === tls);
  const chain = (p: string, tls: boolean) => r.chain.find((x) => x.path === p && x.tls === tls);
  const ratio = (a: number | undefined, b: number | undefined): number | undefined =>
    a !== undefined && b !== undefined && b > 0 ? a / b : undefined;
  const g: Goal[] = [];
  const atLeast = (goal: string, value: number | undefined, want: number, detail: string): void => {
    g.push({
      goal,
      measured: value === undefined ? 'not measured' : `${f2(value)} (${detail})`,
      met: value === undefined ? undefined : value >= want,
    });
  };
  const two = peer('raw Node splice ×2', false);
  const twoTls = peer('raw Node splice ×2', true);
  const spdy = chain('kexec SPDY spliced', false);
  atLeast(
    'chain plain kexec SPDY ≥ 0.6 × two raw splices',
    ratio(spdy?.stdout, two?.down),
    0.6,
    `${f1(spdy?.stdout)} / ${f1(two?.down)} MiB/s`,
  );
  const spdyTls = chain('kexec SPDY spliced', true);
  atLeast(
    'chain TLS kexec SPDY ≥ 0.6 × two TLS Node splices',
    ratio(spdyTls?.stdout, twoTls?.down),
    0.6,
    `${f1(spdyTls?.stdout)} / ${f1(twoTls?.down)} MiB/s`,
  );
  const wsTls = chain('kexec WS v5 translated', true);
  atLeast(
    'chain TLS kexec WS translated ≥ 0.6 × two TLS Node splices',
    ratio(wsTls?.stdout, twoTls?.down),
    0.6,
    `${f1(wsTls?.stdout)} / ${f1(twoTls?.down)} MiB/s`,
  );
  const kws = chain('kubectl WS v5 translated', true);
  const kspdy = chain('kubectl SPDY spliced', true);
  atLeast(
    'kubectl WS via translator ≥ 0.8 × kubectl SPDY spliced',
    ratio(kws?.stdout, kspdy?.stdout),
    0.8,
    `${f1(kws?.stdout)} / ${f1(kspdy?.stdout)} MiB/s`,
  );
  for (const tls of [false, true]) {
    const uah = peer('UpgradeAwareHandler ×1', tls);
    const nginx = peer('nginx ×1', tls);
    atLeast(
      `one UpgradeAwareHandler hop ≥ 1.0 × nginx (${mode(tls)})`,
      ratio(uah?.down, nginx?.down),
      1.0,
      `${f1(uah?.down)} / ${f1(nginx?.down)} MiB/s`,
    );
  }
  const ke = r.startup.find((s) => s.command === 'kexec demo -- true');
  const ku = r.startup.find((s) => s.command === 'kubectl exec demo -- true');
  const st = ratio(ke?.meanMs, ku?.meanMs);
  g.push({
    goal: '`kexec demo -- true` ≤ 1.0 × `kubectl exec demo -- true`',
    measured: st === undefined ? 'not measured' : `${f2(st)} (${f1(ke?.meanMs)} / ${f1(ku?.meanMs)} ms)`,
    met: st === undefined ? undefined : st <= 1.0,
  });
  for (const i of r.idle) {
    const worst = Math.max(i.perSessionBytes.apiserver, i.perSessionBytes.kubelet, i.perSessionBytes.criShim);
    g.push({
      goal: `${i.sessions} idle sessions (${i.path}) ≤ 64 KiB RSS per session per hop, no error`,
      measured: `worst hop ${f1(worst / 1024)} KiB${i.allRunning ? '' : ', NOT all running'}`,
      met: worst <= 64 * 1024 && i.allRunning && i.sessions >= 1000,
    });
  }
  const lat = r.latency.find((x) => x.path === 'kexec WS v5 translated' && x.tls);
  const base = r.latency.find((x) => x.path.startsWith('runtime only (CRI Exec + WS') && x.tls);
  const added = lat && base ? lat.rttP50 - base.rttP50 : undefined;
  g.push({
    goal: 'exec round trip added by the chain ≤ 15 ms p50 (TLS, kexec WS)',
    measured:
      added === undefined ? 'not measured' : `${f1(added)} ms (${f1(lat?.rttP50)} − ${f1(base?.rttP50)})`,
    met: added === undefined ? undefined : added <= 15,
  });
  return g;
}

export async function writeReport(r: Results, out: string): Promise<void> {
  const dir = path.dirname(out);
  const svgDir = path.join(dir, 'docs', 'bench');
  fs.mkdirSync(svgDir, { recursive: true });
  const s: string[] = [];
  const m = r.machine;
  s.push('# Benchmarks');
  s.push('');
  s.push(
    `Generated by \`npm run bench\`${r.config.quick ? ' **--quick** (development sizes: not for comparison)' : ''} ` +
      `(bench/compare/main.ts) on ${r.startedAt.slice(0, 16).replace('T', ' ')} UTC. Every figure below comes from this one run; ` +
      'each peer runs in its own process, on loopback.',
  );
  s.push('');
  s.push('## Machine');
  s.push('');
  s.push(
    table(
      ['', ''],
      [
        ['CPU', `${m.cpu}, ${m.cores} cores, ${m.memGiB} GiB`],
        ['kernel', String(m.kernel)],
        [
          'load average (1 min) during the run',
          `min ${f1(r.load.min)}, mean ${f1(r.load.mean)}, max ${f1(r.load.max)}`,
        ],
        ['Node.js / OpenSSL', `${m.node} / ${m.openssl}`],
        ['nginx', String(m.nginx)],
        ['haproxy', String(m.haproxy)],
        ['kubectl', String(m.kubectl)],
        ['hyperfine', String(m.hyperfine)],
        [
          'sizes',
          `${r.config.mib} MiB per transfer, median of ${r.config.repeats}; ${r.config.rttCount} round trips per path; ` +
            `${r.config.execsSeconds} s per execs/s figure; ${r.config.sessions} idle sessions`,
        ],
      ],
    ),
  );
  s.push('');
  s.push(
    'The machine is shared (other builds and tests run on it), so absolute figures are noisy; the ratios compare ' +
      'paths measured minutes apart in the same run.',
  );

  s.push('');
  s.push('## Goals (issue #16)');
  s.push('');
  s.push(
    table(
      ['goal', 'measured', 'met'],
      goals(r).map((g) => [g.goal, g.measured, g.met === undefined ? '–' : g.met ? 'yes' : '**no**']),
    ),
  );

  const direct = (tls: boolean) => r.peers.find((p) => p.path === 'direct loopback' && p.tls === tls)?.down;
  const twoSplice = (tls: boolean) =>
    r.peers.find((p) => p.path === 'raw Node splice ×2' && p.tls === tls)?.down;
  const rel = (v: number, anchor: number | undefined): string => (anchor ? f2(v / anchor) : '–');

  s.push('');
  s.push('## Throughput: the peers (one upgraded connection, MiB/s)');
  s.push('');
  s.push(
    'A source process answers the upgrade with 101 and then writes (down) or reads (up) the bytes; "time to 101" is ' +
      'connect + request + 101 through the path, median.',
  );
  s.push('');
  s.push(
    table(
      [
        'path',
        'hops',
        'down MiB/s',
        'up MiB/s',
        '× direct',
        '× two splices',
        'time to 101 ms',
        'CPU ms/MiB (hops)',
      ],
      r.peers.map((p) => [
        p.path,
        mode(p.tls),
        f1(p.down),
        f1(p.up),
        rel(p.down, direct(p.tls)),
        rel(p.down, twoSplice(p.tls)),
        f2(p.to101Ms),
        f2(p.cpuMsPerMiB),
      ]),
    ),
  );
  s.push('');
  s.push('![throughput](docs/bench/throughput.svg)');

  s.push('');
  s.push('## Throughput: the chain (exec, MiB/s)');
  s.push('');
  s.push(
    'stdout: `head -c N /dev/zero` in pod `demo`; stdin: N bytes into `wc -c` (which must count them all). kexec ' +
      "paths use kexec's own stream clients in the bench process (warm); kubectl paths run kubectl v1.35 as a process, " +
      'start-up included. The anchors are the peers above on the same hops (plain or TLS). CPU ms/MiB is what each ' +
      'service process spent per MiB of stdout (user + system, /proc): on a shared machine it is steadier than MiB/s.',
  );
  s.push('');
  s.push(
    table(
      [
        ...['path', 'hops', 'stdout MiB/s', 'stdin MiB/s', 'stdout × two splices', 'stdout × direct'],
        'CPU ms/MiB apiserver / kubelet / cri-shim',
      ],
      r.chain.map((c) => [
        c.path,
        mode(c.tls),
        f1(c.stdout),
        f1(c.stdin),
        rel(c.stdout, twoSplice(c.tls)),
        rel(c.stdout, direct(c.tls)),
        c.cpuMsPerMiB
          ? `${f2(c.cpuMsPerMiB.apiserver)} / ${f2(c.cpuMsPerMiB.kubelet)} / ${f2(c.cpuMsPerMiB.criShim)}`
          : '–',
      ]),
    ),
  );
  s.push('');
  s.push("### Port-forward (MiB/s from the pod's port to a local client, through the CLI's listener)");
  s.push('');
  s.push(
    table(
      ['client', 'hops', 'MiB/s', '× direct'],
      r.portForward.map((p) => [p.path, mode(p.tls), f1(p.mibPerSec), rel(p.mibPerSec, direct(false))]),
    ),
  );

  s.push('');
  s.push('## Latency (warm in-process client, ms)');
  s.push('');
  s.push(
    'Time to 101: request to the 101 through the chain (the translator answers 101 itself, before dialling the ' +
      'kubelet). Round trip: a whole `exec demo -- true`, connect to exit Status. "Runtime only" is the same exec ' +
      'straight at the cri-shim (CRI Exec, then its streaming server): what the chain adds is the difference.',
  );
  s.push('');
  s.push(
    table(
      ['path', 'hops', 'time to 101 p50', 'p99', 'round trip p50', 'p99'],
      r.latency.map((l) => [l.path, mode(l.tls), f1(l.to101P50), f1(l.to101P99), f1(l.rttP50), f1(l.rttP99)]),
    ),
  );
  s.push('');
  s.push('![latency](docs/bench/latency.svg)');

  s.push('');
  s.push('## Execs per second (`true`, TLS)');
  s.push('');
  s.push(
    table(
      ['path', 'concurrency', 'execs/s', 'errors'],
      r.execs.map((e) => [e.path, String(e.concurrency), f1(e.rate), String(e.errors)]),
    ),
  );
  s.push('');
  s.push('![execs per second](docs/bench/execs.svg)');

  s.push('');
  s.push('## Idle sessions (RSS per session per hop, TLS)');
  s.push('');
  s.push(
    '`cat` with stdin open, every session held at once; RSS growth of each service process divided by the number ' +
      "of sessions (the sessions' own processes are not counted).",
  );
  s.push('');
  s.push(
    table(
      ['path', 'sessions', 'opened in s', 'all running', 'apiserver KiB', 'kubelet-sim KiB', 'cri-shim KiB'],
      r.idle.map((i) => [
        i.path,
        String(i.sessions),
        f1(i.openSeconds),
        i.allRunning ? 'yes' : '**no**',
        f1(i.perSessionBytes.apiserver / 1024),
        f1(i.perSessionBytes.kubelet / 1024),
        f1(i.perSessionBytes.criShim / 1024),
      ]),
    ),
  );

  s.push('');
  s.push('## Throttle accuracy (`npm run bench:throttle`, a real UpgradeAwareHandler)');
  s.push('');
  s.push('```');
  s.push(r.throttle ?? 'not measured');
  s.push('```');

  s.push('');
  s.push('## Start-up (hyperfine, against the TLS lab)');
  s.push('');
  s.push(
    "CPU is the process's user + system time (mean): on a shared machine it moves less than the wall time. " +
      "The wall time of an exec also holds the chain's own work (GET pod, 101, spawning the command), the same for both clients.",
  );
  s.push('');
  s.push(
    table(
      ['command', 'mean ms', '± ms', 'median ms', 'CPU ms'],
      r.startup.map((x) => [
        `\`${x.command}\``,
        f1(x.meanMs),
        f1(x.stddevMs),
        f1(x.medianMs),
        x.cpuMs === undefined ? '–' : f1(x.cpuMs),
      ]),
    ),
  );

  if (r.errors.length) {
    s.push('');
    s.push('## Errors in this run');
    s.push('');
    for (const e of r.errors) s.push(`- ${e}`);
  }
  const findings = path.join(packageRoot(), 'bench', 'compare', 'findings.md');
  if (fs.existsSync(findings)) {
    s.push('');
    s.push(fs.readFileSync(findings, 'utf8').trim());
  }
  s.push('');
  fs.writeFileSync(out, s.join('\n'));
  fs.writeFileSync(path.join(svgDir, 'results.json'), JSON.stringify(r, null, 2) + '\n');

  const bars: Bar[] = [
    ...r.peers.map((p) => ({
      path: `${p.path} (${mode(p.tls)})`,
      group: `peer, ${mode(p.tls)}`,
      value: p.down,
    })),
    ...r.chain.map((c) => ({
      path: `${c.path} (${mode(c.tls)})`,
      group: `chain, ${mode(c.tls)}`,
      value: c.stdout,
    })),
  ];
  fs.writeFileSync(
    path.join(svgDir, 'throughput.svg'),
    await barChart('Throughput, one stream (down / stdout)', 'MiB/s', bars),
  );
  const lat: Bar[] = r.latency.map((l) => ({
    path: `${l.path} (${mode(l.tls)})`,
    group: mode(l.tls),
    value: l.rttP50,
  }));
  fs.writeFileSync(
    path.join(svgDir, 'latency.svg'),
    await barChart('exec -- true round trip, p50', 'ms', lat),
  );
  const pts: Point[] = r.execs.map((e) => ({ series: e.path, x: e.concurrency, y: e.rate }));
  fs.writeFileSync(
    path.join(svgDir, 'execs.svg'),
    await lineChart('execs per second (TLS)', 'concurrent clients', 'execs/s', pts),
  );
}
