/**
 * The kubelet-sim assembled: kubelet server, node registration and status, pod workers and the
 * sync loop, all on one CRI runtime connection. `Kubelet.start` (or `startKubelet`) is what
 * `main.ts` runs and what in-process tests start.
 *
 * Pods are synced when the apiserver says so (sync loop), when the runtime changes under them
 * (PLEG: a container exited, a restarted runtime lost the sandbox) and when a container's restart
 * back-off is over.
 *
 * Mirrors kubelet `pkg/kubelet/kubelet.go` at lab scale: the `Kubelet` class is upstream's
 * `Kubelet` struct, its constructor NewMainKubelet (options, no I/O), `run()` Run (the start-up
 * below), and `syncPod`, `killPod` and `resyncLater` the methods the pod workers, the sync loop
 * and the PLEG call (upstream SyncPod, SyncTerminatingPod, the work queue's re-enqueue). Order of start-up: runtime version → server listening (the real port is known)
 * → Node registered → pods synced. `close()` stops the loops and the server but leaves the pods
 * running in the runtime, like a real kubelet going down.
 */
import { EventRecorder } from './event-recorder.js';
import type { VerificationKeys } from '../shared/auth/tokens.js';
import {
  connectImageService,
  connectRuntime,
  type ImageServiceClient,
  type RuntimeServiceClient,
} from '../shared/cri/client.js';
import type { Pod } from '../shared/api/core-v1.js';
import { ApiServerClient, isApiStatus } from './apiserver-client.js';
import { Backoff } from './backoff.js';
import { KubeRuntimeManager, podRef, type RuntimeService } from './kuberuntime-manager.js';
import { NodeLeaseController } from './node-lease.js';
import { NodeStatusUpdater, registerWithApiServer, type NodeStatusConfig } from './node-status.js';
import { ImageManager, type ImageService } from './image-manager.js';
import { generatePodStatus } from './pod-status.js';
import { type KubeletFault } from './fault-injection.js';
import { GenericPLEG, type PodLifecycleEvent } from './pleg.js';
import { PodWorkers, type PodUpdate } from './pod-workers.js';
import { KubeletServer, type KubeletTlsOptions } from './server.js';
import { StatusManager } from './status-manager.js';
import { SyncLoop } from './sync-loop.js';
import { errorMessage, stderrLogger, type Logger } from '../shared/logging.js';
import {
  webhookAuthorizer,
  type KubeletAuthorizationMode,
  type WebhookCacheOptions,
} from './kubelet-authorizer.js';

export interface KubeletOptions {
  /** apiserver URL, e.g. `http://127.0.0.1:6443`. */
  apiserver: string;
  /** This node's bearer token for the apiserver. */
  token: string;
  /** Keys that verify the apiserver's token for us (audience `kubelet`); see server.ts. */
  apiserverTokenKeys?: VerificationKeys;
  /**
   * `--authorization-mode Webhook`: every request to this kubelet's API is authorized by a
   * SubjectAccessReview to the apiserver (kubelet-authorizer.ts). Unset: the apiserver's identities only.
   */
  authorizationMode?: KubeletAuthorizationMode;
  /** How long the webhook's answers are kept; upstream's 5 min / 30 s by default. */
  authorizationWebhookCache?: WebhookCacheOptions;
  nodeName: string;
  /** Bind address, also the Node's InternalIP. Default 127.0.0.1. */
  address?: string;
  /** Kubelet port; 0 picks a free one (the Node records the real one). Default 10250. */
  port?: number;
  /** CRI endpoint (`unix:///path`, `tcp://host:port`), or a runtime object (tests). */
  runtime: string | RuntimeService;
  /**
   * The CRI ImageService: an endpoint, or an object (tests). Default: the runtime's endpoint, or
   * the runtime object when it has the ImageService calls too (upstream --image-service-endpoint).
   */
  images?: string | ImageService;
  /** Pods' log directories (`<dir>/<ns>_<name>_<uid>`, upstream /var/log/pods). Default: none sent. */
  podLogsDir?: string;
  log?: Logger;
  /** Node status heartbeat period. Default 10 s. */
  nodeStatusUpdateMs?: number;
  /** How often the node Lease is renewed (node-lease.ts); 10 s as upstream. */
  nodeLeaseRenewMs?: number;
  /** Watch timeout (a relist and cleanup follow each watch). Default 10 s. */
  watchTimeoutSeconds?: number;
  /** Relist period when the apiserver cannot watch. Default 1 s. */
  relistIntervalMs?: number;
  /** How long start-up waits for the runtime to answer Version. Default 10 s. */
  runtimeTimeoutMs?: number;
  /** PLEG relist period (container exits, runtime state lost). Default 1 s. */
  plegRelistPeriodMs?: number;
  /** Container restart back-off: first wait and maximum. Default 10 s and 300 s (upstream). */
  restartBackoffInitialMs?: number;
  restartBackoffMaxMs?: number;
  /** Image pull back-off: first wait and maximum. Default 10 s and 300 s (upstream imageBackOff). */
  imagePullBackoffInitialMs?: number;
  imagePullBackoffMaxMs?: number;
  /** `/containerLogs?follow`: how often the file is looked at without a change event. Default 1 s. */
  logPollIntervalMs?: number;
  /** `--fault`: a malicious kubelet for the lab's attack drills (fault-injection.ts). Default none. */
  fault?: KubeletFault;
  /** Serve https with this certificate, and take client certificates from this CA (server.ts). */
  tls?: KubeletTlsOptions;
}

export interface RunningKubelet {
  url: string;
  port: number;
  nodeName: string;
  /** Internals, for tests (wait for a relist, drain workers). */
  syncLoop: SyncLoop;
  workers: PodWorkers;
  pleg: GenericPLEG;
  server: KubeletServer;
  close(): Promise<void>;
}

export class Kubelet implements RunningKubelet {
  readonly nodeName: string;
  /** Bind address, also the Node's InternalIP and every pod's hostIP. */
  readonly address: string;
  readonly runtime: RuntimeService;
  readonly images: ImageService;
  private readonly log: Logger;
  /** The clients this kubelet dialled itself (closed with it); undefined for objects. */
  private readonly ownedRuntime?: RuntimeServiceClient;
  private readonly ownedImages?: ImageServiceClient;
  /** The runtime's name from CRI Version (`containerd`): the scheme of container IDs in pod status. */
  private runtimeName = '';
  private readonly abort = new AbortController();
  /** Undo steps of the start-up, run last first by `close()`. */
  private readonly cleanups: (() => Promise<void> | void)[] = [];
  private closing?: Promise<void>;

  // Known once `run()` has them.
  url = '';
  port = 0;
  server!: KubeletServer;
  syncLoop!: SyncLoop;
  workers!: PodWorkers;
  pleg!: GenericPLEG;
  private api!: ApiServerClient;
  private manager!: KubeRuntimeManager;
  private statusManager!: StatusManager;
  private backoff!: Backoff;

  /** The pods this kubelet runs, as last seen (upstream pod manager): PLEG events and back-off timers name a UID. */
  private readonly pods = new Map<string, Pod>();
  private readonly resyncTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly opts: KubeletOptions) {
    this.log = opts.log ?? stderrLogger('kubelet-sim');
    this.nodeName = opts.nodeName;
    this.address = opts.address ?? '127.0.0.1';
    this.ownedRuntime = typeof opts.runtime === 'string' ? connectRuntime(opts.runtime) : undefined;
    this.runtime = this.ownedRuntime ?? (opts.runtime as RuntimeService);
    const images = opts.images ?? opts.runtime;
    this.ownedImages = typeof images === 'string' ? connectImageService(images) : undefined;
    if (!this.ownedImages && !('pullImage' in (images as object)))
      throw new Error('the runtime object has no ImageService calls: pass `images`');
    this.images = this.ownedImages ?? (images as ImageService);
    this.cleanups.push(() => {
      this.ownedRuntime?.close();
      this.ownedImages?.close();
    });
  }

  /** Builds a kubelet and runs it; a failed start-up undoes what it did and rejects. */
  static async start(opts: KubeletOptions): Promise<Kubelet> {
    const kubelet = new Kubelet(opts);
    try {
      await kubelet.run();
      return kubelet;
    } catch (err) {
      await kubelet.close();
      throw err;
    }
  }

  /** Start-up: runtime version → server listening (the real port is known) → Node registered → loops. */
  async run(): Promise<void> {
    const { opts, log, runtime } = this;
    const version = await withTimeout(
      runtime.version({ version: 'v1' }),
      opts.runtimeTimeoutMs ?? 10_000,
      () => `container runtime at ${String(opts.runtime)} did not answer Version`,
    );
    this.runtimeName = version.runtime_name;
    const containerRuntimeVersion = `${version.runtime_name}://${version.runtime_version}`;
    log(`container runtime ${containerRuntimeVersion} (CRI ${version.runtime_api_version})`);

    this.server = new KubeletServer({
      apiserverTokenKeys: opts.apiserverTokenKeys,
      runtime,
      log,
      logPollIntervalMs: opts.logPollIntervalMs,
      fault: opts.fault,
      tls: opts.tls,
      // Asked through this.api, which exists before the server's first request is served.
      authorize:
        opts.authorizationMode === 'Webhook'
          ? webhookAuthorizer(
              this.nodeName,
              (spec) => this.api.createSubjectAccessReview(spec),
              log,
              opts.authorizationWebhookCache,
            )
          : undefined,
    });
    this.port = await this.server.listen(opts.port ?? 10250, this.address);
    this.cleanups.push(() => this.server.close());
    const host = this.address.includes(':') ? `[${this.address}]` : this.address;
    this.url = `${opts.tls ? 'https' : 'http'}://${host}:${this.port}`;
    log(`kubelet server listening on ${this.url}`);

    this.api = new ApiServerClient({ url: opts.apiserver, token: opts.token });
    const nodeCfg: NodeStatusConfig = {
      nodeName: this.nodeName,
      address: this.address,
      port: this.port,
      containerRuntimeVersion,
    };
    const registered = await registerWithApiServer(this.api, nodeCfg, this.abort.signal, log);
    log(`node ${JSON.stringify(this.nodeName)} registered`);

    const lease = new NodeLeaseController(
      this.api,
      { name: this.nodeName, uid: registered.metadata.uid },
      log,
      opts.nodeLeaseRenewMs,
    );
    lease.start();
    this.cleanups.push(() => lease.stop());

    const heartbeat = new NodeStatusUpdater(this.api, nodeCfg, opts.nodeStatusUpdateMs ?? 10_000, log);
    heartbeat.start();
    this.cleanups.push(() => heartbeat.stop());

    const imageManager = new ImageManager(
      this.images,
      new Backoff(opts.imagePullBackoffInitialMs ?? 10_000, opts.imagePullBackoffMaxMs ?? 300_000),
      log,
    );
    const recorder = new EventRecorder(
      {
        create: (ns, ev) => this.api.createEvent(ns, ev),
        patch: (ns, n, p) => this.api.patchEvent(ns, n, p),
      },
      { component: 'kubelet', host: this.nodeName },
      log,
    );
    this.cleanups.push(() => recorder.close());
    this.manager = new KubeRuntimeManager(runtime, imageManager, log, {
      podLogsDir: opts.podLogsDir,
      recorder,
    });
    this.statusManager = new StatusManager(this.api);
    this.backoff = new Backoff(opts.restartBackoffInitialMs ?? 10_000, opts.restartBackoffMaxMs ?? 300_000);
    this.workers = new PodWorkers((update) => this.syncPod(update), log);
    this.cleanups.push(() => this.workers.close());
    this.syncLoop = new SyncLoop(
      this.api,
      this.workers,
      { runtimePodUids: async () => new Set((await this.manager.getPods()).keys()) },
      {
        nodeName: this.nodeName,
        watchTimeoutSeconds: opts.watchTimeoutSeconds,
        relistIntervalMs: opts.relistIntervalMs,
      },
      log,
    );
    this.syncLoop.start();
    this.cleanups.push(() => this.syncLoop.stop());

    // PLEG: a container that exited, or a runtime that lost our sandboxes, re-syncs its pod.
    this.pleg = new GenericPLEG(
      runtime,
      (events) => this.onPodLifecycleEvents(events),
      { relistPeriodMs: opts.plegRelistPeriodMs },
      log,
    );
    this.pleg.start();
    this.cleanups.push(() => this.pleg.stop());
    this.cleanups.push(() => {
      for (const t of this.resyncTimers.values()) clearTimeout(t);
      this.resyncTimers.clear();
    });
  }

  /** Stops the loops and the server; the pods keep running in the runtime. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      this.abort.abort();
      while (this.cleanups.length) {
        try {
          await this.cleanups.pop()!();
        } catch (err) {
          this.log(`error during shutdown: ${errorMessage(err)}`);
        }
      }
    })());
  }

  /** One pod worker's turn (upstream SyncPod / SyncTerminatingPod): make the runtime match the pod. */
  async syncPod(update: PodUpdate): Promise<void> {
    if (update.type === 'kill') return this.killPod(update.uid, update.pod);
    const pod = update.pod;
    const uid = pod.metadata.uid!;
    this.pods.set(uid, pod);
    // Our own last write is fresher than the pod's status in an event that raced it.
    const known = this.statusManager.lastWritten(uid) ?? pod.status;
    // A pod that has finished is never started again (kubelet: terminal phase).
    if (known?.phase === 'Succeeded' || known?.phase === 'Failed') return;
    const result = await this.manager.syncPod(pod, { backoff: this.backoff, previousStatus: known });
    const rp = await this.manager.getPod(uid);
    const containers = rp?.containers ?? [];
    const criStatuses = await this.manager.containerStatuses(containers);
    const status = generatePodStatus({
      pod: { ...pod, status: known },
      hostIP: this.address,
      runtimeName: this.runtimeName,
      sandbox: result.sandbox,
      sandboxStatus: result.sandboxStatus,
      containers,
      criStatuses,
      errors: result.errors,
      backoffs: result.backoffs,
      now: new Date(),
    });
    await this.statusManager.setPodStatus(pod, status, this.abort.signal);
    const waits = [...result.backoffs.values(), ...result.errors.values()]
      .map((b) => b.retryAfterMs)
      .filter((ms): ms is number => ms !== undefined);
    if (waits.length) this.resyncLater(uid, Math.min(...waits));
  }

  /** Tears the pod down in the runtime; a gracefully deleted pod is then deleted for good. */
  async killPod(uid: string, pod?: Pod): Promise<void> {
    this.pods.delete(uid);
    clearTimeout(this.resyncTimers.get(uid));
    this.resyncTimers.delete(uid);
    this.backoff.resetPrefix(`${uid}/`);
    this.backoff.gc();
    this.manager.forgetPodImages(uid);
    const rp = await this.manager.getPod(uid);
    if (rp) {
      await this.manager.killPod(rp);
      // The pod is gone for good (deleted, or unknown to the apiserver): so are its logs.
      this.manager.removePodLogs(rp);
    }
    this.statusManager.forget(uid);
    // A gracefully deleted pod stays in the apiserver until its node confirms the containers are
    // gone (status manager: delete with grace 0 and a UID precondition).
    if (pod?.metadata.deletionTimestamp) {
      await this.api
        .deletePod(pod.metadata.namespace ?? 'default', pod.metadata.name!, uid, this.abort.signal)
        .catch((err: unknown) => {
          if (isApiStatus(err, 404) || isApiStatus(err, 409)) return;
          // The lab apiserver's node authorizer may not grant nodes `delete` on pods.
          if (isApiStatus(err, 403))
            return void this.log(`cannot delete pod ${podRef(pod)}: ${errorMessage(err)}`);
          throw err;
        });
      this.log(`pod ${podRef(pod)} deleted`);
    }
  }

  /** Syncs the pod again in `ms` (a back-off is over), replacing an earlier timer of the same pod. */
  resyncLater(uid: string, ms: number): void {
    if (this.abort.signal.aborted) return;
    clearTimeout(this.resyncTimers.get(uid));
    const timer = setTimeout(() => {
      this.resyncTimers.delete(uid);
      const pod = this.pods.get(uid);
      if (pod) this.workers.updatePod({ type: 'sync', pod });
    }, ms);
    timer.unref();
    this.resyncTimers.set(uid, timer);
  }

  /** PLEG's relist: the pods that changed, and known pods without a ready sandbox, sync again. */
  private onPodLifecycleEvents(events: PodLifecycleEvent[]): void {
    const due = new Set(events.map((e) => e.uid));
    // Known pods without a ready sandbox: lost by a restarted runtime (or still starting).
    for (const uid of this.pods.keys()) if (!this.pleg.hasReadySandbox(uid)) due.add(uid);
    for (const uid of due) {
      const pod = this.pods.get(uid);
      if (pod && !this.isTerminal(uid)) this.workers.updatePod({ type: 'sync', pod });
    }
  }

  private isTerminal(uid: string): boolean {
    const phase = this.statusManager.lastWritten(uid)?.phase ?? this.pods.get(uid)?.status?.phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }
}

/** Builds and runs a kubelet (`Kubelet.start`). */
export function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  return Kubelet.start(opts);
}

function withTimeout<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
