/**
 * The kubelet's event recorder: what happens to a pod's containers (Pulled, Created, Started,
 * Killing, BackOff, Failed) becomes a core/v1 Event in the pod's namespace, so that
 * `kubectl describe pod` and `kubectl get events` show the pod's life.
 *
 * Mirrors client-go `tools/record` (EventRecorder, the broadcaster's sink writing through the
 * apiserver, and the correlator that folds a repeated event into one whose `count` grows) and the
 * kubelet's reasons and messages (`pkg/kubelet/events/event.go`, kuberuntime_container.go).
 * Recording never blocks nor fails the sync: writes go out one at a time from a bounded queue
 * (the oldest dropped past `maxQueued`, as upstream's broadcaster drops on a full channel), and a
 * failed write is logged once per reason.
 */
import { newEvent, type CoreEvent, type EventSource, type ObjectReference } from '../shared/events.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export interface EventSink {
  create(namespace: string, event: CoreEvent): Promise<unknown>;
  /** A JSON merge patch (count, lastTimestamp) of an event already written. */
  patch(namespace: string, name: string, patch: Partial<CoreEvent>): Promise<unknown>;
}

/** How long a repeated event is folded into the last one (upstream's correlator cache keeps them). */
const FOLD_WINDOW_MS = 10 * 60_000;

export class EventRecorder {
  private readonly queue: (() => Promise<unknown>)[] = [];
  private draining: Promise<void> | undefined;
  private closed = false;
  private readonly seen = new Map<string, { name: string; count: number; at: number }>();
  private readonly failed = new Set<string>();

  constructor(
    private readonly sink: EventSink,
    private readonly source: EventSource,
    private readonly log: Logger,
    private readonly maxQueued = 256,
  ) {}

  event(ref: ObjectReference, type: 'Normal' | 'Warning', reason: string, message: string): void {
    const ns = ref.namespace ?? 'default';
    const key = [ref.uid, ref.fieldPath, type, reason, message].join('\0');
    const now = Date.now();
    const last = this.seen.get(key);
    if (last && now - last.at < FOLD_WINDOW_MS) {
      last.count++;
      last.at = now;
      const patch = { count: last.count, lastTimestamp: new Date(now).toISOString().replace(/\.\d+Z$/, 'Z') };
      return this.enqueue(reason, () => this.sink.patch(ns, last.name, patch));
    }
    const ev = newEvent(ref, type, reason, message, this.source);
    this.seen.set(key, { name: ev.metadata.name!, count: 1, at: now });
    if (this.seen.size > 4 * this.maxQueued) this.seen.delete(this.seen.keys().next().value!);
    this.enqueue(reason, () => this.sink.create(ns, ev));
  }

  /**
   * Drops what is queued and records nothing more; waits for the write under way, but never
   * longer than `graceMs` (a stopping kubelet must not hang on an apiserver that is gone).
   */
  async close(graceMs = 1000): Promise<void> {
    this.closed = true;
    this.queue.length = 0;
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)));
    await Promise.race([this.draining, bound]);
    clearTimeout(timer);
  }

  private enqueue(reason: string, write: () => Promise<unknown>): void {
    if (this.closed) return;
    this.queue.push(async () => {
      try {
        await write();
        this.failed.delete(reason);
      } catch (err) {
        if (!this.failed.has(reason)) this.log(`event ${reason}: ${errorMessage(err)}`);
        this.failed.add(reason);
      }
    });
    if (this.queue.length > this.maxQueued) this.queue.shift();
    this.draining ??= this.drain();
  }

  private async drain(): Promise<void> {
    while (this.queue.length) await this.queue.shift()!();
    this.draining = undefined;
  }
}
