/**
 * A service that comes back: `Restart=on-failure` with back-off, as a node's systemd runs the
 * kubelet and the container runtime (systemd.service(5): `Restart=`, `RestartSec=`,
 * `StartLimitBurst=` within `StartLimitIntervalSec=`).
 *
 * The first start is the lab's start-up: if it fails, that is a failure (no retry). Once it has
 * been ready, an exit nobody asked for starts it again after a delay that doubles from
 * `initialDelayMs` to `maxDelayMs`; a restart counts as done when the new process is ready again
 * (a restart that is not ready in time is killed and counts as another failure). More than
 * `burst` starts within `intervalMs` is a crash loop: it stays down and `failed` resolves.
 *
 * What differs from systemd: a restarted service gets the arguments `restartArgs` derives from its
 * first READY line, so that what others hold on to (a port picked with `--port 0`) stays the same.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../shared/logging.js';
import {
  defaultLog,
  describeExit,
  startService,
  type ExitInfo,
  type ReadyInfo,
  type Service,
  type ServiceOptions,
} from './supervisor.js';

export interface RestartPolicy {
  /** The first delay before a restart (systemd `RestartSec=`); doubles up to `maxDelayMs`. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** A crash loop: more than `burst` starts within `intervalMs`. */
  burst: number;
  intervalMs: number;
}

export const DEFAULT_RESTART_POLICY: RestartPolicy = {
  initialDelayMs: 100,
  maxDelayMs: 5_000,
  burst: 5,
  intervalMs: 60_000,
};

export interface ServiceFailure extends ExitInfo {
  service: string;
  /** Why it stays down: it exited before it was ever ready, or it kept crashing. */
  reason: 'start-up' | 'crash-loop';
}

export interface SupervisedOptions extends ServiceOptions {
  policy?: Partial<RestartPolicy>;
  /** The arguments of every restart, from the first READY line; default: the same `args`. */
  restartArgs?: (first: ReadyInfo) => string[];
  /** Called each time a restart is ready again (the lab reconciles what the restart lost). */
  onRestarted?: (ready: ReadyInfo) => void;
}

export interface SupervisedService {
  readonly name: string;
  /** The process running now (another one after each restart). */
  readonly current: Service;
  /** The first start's READY line. */
  readonly ready: Promise<ReadyInfo>;
  /** Resolves when the service stays down: its first start failed, or a crash loop. */
  readonly failed: Promise<ServiceFailure>;
  readonly stopping: boolean;
  /** How many times it was started again. */
  readonly restarts: number;
  /** Stops it on purpose (no restart follows): the current process, bounded as Service.stop. */
  stop(graceMs?: number): Promise<ExitInfo>;
  /** Stops the current process on purpose and starts it again; resolves when it is ready. */
  restart(): Promise<ReadyInfo>;
}

export function superviseService(opts: SupervisedOptions): SupervisedService {
  const policy = { ...DEFAULT_RESTART_POLICY, ...opts.policy };
  const log = opts.log ?? defaultLog;
  const say: Logger = (line) => log(`[lab] ${line}`);
  let current = startService(opts);
  let first: ReadyInfo | undefined;
  let stopping = false;
  let restarts = 0;
  let starts = [Date.now()];
  const wake = new AbortController();
  let reportFailure!: (f: ServiceFailure) => void;
  const failed = new Promise<ServiceFailure>((r) => (reportFailure = r));
  const ready = current.ready.then((info) => (first = info));
  ready.catch(() => {});

  /** Starts a new process with the restart arguments and watches it. */
  const startAgain = (counted = true): Service => {
    if (counted) starts.push(Date.now());
    restarts++;
    current = startService({
      ...opts,
      args: first && opts.restartArgs ? opts.restartArgs(first) : opts.args,
    });
    const svc = current;
    svc.ready.then(
      (info) => {
        say(`${opts.name} is back (pid ${svc.pid}, restart ${restarts})`);
        opts.onRestarted?.(info);
      },
      // Not ready in time: kill it; its exit counts as another failure.
      () => void svc.stop(),
    );
    void watch(svc);
    return svc;
  };

  /** On an exit nobody asked for: restart after the back-off, or give up. */
  const watch = async (svc: Service): Promise<void> => {
    const e = await svc.exited;
    if (stopping || svc.stopping || svc !== current) return;
    if (!first) {
      reportFailure({ service: opts.name, reason: 'start-up', ...e });
      return;
    }
    const now = Date.now();
    starts = starts.filter((t) => now - t < policy.intervalMs);
    if (starts.length >= policy.burst) {
      say(
        `${opts.name} exited (${describeExit(e)}) ${starts.length} times within ${policy.intervalMs / 1000} s: a crash loop, it stays down`,
      );
      reportFailure({ service: opts.name, reason: 'crash-loop', ...e });
      return;
    }
    const delay = Math.min(policy.initialDelayMs * 2 ** (starts.length - 1), policy.maxDelayMs);
    say(`${opts.name} exited unexpectedly (${describeExit(e)}): restarting it in ${delay} ms`);
    await sleep(delay, undefined, { signal: wake.signal }).catch(() => {});
    if (!stopping) startAgain();
  };
  void watch(current);

  return {
    name: opts.name,
    get current() {
      return current;
    },
    ready,
    failed,
    get stopping() {
      return stopping;
    },
    get restarts() {
      return restarts;
    },
    stop(graceMs?: number) {
      stopping = true;
      wake.abort();
      return current.stop(graceMs);
    },
    async restart() {
      await current.stop();
      return startAgain(false).ready;
    },
  };
}
