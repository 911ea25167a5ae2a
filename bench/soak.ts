/**
 * Soak: many exec sessions through a real lab (apiserver → kubelet-sim → cri-shim, https), in a
 * row and at once, then each service's open fds, child processes and RSS against where they
 * started. The bounded version is e2e/soak.test.ts.
 *
 * Run: npm run build && node dist/bench/soak.js [--serial 1000] [--concurrent 200]
 * Exits 1 when a service ends up holding more fds (beyond a slack of 4) or processes than at start.
 * RSS here is not a leak signal (it includes V8's young generation grown under load, given back only
 * on idle); for memory after forced GCs at doubling session counts run bench/soak-heap.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startLab, type Lab } from '../lab/lab.js';
import { execInDemo } from './lab-exec.js';

const SERVICES = ['apiserver', 'kubelet-sim', 'cri-shim'] as const;

interface Hold {
  fds: number;
  children: number;
  rssMiB: number;
}

function hold(pid: number): Hold {
  let children = 0;
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === pid) children++;
    } catch {
      // gone
    }
  }
  const rss = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { fds: fs.readdirSync(`/proc/${pid}/fd`).length, children, rssMiB: Number(rss?.[1] ?? 0) / 1024 };
}

const snapshot = (lab: Lab) => Object.fromEntries(SERVICES.map((s) => [s, hold(lab.pids[s]!)]));

function table(title: string, base: Record<string, Hold>, now: Record<string, Hold>): void {
  console.log(title);
  for (const s of SERVICES) {
    const b = base[s]!;
    const n = now[s]!;
    console.log(
      `  ${s.padEnd(12)} fds ${b.fds} -> ${n.fds}   children ${b.children} -> ${n.children}   ` +
        `rss ${b.rssMiB.toFixed(1)} -> ${n.rssMiB.toFixed(1)} MiB`,
    );
  }
}

async function settle(lab: Lab, base: Record<string, Hold>): Promise<Record<string, Hold>> {
  const deadline = Date.now() + 15_000;
  let now = snapshot(lab);
  while (Date.now() < deadline) {
    now = snapshot(lab);
    if (SERVICES.every((s) => now[s]!.fds <= base[s]!.fds + 4 && now[s]!.children <= base[s]!.children))
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return now;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { serial: { type: 'string', default: '1000' }, concurrent: { type: 'string', default: '200' } },
  });
  const serial = Number(values.serial);
  const concurrent = Number(values.concurrent);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-bench-'));
  const lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  let leaked = false;
  try {
    const tls = { ca: fs.readFileSync(lab.caFile!) };
    await execInDemo(lab, tls, ['true']);
    const base = snapshot(lab);

    let t0 = Date.now();
    let failures = 0;
    for (let i = 0; i < serial; i++)
      if ((await execInDemo(lab, tls, ['sh', '-c', `echo ${i}`])) !== 0) failures++;
    let secs = (Date.now() - t0) / 1000;
    console.log(
      `${serial} sessions in a row: ${secs.toFixed(1)} s (${(serial / secs).toFixed(0)}/s), ${failures} failed`,
    );
    let now = await settle(lab, base);
    table('after the serial run:', base, now);
    leaked ||= SERVICES.some((s) => now[s]!.fds > base[s]!.fds + 4 || now[s]!.children > base[s]!.children);

    t0 = Date.now();
    const codes = await Promise.all(
      Array.from({ length: concurrent }, (_, i) =>
        execInDemo(lab, tls, ['sh', '-c', `sleep 1; echo ${i}`]).catch(() => -1),
      ),
    );
    secs = (Date.now() - t0) / 1000;
    const bad = codes.filter((c) => c !== 0).length;
    console.log(`${concurrent} sessions at once: ${secs.toFixed(1)} s, ${bad} failed`);
    now = await settle(lab, base);
    table('after the concurrent run:', base, now);
    leaked ||= SERVICES.some((s) => now[s]!.fds > base[s]!.fds + 4 || now[s]!.children > base[s]!.children);
  } finally {
    await lab.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  console.log(leaked ? 'LEAK: a service holds more than at start' : 'no leak');
  process.exitCode = leaked ? 1 : 0;
}

void main();
