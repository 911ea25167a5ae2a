/**
 * Every process the shim starts leads its own process group (spawned `detached`), so one
 * `kill(-pgid)` reaches the whole tree it forked — a shell's children included. This is how
 * "nothing leaked" is kept: a container stop, a sandbox removal, a client that goes away and
 * shim shutdown all end in `killGroup`.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import os from 'node:os';
import type { ProcessSpec } from './isolation.js';

export function spawnGroup(spec: ProcessSpec, stdio: StdioOptions): ChildProcess {
  return spawn(spec.file, spec.args, { cwd: spec.cwd, env: spec.env, stdio, detached: true });
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

/** Resolves when the child has exited (immediately if it already has). */
export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
}

/** A shell-style exit code: the code, or 128 + the signal number for a killed process. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return n ? 128 + n : 255;
}
