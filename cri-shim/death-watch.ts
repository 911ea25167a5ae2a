/**
 * The death watch: under `--isolation none`, kills every container process when the cri-shim
 * goes away, even when it is SIGKILLed and runs no code of its own any more.
 *
 * Why: bwrap's `--die-with-parent` (PR_SET_PDEATHSIG) and its PID namespace take a container's
 * processes with the runtime. `none` has neither. Upstream does the opposite ON PURPOSE: runc
 * exits after starting a container, and containerd-shim-runc-v2 (CRI-O: conmon) stays as its
 * parent and PR_SET_CHILD_SUBREAPER, in its own session, precisely so that containers survive a
 * restart of containerd or the kubelet (and Docker's `live-restore`). This lab wants the
 * opposite: its state is in memory, a restarted cri-shim starts empty and could never stop what
 * it lost, so whatever outlives it is a leftover nobody can manage.
 *
 * How: one small `/bin/sh` per runtime, started lazily with the first container process and in a
 * session of its own (so a signal to the cri-shim's process group or terminal does not reach
 * it; it ignores HUP, INT, QUIT and TERM). Its stdin is a pipe from the cri-shim, and only the
 * cri-shim holds the write end (libuv opens it close-on-exec: container processes never inherit
 * it). Every time the set of container processes changes, the cri-shim writes the whole list of
 * their session ids on one line. When the pipe reaches EOF — the kernel closes it when the
 * cri-shim dies, however it dies — the watch kills each listed process group, then every process
 * whose session is listed (a shell on a terminal puts each job in a group of its own), and exits.
 * A graceful stop ends the pipe itself after killing the containers, so the watch then only
 * catches what a bounded wait let through.
 *
 * Session ids: every container process (main process or exec, piped or on a terminal) is
 * spawned as a session leader (`detached`, or node-pty's setsid), so its pid is its session and
 * process group id, and its children stay in both unless they leave on purpose. The ids are
 * current: a process leaves the list once the cri-shim has seen it exit and SIGKILLed its group
 * (its members are then dead, so the ids cannot be reused by someone else while listed).
 *
 * Alternatives not taken:
 * - `setpriv --pdeathsig KILL` around each command (util-linux; available here): the kernel
 *   kills the direct child when the thread that forked it dies (Node's main thread spawns, so
 *   that would be the right one), but PDEATHSIG is cleared in every fork: `sh -c 'sleep & …'`
 *   would leave its children. It would still need this watch, so it adds nothing but a process.
 * - A per-container supervisor or a subreaper (PR_SET_CHILD_SUBREAPER) between the cri-shim and
 *   the command: needs native code (no CLI sets it), sits in the way of signals, exit codes and
 *   the terminal's foreground group, and costs a process per exec.
 *
 * Limits (plain processes on the host, as `none` is): a process that leaves its session
 * (`setsid`, a daemon's double fork) escapes this and the graceful stop alike, as it escapes
 * `killGroup`; a SIGKILL in the microseconds between a fork and the list being written leaves
 * that one process. Only bwrap's PID namespace is complete.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type net from 'node:net';
import { type Logger } from '../shared/logging.js';

/**
 * Reads lines of session ids until EOF and keeps the last complete one; then kills those groups
 * and sessions. The /proc scan repeats (at most 5 passes) while it finds something, for children
 * forked while it ran. Fields of /proc/PID/stat after "PID (comm) ": state ppid pgrp session.
 */
export const DEATH_WATCH_SCRIPT = `
trap '' HUP INT QUIT TERM
ids=
while IFS= read -r line; do ids=$line; done
[ -n "$ids" ] || exit 0
for id in $ids; do kill -KILL -$id 2>/dev/null; done
pass=0
while [ $pass -lt 5 ]; do
  pass=$((pass + 1))
  hit=
  for f in /proc/[0-9]*/stat; do
    { read -r st < "$f"; } 2>/dev/null || continue
    st=\${st##*') '}
    set -- $st
    [ "$1" = Z ] && continue
    for id in $ids; do
      if [ "$4" = "$id" ]; then
        p=\${f#/proc/}
        kill -KILL "\${p%/stat}" 2>/dev/null && hit=1
      fi
    done
  done
  [ -n "$hit" ] || break
done
echo "cri-shim death watch: killed container sessions $ids" >&2
`;

/** How long `close()` waits for the watch to finish its kills. */
const CLOSE_WAIT_MS = 5000;
/** Least time between two starts of the watch, should it die while the cri-shim runs. */
const RESPAWN_DELAY_MS = 1000;

export class DeathWatch {
  private readonly sessions = new Set<number>();
  private child: ChildProcess | undefined;
  private closed = false;
  private respawn: NodeJS.Timeout | undefined;

  constructor(private readonly log: Logger) {}

  /** Watches the session led by `pid` (a container's main process or an exec). */
  track(pid: number | undefined): void {
    if (!pid || this.closed) return;
    this.sessions.add(pid);
    this.sync();
  }

  /** Forgets `pid`'s session once its group has been killed. */
  untrack(pid: number | undefined): void {
    if (!pid || !this.sessions.delete(pid)) return;
    this.sync();
  }

  /**
   * Ends the pipe as a dying cri-shim would: the watch kills whatever is still listed and exits.
   * Resolves when it has (bounded by CLOSE_WAIT_MS).
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.respawn);
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.stdin?.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, CLOSE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private sync(): void {
    const child = this.child ?? this.start();
    child?.stdin?.write(`${[...this.sessions].join(' ')}\n`);
  }

  private start(): ChildProcess | undefined {
    if (this.closed || this.respawn) return undefined;
    let child: ChildProcess;
    try {
      child = spawn('/bin/sh', ['-c', DEATH_WATCH_SCRIPT], {
        stdio: ['pipe', 'ignore', 'inherit'],
        detached: true,
      });
    } catch (err) {
      this.log(`WARNING: death watch: cannot start /bin/sh: ${(err as Error).message}`);
      return undefined;
    }
    // Neither the watch nor its pipe keep the cri-shim alive.
    child.unref();
    (child.stdin as net.Socket | null)?.unref();
    child.stdin?.on('error', () => {});
    const gone = (why: string): void => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.closed) return;
      this.log(
        `WARNING: death watch exited (${why}): container processes would outlive a killed cri-shim; restarting it`,
      );
      this.respawn = setTimeout(() => {
        this.respawn = undefined;
        if (this.sessions.size) this.sync();
      }, RESPAWN_DELAY_MS).unref();
    };
    child.once('exit', (code, signal) => gone(String(code ?? signal)));
    child.once('error', (err) => gone(err.message));
    this.child = child;
    return child;
  }
}
