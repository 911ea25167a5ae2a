/**
 * The Pod Lifecycle Event Generator: relists the runtime's sandboxes and containers every period
 * (1 s), compares with the previous relist, and reports which pods changed — a container started,
 * died or vanished, a sandbox appeared or went away. The kubelet re-syncs those pods: that is how
 * it notices a container that exited (restartPolicy) and a runtime that lost its state (a
 * restarted cri-shim starts empty: every sandbox it had is gone).
 *
 * Mirrors kubelet `pkg/kubelet/pleg/generic.go` (GenericPLEG: relist, generateEvents, Healthy).
 * Differences: events carry the pod UID and kind only (the kubelet re-reads the runtime when it
 * syncs, no pod cache here); sandboxes are relisted as well as containers, and after every relist
 * the kubelet checks the pods it knows against the ready sandboxes seen (`hasReadySandbox`), so a
 * wiped runtime is noticed even when nothing was seen to change (upstream's periodic resync does
 * that, once a minute); one relist at a time, each bounded by the CRI call deadline, the period
 * measured from the end of the previous one.
 */
import type { PodSandbox, Container } from '../shared/cri/types.js';
import { KubernetesPodUIDLabel } from '../shared/cri/types.js';
import type { RuntimeService } from './kuberuntime-manager.js';
import { abortableSleep } from './util.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export type PodLifecycleEventType =
  | 'ContainerStarted'
  | 'ContainerDied'
  | 'ContainerRemoved'
  | 'ContainerChanged'
  | 'SandboxChanged'
  | 'SandboxRemoved';

export interface PodLifecycleEvent {
  /** The pod UID (label `io.kubernetes.pod.uid`). */
  uid: string;
  type: PodLifecycleEventType;
  /** Container or sandbox id. */
  id: string;
}

export interface PlegOptions {
  /** Relist period. Default 1000 ms (upstream genericPlegRelistPeriod). */
  relistPeriodMs?: number;
  /** A relist older than this makes the PLEG unhealthy. Default 3 min (upstream relistThreshold). */
  relistThresholdMs?: number;
}

interface Record_ {
  uid: string;
  state: string;
}

export class GenericPLEG {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;
  private containers = new Map<string, Record_>();
  private sandboxes = new Map<string, Record_>();
  private lastRelistMs = 0;
  private relists = 0;
  private readonly relistWaiters: (() => void)[] = [];

  constructor(
    private readonly runtime: Pick<RuntimeService, 'listPodSandbox' | 'listContainers'>,
    /** Called after every successful relist with what changed (often nothing). */
    private readonly onRelist: (events: PodLifecycleEvent[]) => void,
    private readonly opts: PlegOptions,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** False when the last successful relist is older than the threshold (runtime not answering). */
  healthy(now = Date.now()): boolean {
    return now - this.lastRelistMs <= (this.opts.relistThresholdMs ?? 180_000);
  }

  /**
   * Whether the last relist saw a ready sandbox for the pod. The kubelet checks its known pods
   * against this: a sandbox created and lost between two relists makes no event.
   */
  hasReadySandbox(uid: string): boolean {
    for (const s of this.sandboxes.values()) if (s.uid === uid && s.state === 'SANDBOX_READY') return true;
    return false;
  }

  get relistCount(): number {
    return this.relists;
  }

  /** Resolves after the next successful relist (for tests). */
  nextRelist(): Promise<void> {
    return new Promise((resolve) => this.relistWaiters.push(resolve));
  }

  /** One relist: list, diff against the previous one, report. Throws when the runtime fails. */
  async relist(): Promise<PodLifecycleEvent[]> {
    const [{ items }, { containers }] = await Promise.all([
      this.runtime.listPodSandbox({}),
      this.runtime.listContainers({}),
    ]);
    const sandboxes = snapshot(items);
    const current = snapshot(containers);
    const events = [
      ...diff(this.sandboxes, sandboxes, sandboxEvent),
      ...diff(this.containers, current, containerEvent),
    ];
    this.sandboxes = sandboxes;
    this.containers = current;
    this.lastRelistMs = Date.now();
    this.relists++;
    this.onRelist(events);
    for (const w of this.relistWaiters.splice(0)) w();
    return events;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    let failing = false;
    while (!signal.aborted) {
      try {
        await this.relist();
        if (failing) this.log('PLEG: the container runtime answers again');
        failing = false;
      } catch (err) {
        if (signal.aborted) break;
        if (!failing) this.log(`PLEG: unable to relist the container runtime: ${errorMessage(err)}`);
        failing = true;
      }
      await abortableSleep(this.opts.relistPeriodMs ?? 1000, signal).catch(() => undefined);
    }
  }
}

function snapshot(list: (PodSandbox | Container)[]): Map<string, Record_> {
  const out = new Map<string, Record_>();
  for (const o of list) {
    const uid = o.labels?.[KubernetesPodUIDLabel];
    if (uid) out.set(o.id, { uid, state: o.state });
  }
  return out;
}

function diff(
  before: Map<string, Record_>,
  after: Map<string, Record_>,
  kind: (old: string | undefined, now: string | undefined) => PodLifecycleEventType | undefined,
): PodLifecycleEvent[] {
  const events: PodLifecycleEvent[] = [];
  for (const id of new Set([...before.keys(), ...after.keys()])) {
    const o = before.get(id);
    const n = after.get(id);
    if (o?.state === n?.state) continue;
    const type = kind(o?.state, n?.state);
    if (type) events.push({ uid: (n ?? o)!.uid, type, id });
  }
  return events;
}

/** generic.go generateEvents, by the container's state before and now. */
function containerEvent(old: string | undefined, now: string | undefined): PodLifecycleEventType {
  if (now === 'CONTAINER_RUNNING') return 'ContainerStarted';
  if (now === 'CONTAINER_EXITED') return 'ContainerDied';
  if (now === undefined) return old === 'CONTAINER_RUNNING' ? 'ContainerDied' : 'ContainerRemoved';
  return 'ContainerChanged';
}

function sandboxEvent(_old: string | undefined, now: string | undefined): PodLifecycleEventType {
  return now === undefined ? 'SandboxRemoved' : 'SandboxChanged';
}
