/**
 * Per-container restart back-off: how long a container that keeps exiting waits before the next
 * start (CrashLoopBackOff). The first restart is immediate; each following one waits twice as long
 * as the last, up to a maximum; an entry unused for twice the maximum starts over.
 *
 * Mirrors client-go `util/flowcontrol/backoff.go` (Backoff: Next, IsInBackOffSince, GC) as the
 * kubelet uses it in `kuberuntime_container.go` (doBackOff: the key is pod + container, the event
 * time is when the container finished). Upstream defaults: 10 s initial, 300 s maximum.
 */

interface Entry {
  backoffMs: number;
  lastUpdateMs: number;
}

export class Backoff {
  private readonly entries = new Map<string, Entry>();

  constructor(
    readonly initialMs: number,
    readonly maxMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The current back-off of `key` (0 when it has none). */
  get(key: string): number {
    return this.entries.get(key)?.backoffMs ?? 0;
  }

  /**
   * Whether `key` must still wait after an event at `eventMs`, and for how much longer (ms);
   * 0 when it may go ahead.
   */
  remaining(key: string, eventMs: number): number {
    const e = this.entries.get(key);
    if (!e || this.expired(e, eventMs)) return 0;
    return Math.max(0, eventMs + e.backoffMs - this.now());
  }

  /**
   * How much longer `key` is backing off, counted from its last update (0 when it may go ahead):
   * upstream IsInBackOffSinceUpdate, what the image puller asks.
   */
  inBackOffSinceUpdate(key: string): number {
    const e = this.entries.get(key);
    if (!e) return 0;
    return Math.max(0, e.lastUpdateMs + e.backoffMs - this.now());
  }

  /** Records a restart after the event at `eventMs`: the next back-off doubles (or starts over). */
  next(key: string, eventMs: number): void {
    const e = this.entries.get(key);
    const now = this.now();
    if (!e || this.expired(e, eventMs)) {
      this.entries.set(key, { backoffMs: this.initialMs, lastUpdateMs: now });
      return;
    }
    e.backoffMs = Math.min(e.backoffMs * 2, this.maxMs);
    e.lastUpdateMs = now;
  }

  /** Forgets `key` (its pod is gone). */
  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Forgets every key starting with `prefix` (e.g. all containers of a pod UID). */
  resetPrefix(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }

  /** Drops entries unused for twice the maximum (upstream GC), so the map stays bounded. */
  gc(): void {
    for (const [k, e] of this.entries)
      if (this.now() - e.lastUpdateMs > 2 * this.maxMs) this.entries.delete(k);
  }

  get size(): number {
    return this.entries.size;
  }

  private expired(e: Entry, eventMs: number): boolean {
    return eventMs - e.lastUpdateMs > 2 * this.maxMs;
  }
}
