/**
 * The lab's running services as one group: each started through the supervisor (supervisor.ts)
 * and watched, so that one exiting on its own is reported once through `failed`; start-up steps
 * guarded so that such an exit, or the caller's abort, fails the start at once instead of waiting
 * for a timeout; and one `stop()` that stops them in order (kubelets first, etcd last).
 *
 * Upstream has no counterpart: a cluster's components are supervised by systemd or the kubelet.
 */
import path from 'node:path';
import type { Logger } from '../shared/logging.js';
import { describeExit, startService, type ExitInfo, type Service } from './supervisor.js';

export interface ServiceFailure extends ExitInfo {
  service: string;
}

export interface ServiceGroupOptions {
  /** Where the compiled services live (`<dist>/<program>/main.js`). */
  dist: string;
  /** The services' working directory. */
  cwd: string;
  log: Logger;
  readyTimeoutMs?: number;
  /** Aborting it during start-up fails every guarded step. */
  signal?: AbortSignal;
}

export type LabProgram = 'apiserver' | 'kubelet-sim' | 'cri-shim';

export class ServiceGroup {
  readonly services: Service[] = [];
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

  /** Starts `node <dist>/<program>/main.js args` as the service `name` (env added to this process's). */
  start(name: string, program: LabProgram, args: string[], env?: NodeJS.ProcessEnv): Service {
    const svc = startService({
      name,
      script: path.join(this.opts.dist, program, 'main.js'),
      args,
      cwd: this.opts.cwd,
      env: env && { ...process.env, ...env },
      log: this.opts.log,
      readyTimeoutMs: this.opts.readyTimeoutMs,
    });
    this.adopt(svc);
    return svc;
  }

  /** Takes a service started elsewhere (etcd) into the group. */
  adopt(svc: Service): void {
    this.services.push(svc);
    void svc.exited.then((e) => {
      if (!this.stopping && !svc.stopping) this.reportFailure({ service: svc.name, ...e });
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

  /** Stops every service and waits for them to exit. Idempotent. */
  stop(): Promise<void> {
    this.stopping = true;
    this.stopped ??= (async () => {
      // The kubelets first, so they do not log errors about a vanished apiserver or runtime.
      await Promise.all(this.services.filter((s) => s.name.startsWith('kubelet-sim')).map((s) => s.stop()));
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
