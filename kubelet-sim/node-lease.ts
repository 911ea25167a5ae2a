/**
 * The node's Lease: `kube-node-lease/NODE` (coordination.k8s.io/v1), created if missing and
 * renewed every `renewIntervalMs`, the cheap heartbeat the node lifecycle controller and
 * `kubectl describe node` (its "Lease:" block: holder, acquire and renew times) read.
 *
 * Mirrors kubernetes `staging/src/k8s.io/component-helpers/apimachinery/lease/controller.go`
 * (Run → sync: get or create the lease, then update its renewTime; on a failed update, retry
 * with backoff from a fresh get) as `pkg/kubelet/nodelease` configures it: holderIdentity the
 * node name, leaseDurationSeconds 40, renew interval a quarter of that (10 s), an owner
 * reference to the Node so the lease goes with it. Differences: no retry backoff within one
 * tick (a failure waits for the next tick, as the node status updater does).
 */
import { errorMessage, type Logger } from '../shared/logging.js';
import { isApiStatus, type ApiServerClient, type Lease } from './apiserver-client.js';
import { abortableSleep } from './util.js';

export const NODE_LEASE_NAMESPACE = 'kube-node-lease';
/** Upstream's default `--node-lease-duration-seconds`. */
export const LEASE_DURATION_SECONDS = 40;
/** Upstream renews at a quarter of the duration (nodelease.renewIntervalFraction 0.25). */
export const DEFAULT_RENEW_INTERVAL_MS = (LEASE_DURATION_SECONDS * 1000) / 4;

/** metav1.MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class NodeLeaseController {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;

  constructor(
    private readonly api: ApiServerClient,
    private readonly node: { name: string; uid?: string },
    private readonly log: Logger,
    private readonly renewIntervalMs = DEFAULT_RENEW_INTERVAL_MS,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  /** One renewal: the lease with renewTime now (created when missing). */
  async sync(signal?: AbortSignal): Promise<Lease> {
    const now = microTime(new Date());
    let lease: Lease;
    try {
      lease = await this.api.getLease(NODE_LEASE_NAMESPACE, this.node.name, signal);
    } catch (err) {
      if (!isApiStatus(err, 404)) throw err;
      return this.api.createLease(this.newLease(now), signal);
    }
    return this.api.updateLease(
      { ...lease, spec: { ...lease.spec, holderIdentity: this.node.name, renewTime: now } },
      signal,
    );
  }

  private newLease(now: string): Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.node.name,
        namespace: NODE_LEASE_NAMESPACE,
        ...(this.node.uid
          ? {
              ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: this.node.name, uid: this.node.uid }],
            }
          : {}),
      },
      spec: {
        holderIdentity: this.node.name,
        leaseDurationSeconds: LEASE_DURATION_SECONDS,
        renewTime: now,
        acquireTime: now,
      },
    };
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await this.sync(signal);
      } catch (err) {
        if (!signal.aborted)
          this.log(`failed to renew lease ${NODE_LEASE_NAMESPACE}/${this.node.name}: ${errorMessage(err)}`);
      }
      try {
        await abortableSleep(this.renewIntervalMs, signal);
      } catch {
        return;
      }
    }
  }
}
