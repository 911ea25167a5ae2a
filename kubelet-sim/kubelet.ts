/**
 * The kubelet-sim assembled: kubelet server, node registration and status, pod workers and the
 * sync loop, all on one CRI runtime connection. `startKubelet` is what `main.ts` runs and what
 * in-process tests start.
 *
 * Pods are synced when the apiserver says so (sync loop), when the runtime changes under them
 * (PLEG: a container exited, a restarted runtime lost the sandbox) and when a container's restart
 * back-off is over.
 *
 * Mirrors kubelet `pkg/kubelet/kubelet.go` (NewMainKubelet, Run, SyncPod, SyncTerminatingPod)
 * at lab scale. Order of start-up: runtime version → server listening (the real port is known)
 * → Node registered → pods synced. `close()` stops the loops and the server but leaves the pods
 * running in the runtime, like a real kubelet going down.
 */
import { connectRuntime, type RuntimeServiceClient } from '../shared/cri/client.js';
import type { Pod } from '../shared/api/core-v1.js';
import { ApiServerClient, isApiStatus } from './apiserver-client.js';
import { Backoff } from './backoff.js';
import { KubeRuntimeManager, podRef, type RuntimeService } from './kuberuntime-manager.js';
import { NodeLeaseController } from './node-lease.js';
import { NodeStatusUpdater, registerWithApiServer, type NodeStatusConfig } from './node-status.js';
import { generatePodStatus } from './pod-status.js';
import { streamFaultHandler, type KubeletFault } from './fault-injection.js';
import { GenericPLEG } from './pleg.js';
import { PodWorkers, type PodUpdate } from './pod-workers.js';
import { KubeletServer, type KubeletTlsOptions } from './server.js';
import { StatusManager } from './status-manager.js';
import { SyncLoop } from './sync-loop.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export interface KubeletOptions {
  /** apiserver URL, e.g. `http://127.0.0.1:6443`. */
  apiserver: string;
  /** This node's bearer token for the apiserver. */
  token: string;
  /** Key that signs the apiserver's token for us (audience `kubelet`). */
  signingKey: Buffer;
  nodeName: string;
  /** Bind address, also the Node's InternalIP. Default 127.0.0.1. */
  address?: string;
  /** Kubelet port; 0 picks a free one (the Node records the real one). Default 10250. */
  port?: number;
  /** CRI endpoint (`unix:///path`, `tcp://host:port`), or a runtime object (tests). */
  runtime: string | RuntimeService;
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

export async function startKubelet(opts: KubeletOptions): Promise<RunningKubelet> {
  const log: Logger = opts.log ?? ((line) => process.stderr.write(`kubelet-sim: ${line}\n`));
  const address = opts.address ?? '127.0.0.1';
  const owned: RuntimeServiceClient | undefined =
    typeof opts.runtime === 'string' ? connectRuntime(opts.runtime) : undefined;
  const runtime: RuntimeService = owned ?? (opts.runtime as RuntimeService);
  const abort = new AbortController();
  const cleanups: (() => Promise<void> | void)[] = [() => owned?.close()];
  const closeAll = async (): Promise<void> => {
    abort.abort();
    while (cleanups.length) {
      try {
        await cleanups.pop()!();
      } catch (err) {
        log(`error during shutdown: ${errorMessage(err)}`);
      }
    }
  };

  try {
    const version = await withTimeout(
      runtime.version({ version: 'v1' }),
      opts.runtimeTimeoutMs ?? 10_000,
      () => `container runtime at ${String(opts.runtime)} did not answer Version`,
    );
    const containerRuntimeVersion = `${version.runtime_name}://${version.runtime_version}`;
    log(`container runtime ${containerRuntimeVersion} (CRI ${version.runtime_api_version})`);

    const server = new KubeletServer({
      signingKey: opts.signingKey,
      runtime,
      log,
      logPollIntervalMs: opts.logPollIntervalMs,
      streamFault: streamFaultHandler(opts.fault, log),
      tls: opts.tls,
    });
    const port = await server.listen(opts.port ?? 10250, address);
    cleanups.push(() => server.close());
    const url = `${opts.tls ? 'https' : 'http'}://${address.includes(':') ? `[${address}]` : address}:${port}`;
    log(`kubelet server listening on ${url}`);

    const api = new ApiServerClient({ url: opts.apiserver, token: opts.token });
    const nodeCfg: NodeStatusConfig = { nodeName: opts.nodeName, address, port, containerRuntimeVersion };
    const registered = await registerWithApiServer(api, nodeCfg, abort.signal, log);
    log(`node ${JSON.stringify(opts.nodeName)} registered`);

    const lease = new NodeLeaseController(
      api,
      { name: opts.nodeName, uid: registered.metadata.uid },
      log,
      opts.nodeLeaseRenewMs,
    );
    lease.start();
    cleanups.push(() => lease.stop());

    const heartbeat = new NodeStatusUpdater(api, nodeCfg, opts.nodeStatusUpdateMs ?? 10_000, log);
    heartbeat.start();
    cleanups.push(() => heartbeat.stop());

    const manager = new KubeRuntimeManager(runtime, log);
    const statusManager = new StatusManager(api);
    const backoff = new Backoff(opts.restartBackoffInitialMs ?? 10_000, opts.restartBackoffMaxMs ?? 300_000);
    // The pods this kubelet runs, as last seen (upstream pod manager): PLEG events and back-off
    // timers name a UID, and the sync needs the pod.
    const pods = new Map<string, Pod>();
    const resyncTimers = new Map<string, NodeJS.Timeout>();
    const resyncLater = (uid: string, ms: number): void => {
      if (abort.signal.aborted) return;
      clearTimeout(resyncTimers.get(uid));
      const timer = setTimeout(() => {
        resyncTimers.delete(uid);
        const pod = pods.get(uid);
        if (pod) workers.updatePod({ type: 'sync', pod });
      }, ms);
      timer.unref();
      resyncTimers.set(uid, timer);
    };
    const syncPod = async (update: PodUpdate): Promise<void> => {
      if (update.type === 'kill') return killPod(update.uid, update.pod);
      const pod = update.pod;
      const uid = pod.metadata.uid!;
      pods.set(uid, pod);
      // Our own last write is fresher than the pod's status in an event that raced it.
      const known = statusManager.lastWritten(uid) ?? pod.status;
      // A pod that has finished is never started again (kubelet: terminal phase).
      if (known?.phase === 'Succeeded' || known?.phase === 'Failed') return;
      const result = await manager.syncPod(pod, { backoff, previousStatus: known });
      const rp = await manager.getPod(uid);
      const containers = rp?.containers ?? [];
      const criStatuses = await manager.containerStatuses(containers);
      const status = generatePodStatus({
        pod: { ...pod, status: known },
        hostIP: address,
        sandbox: result.sandbox,
        containers,
        criStatuses,
        errors: result.errors,
        backoffs: result.backoffs,
        now: new Date(),
      });
      await statusManager.setPodStatus(pod, status, abort.signal);
      const waits = [...result.backoffs.values()].map((b) => b.retryAfterMs);
      if (waits.length) resyncLater(uid, Math.min(...waits));
    };
    const killPod = async (uid: string, pod?: Pod): Promise<void> => {
      pods.delete(uid);
      clearTimeout(resyncTimers.get(uid));
      resyncTimers.delete(uid);
      backoff.resetPrefix(`${uid}/`);
      backoff.gc();
      const rp = await manager.getPod(uid);
      if (rp) await manager.killPod(rp);
      statusManager.forget(uid);
      // A gracefully deleted pod stays in the apiserver until its node confirms the containers are
      // gone (status manager: delete with grace 0 and a UID precondition).
      if (pod?.metadata.deletionTimestamp) {
        await api
          .deletePod(pod.metadata.namespace ?? 'default', pod.metadata.name!, uid, abort.signal)
          .catch((err: unknown) => {
            if (isApiStatus(err, 404) || isApiStatus(err, 409)) return;
            // The lab apiserver's node authorizer may not grant nodes `delete` on pods.
            if (isApiStatus(err, 403))
              return void log(`cannot delete pod ${podRef(pod)}: ${errorMessage(err)}`);
            throw err;
          });
        log(`pod ${podRef(pod)} deleted`);
      }
    };
    const workers = new PodWorkers(syncPod, log);
    cleanups.push(() => workers.close());
    const syncLoop = new SyncLoop(
      api,
      workers,
      { runtimePodUids: async () => new Set((await manager.getPods()).keys()) },
      {
        nodeName: opts.nodeName,
        watchTimeoutSeconds: opts.watchTimeoutSeconds,
        relistIntervalMs: opts.relistIntervalMs,
      },
      log,
    );
    syncLoop.start();
    cleanups.push(() => syncLoop.stop());

    // PLEG: a container that exited, or a runtime that lost our sandboxes, re-syncs its pod.
    const terminal = (uid: string): boolean => {
      const phase = statusManager.lastWritten(uid)?.phase ?? pods.get(uid)?.status?.phase;
      return phase === 'Succeeded' || phase === 'Failed';
    };
    const pleg: GenericPLEG = new GenericPLEG(
      runtime,
      (events) => {
        const due = new Set(events.map((e) => e.uid));
        // Known pods without a ready sandbox: lost by a restarted runtime (or still starting).
        for (const uid of pods.keys()) if (!pleg.hasReadySandbox(uid)) due.add(uid);
        for (const uid of due) {
          const pod = pods.get(uid);
          if (pod && !terminal(uid)) workers.updatePod({ type: 'sync', pod });
        }
      },
      { relistPeriodMs: opts.plegRelistPeriodMs },
      log,
    );
    pleg.start();
    cleanups.push(() => pleg.stop());
    cleanups.push(() => {
      for (const t of resyncTimers.values()) clearTimeout(t);
      resyncTimers.clear();
    });

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      nodeName: opts.nodeName,
      syncLoop,
      workers,
      pleg,
      server,
      close: () => (closing ??= closeAll()),
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, message: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message())), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
