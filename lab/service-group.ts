/**
 * The lab's running services as one group: each started through the supervisor (supervisor.ts)
 * with `Restart=on-failure` (restart-policy.ts), so a killed hop comes back where the others
 * expect it (its `--port` and `--listen` pinned to what its first READY line said); `failed`
 * reports once a service that stays down (it died before it was ready, or crash-looped); start-up
 * steps guarded so that such a failure, or the caller's abort, fails the start at once instead of
 * waiting for a timeout; and one `stop()` that stops them all at once, each with a bounded grace
 * (etcd last).
 *
 * Upstream has no counterpart: a cluster's components are supervised by systemd or the kubelet.
 */
import path from 'node:path';
import type { Logger } from '../shared/logging.js';
import type { ReadyInfo } from '../shared/ready-line.js';
import { superviseService, type ServiceFailure, type SupervisedService } from './restart-policy.js';
import { describeExit, type Service } from './supervisor.js';

export type { ServiceFailure } from './restart-policy.js';

/** What the group stops and reports: a supervised lab service, or etcd. */
type Member = Pick<Service, 'name' | 'stopping' | 'stop'> & { readonly pid: number };

export interface ServiceGroupOptions {
  /** Where the compiled services live (`<dist>/<program>/main.js`). */
  dist: string;
  /** The services' working directory. */
  cwd: string;
  log: Logger;
  readyTimeoutMs?: number;
  /** Aborting it during start-up fails every guarded step. */
  signal?: AbortSignal;
  /** Added to every service's environment (e.g. the lab's `--tls-keylog`, tls-keylog.ts). */
  env?: NodeJS.ProcessEnv;
}

export type LabProgram = 'apiserver' | 'kubelet-sim' | 'cri-shim';

export class ServiceGroup {
  readonly services: Member[] = [];
  private readonly restarted = new Map<string, (ready: ReadyInfo) => void>();
  private readonly supervised = new Map<string, SupervisedService>();
  /** Resolves when a service exits without being asked to (the lab is then broken). */
  readonly failed: Promise<ServiceFailure>;
  private reportFailure!: (f: ServiceFailure) => void;
  private stopping = false;
  private stopped: Promise<void> | undefined;
  private readonly abort = new AbortController();
  private readonly died: Promise<never>;
  private readonly interrupted: Promise<never>;
  private readonly pending: Promise<Service>[] = [];

  constructor(private readonly opts: ServiceGroupOptions) {
    this.failed = new Promise<ServiceFailure>((r) => (this.reportFailure = r));
    // A service dying during start-up fails the start at once instead of waiting for a timeout.
    this.died = this.failed.then((f) => {
      this.abort.abort();
      throw new Error(`${f.service} exited unexpectedly (${describeExit(f)}) during start-up`);
    });
    this.died.catch(() => {});
    this.interrupted = new Promise<never>((_, reject) => {
      const onAbort = () => {
        this.abort.abort();
        reject(new Error('start-up interrupted'));
      };
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
    });
    this.interrupted.catch(() => {});
  }

  /** Aborted once start-up failed or was interrupted: for steps that take a signal. */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /**
   * Starts `node <dist>/<program>/main.js args` as the service `name` (env added to this
   * process's), restarted on failure with the same port and endpoint.
   */
  start(name: string, program: LabProgram, args: string[], env?: NodeJS.ProcessEnv): SupervisedService {
    const svc = superviseService({
      name,
      script: path.join(this.opts.dist, program, 'main.js'),
      args,
      cwd: this.opts.cwd,
      env: env || this.opts.env ? { ...process.env, ...this.opts.env, ...env } : undefined,
      log: this.opts.log,
      readyTimeoutMs: this.opts.readyTimeoutMs,
      restartArgs: (first) => pinnedArgs(args, first),
      onRestarted: (ready) => this.restarted.get(name)?.(ready),
    });
    this.supervised.set(name, svc);
    this.services.push({
      name,
      stop: (grace) => svc.stop(grace),
      get stopping() {
        return svc.stopping;
      },
      get pid() {
        return svc.current.pid;
      },
    });
    void svc.failed.then((f) => {
      if (!this.stopping) this.reportFailure(f);
    });
    return svc;
  }

  /** Runs `reconcile` each time the service `name` is back after a restart. */
  onRestarted(name: string, reconcile: (ready: ReadyInfo) => void): void {
    this.restarted.set(name, reconcile);
  }

  /** Stops the service `name` on purpose and starts it again; resolves once it is ready. */
  async restart(name: string): Promise<ReadyInfo> {
    const svc = this.supervised.get(name);
    if (!svc) throw new Error(`no service ${name}`);
    return svc.restart();
  }

  /** Takes a service started elsewhere (etcd) into the group: not restarted, its exit a failure. */
  adopt(svc: Service): void {
    this.services.push(svc);
    void svc.exited.then((e) => {
      if (!this.stopping && !svc.stopping)
        this.reportFailure({ service: svc.name, reason: 'start-up', ...e });
    });
  }

  /** A service still starting: stopped with the rest if start-up fails before it is adopted. */
  starting<S extends Service>(svc: Promise<S>): Promise<S> {
    this.pending.push(svc);
    return svc;
  }

  /** `step`, unless a service dies or the start is interrupted first. */
  guard<T>(step: Promise<T>): Promise<T> {
    return Promise.race([step, this.died, this.interrupted]);
  }

  /**
   * Stops every service and waits for them to exit, all at once, each SIGKILLed after a bounded
   * grace (issue #11: a kubelet-sim slow to stop held up the rest for seconds). Idempotent.
   */
  stop(): Promise<void> {
    this.stopping = true;
    this.stopped ??= (async () => {
      // etcd last: the apiserver may still write while it shuts down.
      await Promise.all(this.services.filter((s) => s.name !== 'etcd').map((s) => s.stop()));
      await Promise.all(this.services.map((s) => s.stop()));
    })();
    return this.stopped;
  }

  /** After a failed start-up: stop what started, including services that were still starting. */
  async abandon(): Promise<void> {
    this.abort.abort();
    for (const p of this.pending) {
      const svc = await p.catch(() => undefined);
      if (svc && !this.services.includes(svc)) this.services.push(svc);
    }
    await this.stop();
  }

  /** pid of each service, by name. */
  pids(): Record<string, number> {
    return Object.fromEntries(this.services.map((s) => [s.name, s.pid]));
  }
}

/** A restart's argv: `--port` and `--listen` as the first start's READY line reported them. */
export function pinnedArgs(args: readonly string[], first: ReadyInfo): string[] {
  const out = [...args];
  const set = (flag: string, value: string | undefined) => {
    const i = out.indexOf(flag);
    if (i >= 0 && value !== undefined && i + 1 < out.length) out[i + 1] = value;
  };
  if (typeof first.url === 'string') set('--port', new URL(first.url).port || undefined);
  if (typeof first.endpoint === 'string') set('--listen', first.endpoint);
  return out;
}
