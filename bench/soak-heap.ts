/**
 * Soak, heap edition: is a service's memory growth under many exec sessions a leak or GC headroom?
 * Starts a lab whose services preload bench/heap-probe.js with --expose-gc (through NODE_OPTIONS;
 * no service code changes), runs exec sessions through apiserver → kubelet-sim → cri-shim, and at
 * session counts STEP, 2·STEP, 4·STEP, … asks each service (SIGUSR2) for its memory after forced
 * full GCs. A leak shows as heapUsed (or external) after GC growing with the session count; headroom
 * as a plateau with only RSS above it. Each probe waits --settle-ms first: the splice keeps a
 * closed session's sockets reachable from its 5 s close-grace timer until that fires. With
 * --snapshots, each service also writes a heap snapshot at the last two checkpoints (steady state;
 * a snapshot's own full GC shrinks heapTotal and RSS, so rows after one are not comparable on those);
 * compare them with `node dist/bench/heap-diff.js A B`. --node-options adds V8/Node flags to the
 * services (those NODE_OPTIONS allows); --v8-flags="--no-opt --no-maglev --no-sparkplug" keeps them
 * in the interpreter, to tell growth of JIT-compiled code apart from growth of data (--jitless
 * would also turn off WebAssembly, which Node's fetch needs).
 *
 * Run: npm run build && node dist/bench/soak-heap.js [--step 250] [--doublings 4] [--parallel 4]
 *      [--settle-ms 6000] [--max-seconds 600] [--snapshots --keep DIR] [--node-options=FLAGS] [--v8-flags=FLAGS]
 * Loopback only; the loops are bounded by count and by --max-seconds.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startLab, type Lab } from '../lab/lab.js';
import { execInDemo } from './lab-exec.js';

const SERVICES = ['apiserver', 'kubelet-sim', 'cri-shim'] as const;
const MiB = 1024 * 1024;

interface Probe {
  memory: NodeJS.MemoryUsage;
  heap: { used_heap_size: number; total_heap_size: number; number_of_native_contexts: number };
}

let seq = 0;
async function probe(lab: Lab, probeDir: string, what: 'stats' | 'snapshot'): Promise<Record<string, Probe>> {
  seq++;
  fs.writeFileSync(path.join(probeDir, 'cmd'), `${what} ${seq}\n`);
  const out: Record<string, Probe> = {};
  for (const s of SERVICES) {
    const pid = lab.pids[s]!;
    const file = path.join(probeDir, `${pid}-${seq}.json`);
    process.kill(pid, 'SIGUSR2');
    const deadline = Date.now() + 60_000;
    while (!fs.existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`${s} (pid ${pid}) did not answer the heap probe`);
      await new Promise((r) => setTimeout(r, 50));
    }
    out[s] = JSON.parse(fs.readFileSync(file, 'utf8')) as Probe;
    if (what === 'snapshot')
      console.log(`  ${s} snapshot: ${path.join(probeDir, `${pid}-${seq}.heapsnapshot`)}`);
  }
  return out;
}

function row(sessions: number, p: Record<string, Probe>): void {
  const f = (n: number) => (n / MiB).toFixed(2).padStart(7);
  for (const s of SERVICES) {
    const m = p[s]!.memory;
    console.log(
      `  ${String(sessions).padStart(6)}  ${s.padEnd(12)} heapUsed ${f(m.heapUsed)}  heapTotal ${f(m.heapTotal)}  ` +
        `external ${f(m.external)}  arrayBuffers ${f(m.arrayBuffers)}  rss ${f(m.rss)} MiB`,
    );
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      step: { type: 'string', default: '250' },
      doublings: { type: 'string', default: '4' },
      parallel: { type: 'string', default: '4' },
      'max-seconds': { type: 'string', default: '600' },
      'settle-ms': { type: 'string', default: '6000' },
      snapshots: { type: 'boolean', default: false },
      keep: { type: 'string' },
      'node-options': { type: 'string', default: '' },
      'v8-flags': { type: 'string', default: '' },
    },
  });
  const step = Number(values.step);
  const doublings = Math.min(Number(values.doublings), 8);
  const parallel = Math.max(1, Number(values.parallel));
  const settleMs = Number(values['settle-ms']);
  const deadline = Date.now() + Number(values['max-seconds']) * 1000;

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-heap-'));
  const probeDir = values.keep ? path.resolve(values.keep) : path.join(dir, 'probe');
  fs.mkdirSync(probeDir, { recursive: true });
  const probeJs = path.join(path.dirname(fileURLToPath(import.meta.url)), 'heap-probe.js');
  // Inherited by the services the lab spawns (and harmlessly by the shells in the pod).
  process.env.NODE_OPTIONS = [
    process.env.NODE_OPTIONS ?? '',
    values['node-options'],
    `--expose-gc --import ${pathToFileURL(probeJs).href}`,
  ].join(' ');
  process.env.KEXEC_HEAP_PROBE_DIR = probeDir;
  process.env.KEXEC_HEAP_PROBE_V8_FLAGS = values['v8-flags'];

  const lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  try {
    const tls = { ca: fs.readFileSync(lab.caFile!) };
    // Warm-up: first connections, lazily compiled code, pools.
    for (let i = 0; i < 20; i++) await execInDemo(lab, tls, ['true']);
    const series: { sessions: number; p: Record<string, Probe> }[] = [];
    console.log('after GC (sessions after warm-up):');
    await new Promise((r) => setTimeout(r, settleMs));
    series.push({ sessions: 0, p: await probe(lab, probeDir, 'stats') });
    row(0, series[0]!.p);

    let done = 0;
    let failed = 0;
    const t0 = Date.now();
    for (let k = 0; k < doublings && Date.now() < deadline; k++) {
      const target = step * 2 ** k;
      let next = done;
      await Promise.all(
        Array.from({ length: parallel }, async () => {
          while (next < target && Date.now() < deadline) {
            const i = next++;
            const code = await execInDemo(lab, tls, ['sh', '-c', `echo ${i}`]).catch(() => -1);
            if (code !== 0) failed++;
            done++;
          }
        }),
      );
      const lastTwo = k >= doublings - 2 || Date.now() >= deadline;
      await new Promise((r) => setTimeout(r, settleMs));
      const p = await probe(lab, probeDir, values.snapshots && lastTwo ? 'snapshot' : 'stats');
      series.push({ sessions: done, p });
      row(done, p);
    }
    const secs = (Date.now() - t0) / 1000;
    console.log(`${done} sessions (${parallel} at a time) in ${secs.toFixed(1)} s, ${failed} failed`);

    // Growth per 1,000 sessions over the second half of the run, where headroom has settled.
    const a = series[Math.floor(series.length / 2)]!;
    const b = series[series.length - 1]!;
    if (b.sessions > a.sessions) {
      console.log(`growth per 1,000 sessions between ${a.sessions} and ${b.sessions}:`);
      for (const s of SERVICES) {
        const per = (f: (m: NodeJS.MemoryUsage) => number) =>
          (((f(b.p[s]!.memory) - f(a.p[s]!.memory)) / (b.sessions - a.sessions)) * 1000) / 1024;
        console.log(
          `  ${s.padEnd(12)} heapUsed ${per((m) => m.heapUsed).toFixed(1)} KiB  ` +
            `external ${per((m) => m.external).toFixed(1)} KiB  rss ${per((m) => m.rss).toFixed(1)} KiB`,
        );
      }
    }
  } finally {
    await lab.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

void main();
