/**
 * A small scheduler running beside the apiserver: every pod created without `spec.nodeName`
 * (and with no other `schedulerName`) is bound, through the `pods/binding` storage, to the ready
 * node that runs the fewest pods (ties broken by name). Pods that cannot be placed get the
 * `PodScheduled=False, reason Unschedulable` condition and wait for a node to become ready.
 *
 * A node is ready when its `Ready` condition is `True` and, if the kubelet reports one, its
 * `lastHeartbeatTime` is no older than the grace period (upstream `--node-monitor-grace-period`,
 * 40 s; the kubelet-sim heartbeats every 10 s).
 *
 * Mirrors kube-scheduler (`pkg/scheduler/schedule_one.go`: schedulingCycle → bind through the
 * binding subresource; the "0/N nodes are available" message of `framework.FitError`) reduced to one
 * filter (node ready and schedulable) and one score (least pods, as NodeResourcesFit's
 * LeastAllocated would rank equal-sized pods). Upstream it is a separate binary talking to the
 * apiserver over HTTP; here it runs in the apiserver process and uses the storage directly, with
 * the same binding semantics (a 409 means another binder won and is ignored). It is driven by
 * watches on pods and nodes: any change triggers one pass over the pending pods.
 */
import type { KubeObject, Node, Pod } from '../shared/api/core-v1.js';
import { setCondition, type BindingREST } from './registry/pod/binding-rest.js';
import type { GenericStore } from './registry/generic-store.js';
import type { Context, WatchHandle } from './registry/rest.js';
import { StatusError } from '../shared/status.js';
import { errorMessage, type Logger } from '../shared/logging.js';
import { newEvent, podReference } from '../shared/events.js';

export const SCHEDULER_NAME = 'default-scheduler';

export interface SchedulerOptions {
  pods: GenericStore;
  nodes: GenericStore;
  binding: BindingREST;
  /** Where `Scheduled` events go (`events` storage); none recorded without. */
  events?: GenericStore;
  /** A node whose last heartbeat is older than this is not ready. Default 40 s. */
  nodeMonitorGracePeriodMs?: number;
  log?: Logger;
  now?: () => Date;
}

const CTX: Context = { namespace: '', user: { name: 'system:kube-scheduler', groups: [] } };

export class Scheduler {
  private watches: WatchHandle[] = [];
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly grace: number;
  private readonly log: Logger;
  private readonly now: () => Date;

  constructor(private readonly opts: SchedulerOptions) {
    this.grace = opts.nodeMonitorGracePeriodMs ?? 40_000;
    this.log = opts.log ?? (() => {});
    this.now = opts.now ?? (() => new Date());
  }

  async start(): Promise<void> {
    const kick = (): void => this.kick();
    this.watches.push(await this.opts.pods.watch(CTX, { fieldSelector: 'spec.nodeName=' }, kick));
    this.watches.push(await this.opts.nodes.watch(CTX, {}, kick));
    this.kick();
  }

  /** Stops watching; resolves once a pass in progress has finished. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const w of this.watches.splice(0)) w.stop();
    await this.running;
  }

  /** Resolves when no pass is running or due (for tests and shutdown). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  /** Runs a pass now, or once more after the current one (events during a pass are not lost). */
  private kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch (err) {
          this.log(`scheduler: ${errorMessage(err)}`);
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async pass(): Promise<void> {
    const pods = (await this.opts.pods.list(CTX, {})).items as Pod[];
    const pending = pods.filter(
      (p) =>
        !p.spec?.nodeName &&
        !p.metadata.deletionTimestamp &&
        (p.spec?.schedulerName ?? SCHEDULER_NAME) === SCHEDULER_NAME &&
        !(Array.isArray(p.spec?.schedulingGates) && p.spec.schedulingGates.length),
    );
    if (!pending.length) return;
    const nodes = (await this.opts.nodes.list(CTX, {})).items as Node[];
    const ready = nodes.filter((n) => this.schedulable(n));
    const load = new Map<string, number>(ready.map((n) => [n.metadata.name ?? '', 0]));
    for (const p of pods) {
      const n = p.spec?.nodeName;
      if (n && load.has(n)) load.set(n, load.get(n)! + 1);
    }
    for (const pod of pending) {
      if (this.stopped) return;
      const ns = pod.metadata.namespace ?? '';
      const name = pod.metadata.name ?? '';
      const node = [...load.entries()].sort(([a, x], [b, y]) => x - y || a.localeCompare(b))[0]?.[0];
      if (!node) {
        await this.markUnschedulable(pod, nodes.length);
        continue;
      }
      try {
        await this.opts.binding.createNamed({ ...CTX, namespace: ns }, name, {
          apiVersion: 'v1',
          kind: 'Binding',
          metadata: { name, namespace: ns, uid: pod.metadata.uid },
          target: { apiVersion: 'v1', kind: 'Node', name: node },
        });
        load.set(node, load.get(node)! + 1);
        this.log(`scheduler: bound ${ns}/${name} to ${node}`);
        await this.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${ns}/${name} to ${node}`);
      } catch (err) {
        // Bound or deleted meanwhile: nothing left to do for this pod.
        if (err instanceof StatusError && (err.code === 409 || err.code === 404)) continue;
        throw err;
      }
    }
  }

  /** An Event about a pod, as kube-scheduler's recorder writes it; a failure is only logged. */
  private async record(pod: Pod, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    if (!this.opts.events) return;
    const ev = newEvent(podReference(pod), type, reason, message, { component: SCHEDULER_NAME }, this.now());
    await this.opts.events
      .create({ ...CTX, namespace: ev.metadata.namespace! }, ev as unknown as KubeObject)
      .catch((err: unknown) => this.log(`scheduler: event ${reason}: ${errorMessage(err)}`));
  }

  /** Ready condition True, not cordoned, heartbeat (if any) within the grace period. */
  schedulable(node: Node): boolean {
    if (node.spec?.unschedulable === true) return false;
    // A client may have stored anything here: read it as untrusted JSON.
    const conditions: unknown[] = Array.isArray(node.status?.conditions) ? node.status.conditions : [];
    const ready = conditions.find((c) => (c as { type?: unknown }).type === 'Ready') as
      { status?: unknown; lastHeartbeatTime?: unknown } | undefined;
    if (ready?.status !== 'True') return false;
    if (typeof ready.lastHeartbeatTime !== 'string') return true;
    const beat = Date.parse(ready.lastHeartbeatTime);
    return Number.isNaN(beat) || this.now().getTime() - beat <= this.grace;
  }

  private async markUnschedulable(pod: Pod, nodeCount: number): Promise<void> {
    const message = `0/${nodeCount} nodes are available: ${nodeCount ? `${nodeCount} node(s) were not ready.` : 'no nodes registered.'}`;
    const key = this.opts.pods.key(
      { ...CTX, namespace: pod.metadata.namespace ?? '' },
      pod.metadata.name ?? '',
    );
    try {
      await this.opts.pods.opts.store.guaranteedUpdate(key, (current) => {
        const p = current as Pod;
        if (p.spec?.nodeName) return p;
        setCondition(p, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message });
        return p;
      });
    } catch {
      // Deleted meanwhile.
    }
  }
}
