/**
 * What tests ask /proc about processes: who is alive, who descends from whom, who is in a process
 * group or session, whose argv is what. One reader of `/proc/PID/stat` (fields after
 * "pid (comm) ": state ppid pgrp session …, proc(5)) for every such question.
 */
import fs from 'node:fs';

export interface ProcStat {
  pid: number;
  /** One letter: R, S, D, Z (zombie: exited, not yet reaped), … */
  state: string;
  ppid: number;
  pgrp: number;
  session: number;
}

function statOf(pid: number): ProcStat | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, state: f[0]!, ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]) };
  } catch {
    return undefined; // ended while we looked
  }
}

/** Every process now, zombies included. */
export function procTable(): ProcStat[] {
  const out: ProcStat[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const s = statOf(Number(name));
    if (s) out.push(s);
  }
  return out;
}

/** The pid exists, a zombie too (kill 0): what a process that must be reaped is checked with. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** Running: exists and is not a zombie (one an init that does not reap leaves behind is gone). */
export function running(pid: number): boolean {
  const s = statOf(pid);
  return s !== undefined && s.state !== 'Z';
}

/** Every descendant of `pid` (children, their children, …), zombies only with `zombies`. */
export function descendants(pid: number, o: { zombies?: boolean } = {}): number[] {
  const all = procTable().filter((p) => o.zombies || p.state !== 'Z');
  const found: number[] = [];
  let frontier = [pid];
  for (let depth = 0; depth < 64 && frontier.length; depth++) {
    const next = all.filter((p) => frontier.includes(p.ppid)).map((p) => p.pid);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/** Direct children of `pid`, zombies included (an unreaped child is a leak too). */
export function children(pid: number): number[] {
  return procTable()
    .filter((p) => p.ppid === pid)
    .map((p) => p.pid);
}

/** Live (non-zombie) members of process group `pgid`. */
export function groupMembers(pgid: number): number[] {
  return procTable()
    .filter((p) => p.pgrp === pgid && p.state !== 'Z')
    .map((p) => p.pid);
}

/** Live (non-zombie) members of session `sid`. */
export function sessionMembers(sid: number): number[] {
  return procTable()
    .filter((p) => p.session === sid && p.state !== 'Z')
    .map((p) => p.pid);
}

/** Live (non-zombie) processes whose argv satisfies `match`, wherever they are (a pid namespace too). */
export function pidsWhere(match: (argv: string[]) => boolean): number[] {
  const found: number[] = [];
  for (const p of procTable()) {
    if (p.state === 'Z') continue;
    try {
      const argv = fs.readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
      if (match(argv)) found.push(p.pid);
    } catch {
      // ended while we looked
    }
  }
  return found;
}

/** Live processes whose argv is exactly `argv`. */
export function processesWithArgv(argv: readonly string[]): number[] {
  return pidsWhere((a) => a.length === argv.length && a.every((x, i) => x === argv[i]));
}
