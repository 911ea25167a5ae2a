/**
 * `npm run bench`: the chain against its peers, in one run, side by side, and BENCHMARKS.md.
 *
 * Peers (each its own process, bench/compare/peers.ts): direct loopback; one and two raw Node
 * splices; node-http-proxy; nginx and haproxy (Debian, one worker each); one and two
 * UpgradeAwareHandler hops — plain and TLS on every hop. The chain (lab/lab.ts: apiserver,
 * kubelet-sim, cri-shim) on each path: kexec's clients in this process (warm) and kubectl v1.35
 * as a process; WebSocket v5 through the StreamTranslator, WebSocket spliced
 * (`--no-stream-translation`), SPDY spliced; plain (`--insecure-http`) and TLS. Then latency (time
 * to 101, exec round trip against the runtime alone), execs per second, RSS of idle sessions,
 * throttle accuracy (bench/throttle.ts) and start-up (hyperfine).
 *
 * Run: npm run build && npm run bench [-- --quick] [--mib N] [--repeats N] [--only a,b] [--out F]
 * `--quick` (under a minute) writes to .bench/ unless --out is given; the full run writes
 * BENCHMARKS.md and docs/bench/*.svg. `--cpu-prof DIR` runs the lab's services and the peers
 * under `node --cpu-prof` (profiles in DIR when they exit). Only loopback is used; every wait is
 * bounded.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { packageRoot } from '../../shared/package-root.js';
import {
  criClient,
  execsPerSecond,
  kexecStdin,
  kexecStdout,
  kexecTrue,
  kubectlTransfer,
  openIdleSessions,
  portForward,
  runtimeTrue,
  startChainLab,
  timeTo101,
  type ChainLab,
  type KexecProtocol,
  type PortForwardCli,
} from './chain.js';
import {
  makeCert,
  measurePeer,
  startHaproxy,
  startNginx,
  startNodePeer,
  type Cert,
  type Peer,
} from './peers.js';
import { writeReport, type Results } from './report.js';
import {
  descendantCount,
  LoadSampler,
  median,
  percentile,
  pollUntil,
  repeat,
  rssOf,
  sleep,
  withCpu,
} from './stats.js';

const MiB = 1024 * 1024;
const SECTIONS = ['peers', 'chain', 'latency', 'execs', 'idle', 'throttle', 'startup'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    mib: { type: 'string' },
    repeats: { type: 'string' },
    'rtt-count': { type: 'string' },
    'execs-seconds': { type: 'string' },
    sessions: { type: 'string' },
    only: { type: 'string' },
    labs: { type: 'string' },
    out: { type: 'string' },
    'cpu-prof': { type: 'string' },
    'from-json': { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (values.help) {
  console.log(
    'usage: npm run bench [-- --quick] [--mib N] [--repeats N] [--rtt-count N] [--execs-seconds N]\n' +
      `       [--sessions N] [--from-json RESULTS.json] [--only ${SECTIONS.join(',')}] [--labs tls-translated,tls-spliced,plain-translated,plain-spliced]\n` +
      '       [--out FILE.md] [--cpu-prof DIR]',
  );
  process.exit(0);
}
const quick = values.quick;
const num = (v: string | undefined, full: number, fast: number): number =>
  v ? Number(v) : quick ? fast : full;
const cfg = {
  mib: num(values.mib, 128, 16),
  repeats: num(values.repeats, 3, 1),
  rttCount: num(values['rtt-count'], 100, 10),
  execsSeconds: num(values['execs-seconds'], 5, 1),
  sessions: num(values.sessions, 1000, 50),
  concurrency: [1, 10, 50],
};
const only = new Set((values.only?.split(',') ?? SECTIONS) as Section[]);
const root = packageRoot();
const out = path.resolve(
  values.out ?? (quick ? path.join(root, '.bench', 'BENCHMARKS.md') : path.join(root, 'BENCHMARKS.md')),
);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-bench-'));
const profDir = values['cpu-prof'] ? path.resolve(values['cpu-prof']) : undefined;
const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
const bytes = cfg.mib * MiB;

const say = (line: string): void => console.error(`[bench] ${line}`);
const results: Results = {
  startedAt: new Date().toISOString(),
  config: { ...cfg, quick },
  machine: machine(),
  load: { min: 0, mean: 0, max: 0 },
  peers: [],
  chain: [],
  portForward: [],
  latency: [],
  execs: [],
  idle: [],
  startup: [],
  errors: [],
};

function version(cmd: string, args: string[]): string {
  // nginx -v prints to stderr.
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.split('\n')[0]!.trim() || 'unknown';
}

function machine(): Results['machine'] {
  return {
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.cpus().length,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    openssl: process.versions.openssl ?? 'unknown',
    nginx: version('nginx', ['-v']),
    haproxy: version('haproxy', ['-v']),
    kubectl: version(path.join(root, '.tools', 'kubectl-v1.35', 'kubectl'), ['version', '--client']),
    hyperfine: version('hyperfine', ['--version']),
  };
}

/** Runs one part of the bench; a failure is recorded and the bench goes on. */
async function step(what: string, fn: () => Promise<void>): Promise<void> {
  say(what);
  try {
    await fn();
  } catch (err) {
    const msg = `${what}: ${(err as Error).message}`;
    say(`FAILED ${msg}`);
    results.errors.push(msg);
  }
}

// --- peers -----------------------------------------------------------------------------------------

type Hop = 'splice' | 'http-proxy' | 'uah' | 'nginx' | 'haproxy';
const PEER_PATHS: { name: string; hops: Hop[] }[] = [
  { name: 'direct loopback', hops: [] },
  { name: 'raw Node splice ×1', hops: ['splice'] },
  { name: 'raw Node splice ×2', hops: ['splice', 'splice'] },
  { name: 'node-http-proxy ×1', hops: ['http-proxy'] },
  { name: 'nginx ×1', hops: ['nginx'] },
  { name: 'haproxy ×1', hops: ['haproxy'] },
  { name: 'UpgradeAwareHandler ×1', hops: ['uah'] },
  { name: 'UpgradeAwareHandler ×2', hops: ['uah', 'uah'] },
];

async function startHop(hop: Hop, target: URL, cert: Cert | undefined): Promise<Peer> {
  if (hop === 'nginx') return startNginx(tmp, target, cert);
  if (hop === 'haproxy') return startHaproxy(tmp, target, cert);
  return startNodePeer(hop, { tls: cert, target: target.href, nodeArgs });
}

async function peers(cert: Cert): Promise<void> {
  for (const secure of [false, true]) {
    const c = secure ? cert : undefined;
    const source = await startNodePeer('source', { tls: c, nodeArgs });
    try {
      for (const p of PEER_PATHS) {
        await step(`peer ${p.name} ${secure ? 'TLS' : 'plain'}`, async () => {
          const started: Peer[] = [];
          try {
            let target = new URL(`${secure ? 'https' : 'http'}://127.0.0.1:${source.port}/`);
            for (const hop of [...p.hops].reverse()) {
              const peer = await startHop(hop, target, c);
              started.push(peer);
              target = new URL(`${secure ? 'https' : 'http'}://127.0.0.1:${peer.port}/`);
            }
            const port = Number(target.port);
            const pids = started.map((x) => x.pid);
            const measured = await repeat(cfg.repeats, () =>
              withCpu(pids, () => measurePeer(port, secure, 'down', bytes)),
            );
            const down = measured.map((m) => m.value);
            const hopCpu = measured.map((m) => m.cpuMs.reduce((a, b) => a + b, 0) / cfg.mib);
            const up = await repeat(cfg.repeats, () => measurePeer(port, secure, 'up', bytes));
            const to101 = await repeat(Math.max(5, cfg.repeats * 5), () =>
              measurePeer(port, secure, 'down', 1),
            );
            results.peers.push({
              path: p.name,
              tls: secure,
              down: median(down.map((r) => r.mibPerSec)),
              up: median(up.map((r) => r.mibPerSec)),
              to101Ms: median(to101.map((r) => r.to101Ms)),
              cpuMsPerMiB: pids.length ? median(hopCpu) : undefined,
            });
          } finally {
            for (const s of started) await s.stop();
          }
        });
      }
    } finally {
      await source.stop();
    }
  }
}

// --- the chain -------------------------------------------------------------------------------------

interface LabSpec {
  secure: boolean;
  translation: boolean;
}
const LABS: LabSpec[] = [
  { secure: true, translation: true },
  { secure: true, translation: false },
  { secure: false, translation: true },
  { secure: false, translation: false },
];

/** The kexec paths a lab offers: SPDY spliced always; WebSocket translated or spliced by the lab. */
function kexecPaths(l: Pick<ChainLab, 'translation'>): { name: string; protocol: KexecProtocol }[] {
  const ws = {
    name: `kexec WS v5 ${l.translation ? 'translated' : 'spliced'}`,
    protocol: 'websocket' as const,
  };
  return l.translation ? [{ name: 'kexec SPDY spliced', protocol: 'spdy' }, ws] : [ws];
}

const labName = (spec: LabSpec): string =>
  `${spec.secure ? 'tls' : 'plain'}-${spec.translation ? 'translated' : 'spliced'}`;

async function withLab(spec: LabSpec, fn: (l: ChainLab) => Promise<void>): Promise<void> {
  const name = labName(spec);
  const saved = process.env.NODE_OPTIONS;
  if (profDir) {
    // --cpu-prof is not allowed in NODE_OPTIONS: a preload module runs the same profiler.
    const preload = pathToFileURL(
      path.join(path.dirname(fileURLToPath(import.meta.url)), 'cpu-prof-preload.js'),
    );
    process.env.NODE_OPTIONS = `${saved ?? ''} --import=${preload.href}`.trim();
    process.env.KEXEC_BENCH_CPU_PROF_DIR = profDir;
  }
  let l: ChainLab;
  try {
    l = await startChainLab(path.join(tmp, `lab-${name}`), spec);
  } finally {
    if (profDir) process.env.NODE_OPTIONS = saved;
  }
  try {
    for (let i = 0; i < 3; i++) await kexecTrue(l, 'websocket'); // warm the client and every hop
    await fn(l);
  } finally {
    await l.lab.stop();
  }
}

async function chainLab(spec: LabSpec, pfSource: Peer | undefined): Promise<void> {
  await withLab(spec, async (l) => {
    const tls = spec.secure;
    if (only.has('chain')) {
      for (const p of kexecPaths(l)) {
        await step(`chain ${p.name} ${tls ? 'TLS' : 'plain'}`, async () => {
          const pids = [l.lab.pids.apiserver!, l.lab.pids['kubelet-sim']!, l.lab.pids['cri-shim']!];
          const out = await repeat(cfg.repeats, () => withCpu(pids, () => kexecStdout(l, p.protocol, bytes)));
          const stdin = await repeat(cfg.repeats, () => kexecStdin(l, p.protocol, bytes));
          const hop = (i: number): number => median(out.map((o) => o.cpuMs[i]! / cfg.mib));
          results.chain.push({
            path: p.name,
            tls,
            stdout: median(out.map((o) => o.value)),
            stdin: median(stdin),
            cpuMsPerMiB: { apiserver: hop(0), kubelet: hop(1), criShim: hop(2) },
          });
        });
      }
      if (tls) {
        const kubectlPaths = spec.translation
          ? [
              { name: 'kubectl SPDY spliced', spdy: true },
              { name: 'kubectl WS v5 translated', spdy: false },
            ]
          : [{ name: 'kubectl WS v5 spliced', spdy: false }];
        for (const k of kubectlPaths) {
          await step(`chain ${k.name} TLS`, async () => {
            const home = path.join(tmp, 'kubectl-home');
            const stdout = await repeat(cfg.repeats, () => kubectlTransfer(l, home, k.spdy, 'stdout', bytes));
            const stdin = await repeat(cfg.repeats, () => kubectlTransfer(l, home, k.spdy, 'stdin', bytes));
            results.chain.push({ path: k.name, tls, stdout: median(stdout), stdin: median(stdin) });
          });
        }
      }
      if (spec.translation && pfSource?.tcpPort) {
        const clis: PortForwardCli[] = tls
          ? ['kexec-websocket', 'kexec-spdy', 'kubectl-websocket', 'kubectl-spdy']
          : ['kexec-websocket', 'kexec-spdy'];
        for (const cli of clis) {
          await step(`port-forward ${cli} ${tls ? 'TLS' : 'plain'}`, async () => {
            const home = path.join(tmp, 'kubectl-home');
            const runs = await repeat(cfg.repeats, () => portForward(l, home, cli, pfSource.tcpPort!, bytes));
            results.portForward.push({ path: cli, tls, mibPerSec: median(runs) });
          });
        }
      }
    }
    if (only.has('latency')) {
      for (const p of kexecPaths(l)) {
        await step(`latency ${p.name} ${tls ? 'TLS' : 'plain'}`, async () => {
          const to101 = await repeat(cfg.rttCount, () => timeTo101(l, p.protocol));
          const rtt = await repeat(cfg.rttCount, () => kexecTrue(l, p.protocol));
          results.latency.push({
            path: p.name,
            tls,
            to101P50: median(to101),
            to101P99: percentile(to101, 99),
            rttP50: median(rtt),
            rttP99: percentile(rtt, 99),
          });
        });
      }
      if (spec.translation) {
        for (const protocol of ['websocket', 'spdy'] as const) {
          await step(`latency runtime only ${protocol} ${tls ? 'TLS' : 'plain'}`, async () => {
            const cri = criClient(l);
            const rtt = await repeat(cfg.rttCount, () => runtimeTrue(l, cri, protocol));
            results.latency.push({
              path: `runtime only (CRI Exec + ${protocol === 'spdy' ? 'SPDY' : 'WS v5'} to the cri-shim)`,
              tls,
              rttP50: median(rtt),
              rttP99: percentile(rtt, 99),
            });
          });
        }
      }
    }
    if (tls && spec.translation && only.has('execs')) {
      for (const p of kexecPaths(l)) {
        for (const c of cfg.concurrency) {
          await step(`execs/s ${p.name} c=${c}`, async () => {
            const r = await execsPerSecond(l, p.protocol, c, cfg.execsSeconds);
            results.execs.push({ path: p.name, concurrency: c, rate: r.rate, errors: r.errors });
          });
        }
      }
    }
    if (tls && spec.translation && only.has('startup')) await step('start-up (hyperfine)', () => startup(l));
  });
}

/**
 * Each idle path in a lab of its own: a service's heap and malloc arenas keep what an earlier
 * section (or path) grew them to, so growth measured on a used lab says little about a session.
 */
async function idleLabs(spec: LabSpec): Promise<void> {
  const paths = kexecPaths(spec);
  for (const p of paths) {
    await step(`idle ${p.name} ×${cfg.sessions} (own lab)`, () => withLab(spec, (l) => idle(l, p)));
  }
}

async function idle(l: ChainLab, p: { name: string; protocol: KexecProtocol }): Promise<void> {
  const pids = {
    apiserver: l.lab.pids.apiserver!,
    kubelet: l.lab.pids['kubelet-sim']!,
    criShim: l.lab.pids['cri-shim']!,
  };
  const rss = () => ({
    apiserver: rssOf(pids.apiserver),
    kubelet: rssOf(pids.kubelet),
    criShim: rssOf(pids.criShim),
  });
  const baseProcs = descendantCount(pids.criShim);
  // Each session's own `cat`, however many processes the runtime puts around it (its exec helper).
  const baseCats = descendantCount(pids.criShim, 'cat');
  const before = rss();
  const t0 = performance.now();
  const sessions = await openIdleSessions(l, cfg.sessions, p.protocol);
  try {
    const allRunning = await pollUntil(
      () => descendantCount(pids.criShim, 'cat') - baseCats >= cfg.sessions,
      120_000,
    );
    await sleep(1000); // let the last sessions' buffers settle before sampling
    const after = rss();
    if (sessions.failures() > 0)
      throw new Error(`${sessions.failures()} of ${cfg.sessions} idle sessions ended early`);
    const per = (k: keyof typeof before): number => (after[k] - before[k]) / cfg.sessions;
    results.idle.push({
      path: p.name,
      sessions: cfg.sessions,
      openSeconds: (performance.now() - t0) / 1000,
      allRunning,
      perSessionBytes: { apiserver: per('apiserver'), kubelet: per('kubelet'), criShim: per('criShim') },
    });
  } finally {
    sessions.close();
    await pollUntil(() => descendantCount(pids.criShim) <= baseProcs, 60_000);
  }
}

async function startup(l: ChainLab): Promise<void> {
  const json = path.join(tmp, 'hyperfine.json');
  const home = path.join(tmp, 'kubectl-home');
  fs.mkdirSync(home, { recursive: true });
  const kexec = `${process.execPath} ${path.join(root, 'bin', 'kexec.js')}`;
  const kubectl = path.join(root, '.tools', 'kubectl-v1.35', 'kubectl');
  const k = l.lab.kubeconfigPath;
  execFileSync(
    'hyperfine',
    [
      '-N',
      ...['--warmup', '2', '--runs', quick ? '3' : '15', '--export-json', json],
      ...['-n', 'kexec demo -- true', `${kexec} --kubeconfig ${k} demo -- true`],
      ...['-n', 'kubectl exec demo -- true', `${kubectl} --kubeconfig ${k} exec demo -- true`],
      ...['-n', 'kexec --help', `${kexec} --help`],
      ...['-n', 'kubectl --help', `${kubectl} --help`],
      // The floor for any Node CLI: the runtime starting and exiting with nothing to load.
      ...['-n', 'node -e 0 (bare Node start)', `${process.execPath} -e 0`],
    ],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, HOME: home } },
  );
  const r = JSON.parse(fs.readFileSync(json, 'utf8')) as {
    results: {
      command: string;
      mean: number;
      stddev: number;
      median: number;
      user: number;
      system: number;
    }[];
  };
  for (const x of r.results) {
    results.startup.push({
      command: x.command,
      meanMs: x.mean * 1000,
      stddevMs: x.stddev * 1000,
      medianMs: x.median * 1000,
      cpuMs: (x.user + x.system) * 1000,
    });
  }
}

async function throttle(): Promise<void> {
  const args = quick ? ['--mib', '1', '--rates', '2'] : ['--mib', '8', '--rates', '1,4,16'];
  results.throttle = execFileSync(
    process.execPath,
    [path.join(root, 'dist', 'bench', 'throttle.js'), ...args],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  ).trim();
}

async function main(): Promise<void> {
  if (values['from-json']) {
    // Only the report again (after editing findings.md), from a run's saved results.
    const saved = JSON.parse(fs.readFileSync(values['from-json'], 'utf8')) as Results;
    saved.machine.nginx = results.machine.nginx;
    await writeReport(saved, out);
    say(`wrote ${path.relative(process.cwd(), out)}`);
    return;
  }
  const load = new LoadSampler();
  say(`sizes: ${cfg.mib} MiB × ${cfg.repeats}; temp dir ${tmp}`);
  const cert = makeCert(tmp);
  if (only.has('peers')) await peers(cert);
  if (SECTIONS.some((s) => s !== 'peers' && s !== 'throttle' && only.has(s))) {
    // The port-forward target: a plain TCP listener that pours `bytes` into each connection.
    const pfSource = only.has('chain') ? await startNodePeer('source', { tcpBytes: bytes }) : undefined;
    try {
      for (const spec of LABS) {
        if (!(spec.secure && spec.translation) && !only.has('chain') && !only.has('latency')) continue;
        if (values.labs && !values.labs.split(',').includes(labName(spec))) continue;
        if (SECTIONS.some((s) => !['peers', 'throttle', 'idle'].includes(s) && only.has(s))) {
          await step(
            `lab ${spec.secure ? 'TLS' : 'plain'}, translation ${spec.translation ? 'on' : 'off'}`,
            () => chainLab(spec, pfSource),
          );
        }
        if (spec.secure && spec.translation && only.has('idle')) await idleLabs(spec);
      }
    } finally {
      await pfSource?.stop();
    }
  }
  if (only.has('throttle')) await step('throttle accuracy', throttle);
  results.load = load.stop();
  results.finishedAt = new Date().toISOString();
  await writeReport(results, out);
  say(`wrote ${path.relative(process.cwd(), out)}`);
  fs.rmSync(tmp, { recursive: true, force: true });
}

main().then(
  () => process.exit(results.errors.length ? 1 : 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
