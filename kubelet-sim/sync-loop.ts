/**
 * The kubelet's main loop: learn which pods are bound to this node (list, then watch; a bounded
 * periodic relist when the apiserver cannot watch) and hand each change to the pod workers.
 * Every relist also cleans up: runtime pods no longer in the apiserver are killed (this is how a
 * restarted kubelet reconciles with what the runtime kept).
 *
 * Mirrors kubelet `pkg/kubelet/kubelet.go` (syncLoop, syncLoopIteration, HandlePodCleanups) with
 * the apiserver pod source of `pkg/kubelet/config/apiserver.go` (a reflector on
 * `spec.nodeName=NODE`). Differences: no static pods or file/http sources, and the periodic
 * resync is the relist that follows each watch (the watch asks the server to end after
 * `watchTimeoutSeconds`).
 */
import { StatusError } from '../shared/status.js';
import type { Pod } from '../shared/api/core-v1.js';
import type { ApiServerClient } from './apiserver-client.js';
import type { PodWorkers } from './pod-workers.js';
import { abortableSleep } from './util.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export interface SyncLoopOptions {
  nodeName: string;
  /** Server-side watch timeout; a relist (and cleanup) follows each watch. Default 10 s. */
  watchTimeoutSeconds?: number;
  /** Relist period when the apiserver cannot watch. Default 1 s. */
  relistIntervalMs?: number;
  /** Backoff after a failed list or watch (doubling up to 5 s). Default 200 ms. */
  errorBackoffMs?: number;
}

export interface SyncLoopHost {
  /** UIDs of the pods the runtime holds for this kubelet. */
  runtimePodUids(): Promise<Set<string>>;
}

export class SyncLoop {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private watchSupported = true;
  private relists = 0;
  private readonly relistWaiters: (() => void)[] = [];

  constructor(
    private readonly api: ApiServerClient,
    private readonly workers: PodWorkers,
    private readonly host: SyncLoopHost,
    private readonly opts: SyncLoopOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Stops listing and watching; in-flight pod work is the workers' to finish. */
  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** Resolves after the next complete relist (list, dispatch, cleanup) — for tests. */
  nextRelist(): Promise<void> {
    return new Promise((resolve) => this.relistWaiters.push(resolve));
  }

  get relistCount(): number {
    return this.relists;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let backoff = this.opts.errorBackoffMs ?? 200;
    while (!signal.aborted) {
      try {
        const resourceVersion = await this.relist(signal);
        backoff = this.opts.errorBackoffMs ?? 200;
        if (this.watchSupported) await this.watch(resourceVersion, signal);
        else await abortableSleep(this.opts.relistIntervalMs ?? 1000, signal);
      } catch (err) {
        if (signal.aborted) break;
        this.log(`pod sync loop: ${errorMessage(err)}; retrying in ${backoff}ms`);
        await abortableSleep(backoff, signal).catch(() => undefined);
        backoff = Math.min(backoff * 2, 5000);
      }
    }
  }

  /** List, dispatch every pod, kill runtime pods the apiserver no longer has. */
  private async relist(signal: AbortSignal): Promise<string | undefined> {
    const list = await this.api.listPods(this.opts.nodeName, signal);
    const known = new Set<string>();
    for (const pod of list.items ?? []) {
      if (pod.spec?.nodeName !== this.opts.nodeName || !pod.metadata.uid) continue;
      known.add(pod.metadata.uid);
      this.dispatch(pod);
    }
    for (const uid of await this.host.runtimePodUids()) {
      if (!known.has(uid)) this.workers.updatePod({ type: 'kill', uid });
    }
    this.relists++;
    for (const w of this.relistWaiters.splice(0)) w();
    return list.metadata?.resourceVersion;
  }

  private async watch(resourceVersion: string | undefined, signal: AbortSignal): Promise<void> {
    const timeout = this.opts.watchTimeoutSeconds ?? 10;
    // The server should end the watch itself; this bounds it if the server ignores timeoutSeconds.
    const local = AbortSignal.any([signal, AbortSignal.timeout((timeout + 5) * 1000)]);
    try {
      for await (const ev of this.api.watchPods(this.opts.nodeName, resourceVersion, timeout, local)) {
        if (ev.type === 'ERROR') return; // e.g. 410 Gone: relist
        if (ev.type === 'BOOKMARK') continue;
        const pod = ev.object;
        if (!pod?.metadata?.uid) continue;
        if (ev.type === 'DELETED' || pod.spec?.nodeName !== this.opts.nodeName) {
          this.workers.updatePod({ type: 'kill', uid: pod.metadata.uid, pod });
        } else this.dispatch(pod);
      }
    } catch (err) {
      if (signal.aborted) return;
      if (local.aborted) return; // our own bound: relist
      if (err instanceof StatusError && [400, 404, 405, 406, 501].includes(err.code)) {
        this.watchSupported = false;
        this.log(
          `apiserver cannot watch pods (${err.code} ${err.message}); relisting every ${this.opts.relistIntervalMs ?? 1000}ms`,
        );
        return;
      }
      throw err;
    }
  }

  private dispatch(pod: Pod): void {
    if (pod.metadata.deletionTimestamp) {
      this.workers.updatePod({ type: 'kill', uid: pod.metadata.uid!, pod });
      return;
    }
    // A pod that has finished is never started again (kubelet: terminal phase).
    if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return;
    this.workers.updatePod({ type: 'sync', pod });
  }
}
