/**
 * Every process the shim starts leads its own process group (spawned `detached`), so one
 * `kill(-pgid)` reaches the whole tree it forked — a shell's children included. This is how
 * "nothing leaked" is kept: a container stop, a sandbox removal, a client that goes away and
 * shim shutdown all end in `killGroup`; a shim that dies without a shutdown leaves the kill to
 * bwrap's `--die-with-parent` or, under `--isolation none`, to the death watch (death-watch.ts).
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import type { TerminalSize } from '../shared/remotecommand/codec.js';
import type { ProcessSpec } from './isolation.js';
import { TerminalProcess } from './terminal-process.js';

/** A container's main process or an exec: piped (ChildProcess) or under a terminal. */
export type RuntimeProcess = ChildProcess | TerminalProcess;

export function spawnGroup(spec: ProcessSpec, stdio: StdioOptions): ChildProcess {
  return spawn(spec.file, spec.args, { cwd: spec.cwd, env: spec.env, stdio, detached: true });
}

/** Starts a process under a pseudo-terminal: it leads its own session (and so its own group). */
export function spawnTerminal(spec: ProcessSpec, size?: TerminalSize): TerminalProcess {
  return new TerminalProcess(spec, size);
}

/**
 * Kills every process of session `sid` (SIGKILL). A shell on a terminal puts each job in a
 * process group of its own, so killing the leader's group is not enough there; the session is.
 * Linux only (/proc); elsewhere it does nothing.
 */
export function killSession(sid: number | undefined): void {
  if (!sid) return;
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      // after "pid (comm) ": state ppid pgrp session …
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[3]) === sid) process.kill(Number(name), 'SIGKILL');
    } catch {
      // raced with its exit
    }
  }
}

/** Signals a whole process group; a group that is already gone is not an error. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (!pid) return;
  try {
    process.kill(-pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Signals one process; one that is already gone is not an error. */
export function killPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** Resolves once `pid` no longer runs (gone, or a zombie), polling at most `timeoutMs`. */
export async function pidGone(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let state: string;
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    } catch {
      return;
    }
    if (state === 'Z' || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: RuntimeProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const e = child as NodeJS.EventEmitter;
  return new Promise((resolve) => {
    e.once('exit', () => resolve());
    e.once('error', () => resolve());
  });
}

/** A shell-style exit code: the code, or 128 + the signal number for a killed process. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return n ? 128 + n : 255;
}
