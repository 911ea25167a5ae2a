/**
 * One worker per pod UID: updates for the same pod run one at a time, in order, and while a pod is
 * busy only its latest pending update is kept (a burst of watch events costs one extra sync, not
 * one per event). Different pods proceed in parallel.
 *
 * Mirrors kubelet `pkg/kubelet/pod_workers.go` (UpdatePod, managePodLoop, the
 * "pending update replaces the previous pending update" rule), without its terminating/terminated
 * state machine: a kill is just another update that wins over a pending sync.
 */
import type { Pod } from '../shared/api/core-v1.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export type PodUpdate = { type: 'sync'; pod: Pod } | { type: 'kill'; uid: string; pod?: Pod };

export type SyncPodFn = (update: PodUpdate) => Promise<void>;

interface Worker {
  running: Promise<void>;
  pending?: PodUpdate;
}

export class PodWorkers {
  private readonly workers = new Map<string, Worker>();
  private closed = false;

  constructor(
    private readonly syncFn: SyncPodFn,
    private readonly log: Logger,
  ) {}

  /** Queues an update for the pod; returns at once. */
  updatePod(update: PodUpdate): void {
    if (this.closed) return;
    const uid = update.type === 'kill' ? update.uid : update.pod.metadata.uid!;
    const w = this.workers.get(uid);
    if (w) {
      // A pending kill is never downgraded to a sync of the same (deleted) pod.
      if (!(w.pending?.type === 'kill' && update.type === 'sync')) w.pending = update;
      return;
    }
    const worker: Worker = { running: Promise.resolve() };
    worker.running = this.loop(uid, worker, update);
    this.workers.set(uid, worker);
  }

  /** Number of pods with work in flight. */
  get busy(): number {
    return this.workers.size;
  }

  /** Resolves once every update queued so far has been handled. */
  async drain(): Promise<void> {
    while (this.workers.size) await Promise.all([...this.workers.values()].map((w) => w.running));
  }

  /** Stops accepting updates and waits for the ones in flight. */
  async close(): Promise<void> {
    this.closed = true;
    await this.drain();
  }

  private async loop(uid: string, worker: Worker, first: PodUpdate): Promise<void> {
    let next: PodUpdate | undefined = first;
    while (next) {
      try {
        await this.syncFn(next);
      } catch (err) {
        this.log(`error syncing pod ${uid} (${next.type}): ${errorMessage(err)}`);
      }
      next = this.closed ? undefined : worker.pending;
      worker.pending = undefined;
    }
    this.workers.delete(uid);
  }
}
