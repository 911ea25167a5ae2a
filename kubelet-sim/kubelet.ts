/**
 * The kubelet-sim assembled: kubelet server, node registration and status, pod workers and the
 * sync loop, all on one CRI runtime connection. `startKubelet` is what `main.ts` runs and what
 * in-process tests start.
 *
 * Mirrors kubelet `pkg/kubelet/kubelet.go` (NewMainKubelet, Run, SyncPod, SyncTerminatingPod)
 * at lab scale. Order of start-up: runtime version → server listening (the real port is known)
 * → Node registered → pods synced. `close()` stops the loops and the server but leaves the pods
 * running in the runtime, like a real kubelet going down.
 */
import { connectRuntime, type RuntimeServiceClient } from '../shared/cri/client.js';
import type { Pod } from './api-types.js';
import { ApiServerClient, isApiStatus } from './apiserver-client.js';
import { KubeRuntimeManager, podRef, type RuntimeService } from './kuberuntime-manager.js';
import { NodeStatusUpdater, registerWithApiServer, type NodeStatusConfig } from './node-status.js';
import { generatePodStatus } from './pod-status.js';
import { PodWorkers, type PodUpdate } from './pod-workers.js';
import { KubeletServer } from './server.js';
import { StatusManager } from './status-manager.js';
import { SyncLoop } from './sync-loop.js';
import { errorMessage, type Logger } from './util.js';

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
  /** Watch timeout (a relist and cleanup follow each watch). Default 10 s. */
  watchTimeoutSeconds?: number;
  /** Relist period when the apiserver cannot watch. Default 1 s. */
  relistIntervalMs?: number;
  /** How long start-up waits for the runtime to answer Version. Default 10 s. */
  runtimeTimeoutMs?: number;
}

export interface RunningKubelet {
  url: string;
  port: number;
  nodeName: string;
  /** Internals, for tests (wait for a relist, drain workers). */
  syncLoop: SyncLoop;
  workers: PodWorkers;
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

    const server = new KubeletServer({ signingKey: opts.signingKey, runtime, log });
    const port = await server.listen(opts.port ?? 10250, address);
    cleanups.push(() => server.close());
    const url = `http://${address.includes(':') ? `[${address}]` : address}:${port}`;
    log(`kubelet server listening on ${url}`);

    const api = new ApiServerClient({ url: opts.apiserver, token: opts.token });
    const nodeCfg: NodeStatusConfig = { nodeName: opts.nodeName, address, port, containerRuntimeVersion };
    await registerWithApiServer(api, nodeCfg, abort.signal, log);
    log(`node ${JSON.stringify(opts.nodeName)} registered`);

    const heartbeat = new NodeStatusUpdater(api, nodeCfg, opts.nodeStatusUpdateMs ?? 10_000, log);
    heartbeat.start();
    cleanups.push(() => heartbeat.stop());

    const manager = new KubeRuntimeManager(runtime, log);
    const statusManager = new StatusManager(api);
    const syncPod = async (update: PodUpdate): Promise<void> => {
      if (update.type === 'kill') return killPod(update.uid, update.pod);
      const pod = update.pod;
      const result = await manager.syncPod(pod);
      const rp = await manager.getPod(pod.metadata.uid!);
      const containers = rp?.containers ?? [];
      const criStatuses = await manager.containerStatuses(containers);
      const status = generatePodStatus({
        pod,
        hostIP: address,
        sandbox: result.sandbox,
        containers,
        criStatuses,
        errors: result.errors,
        now: new Date(),
      });
      await statusManager.setPodStatus(pod, status, abort.signal);
    };
    const killPod = async (uid: string, pod?: Pod): Promise<void> => {
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

    let closing: Promise<void> | undefined;
    return {
      url,
      port,
      nodeName: opts.nodeName,
      syncLoop,
      workers,
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
