/** Small helpers of the comparison bench: order statistics, the load sampler, a process's RSS. */
import fs from 'node:fs';
import os from 'node:os';
import type { Writable } from 'node:stream';

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export const median = (values: number[]): number => percentile(values, 50);

/** Runs `fn` `n` times in a row and returns every result. */
export async function repeat<T>(n: number, fn: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(await fn());
  return out;
}

/** The 1-minute load average, sampled every 2 s while the bench runs. */
export class LoadSampler {
  private readonly samples: number[] = [os.loadavg()[0]!];
  private readonly timer = setInterval(() => this.samples.push(os.loadavg()[0]!), 2000).unref();

  stop(): { min: number; mean: number; max: number } {
    clearInterval(this.timer);
    const s = this.samples;
    return { min: Math.min(...s), mean: s.reduce((a, b) => a + b, 0) / s.length, max: Math.max(...s) };
  }
}

/** Resident set size of a process in bytes (VmRSS), or NaN when it is gone. */
export function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Every process's parent (a scan of /proc). */
function parents(): Map<number, number> {
  const parent = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parent.set(Number(name), ppid);
    } catch {
      // gone meanwhile
    }
  }
  return parent;
}

/** The processes that descend from `pid`. */
function descendants(pid: number): number[] {
  const parent = parents();
  const out: number[] = [];
  for (const [p] of parent) {
    for (let q = parent.get(p); q !== undefined && q > 1; q = parent.get(q)) {
      if (q === pid) {
        out.push(p);
        break;
      }
    }
  }
  return out;
}

/** How many processes descend from `pid`; only those running `comm` (proc(5)'s comm) when given. */
export function descendantCount(pid: number, comm?: string): number {
  const all = descendants(pid);
  if (comm === undefined) return all.length;
  return all.filter((p) => {
    try {
      return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === comm;
    } catch {
      return false; // gone
    }
  }).length;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every 100 ms until it is true; false after `ms`. */
export async function pollUntil(check: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(100);
  }
  return check();
}

/** CPU time (user + system) a process has used so far, in ms, or NaN when it is gone. */
export function cpuMsOf(pid: number): number {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // Fields 14 and 15 (utime, stime) of proc(5), counted from the state field (3).
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return NaN;
  }
}

/** sysconf(_SC_CLK_TCK): 100 on every Linux Node supports. */
const CLOCK_TICKS = 100;

/** Runs `fn` and returns its result with the CPU ms each of `pids` used meanwhile. */
export async function withCpu<T>(
  pids: number[],
  fn: () => Promise<T>,
): Promise<{ value: T; cpuMs: number[] }> {
  // A peer's workers are its children (nginx); a lab service's children are the execs, not counted.
  const trees = pids.map((p) => [p, ...descendants(p)]);
  const sum = (tree: number[]): number => tree.reduce((a, p) => a + (cpuMsOf(p) || 0), 0);
  const before = trees.map(sum);
  const value = await fn();
  return { value, cpuMs: trees.map((t, i) => sum(t) - before[i]!) };
}

const CHUNK = Buffer.alloc(64 * 1024, 'x');

/** Writes `total` bytes in 64 KiB chunks with backpressure, then calls `done`. */
export function pour(socket: Writable, total: number, done?: () => void): void {
  let left = total;
  const more = (): void => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      if (!socket.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n))) {
        socket.once('drain', more);
        return;
      }
    }
    done?.();
  };
  more();
}
