/**
 * Node registration and node status: create (or adopt) the Node object named after this kubelet,
 * then keep its status — addresses, kubelet port, Ready condition, nodeInfo — fresh.
 *
 * Mirrors kubelet `pkg/kubelet/kubelet_node_status.go` (registerWithAPIServer,
 * tryRegisterWithAPIServer, updateNodeStatus / tryUpdateNodeStatus) and the setters of
 * `pkg/kubelet/nodestatus/setters.go` (MachineInfo: capacity from the machine — cpu, memory,
 * pods, ephemeral-storage — and allocatable equal to it, as with no reservations). The Lease
 * heartbeat is node-lease.ts. Differences: no taints or labels reconciliation.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Node, NodeCondition, NodeStatus, ResourceList } from '../shared/api/core-v1.js';
import { isApiStatus, type ApiServerClient } from './apiserver-client.js';
import { abortableSleep } from './util.js';
import { errorMessage, type Logger } from '../shared/logging.js';

/** What this kubelet reports about itself; the simulator's own version string. */
export const KUBELET_VERSION = 'v1.35.0-kexec.0';

export interface NodeStatusConfig {
  nodeName: string;
  /** Advertised InternalIP (the `--address` the server binds). */
  address: string;
  /** The real kubelet port (after listening on port 0). */
  port: number;
  /** e.g. `kexec-cri-shim://0.1.0` (from CRI Version: `runtime_name://runtime_version`). */
  containerRuntimeVersion: string;
}

/** The Node status as this kubelet sees it at `now` (the setters, applied in one go). */
export function buildNodeStatus(cfg: NodeStatusConfig, now: Date, previous?: NodeStatus): NodeStatus {
  const stamp = rfc3339(now);
  const prevReady = previous?.conditions?.find((c) => c.type === 'Ready');
  const ready: NodeCondition = {
    type: 'Ready',
    status: 'True',
    reason: 'KubeletReady',
    message: 'kubelet is posting ready status',
    lastHeartbeatTime: stamp,
    // A transition time only moves when the status does (nodestatus.ReadyCondition).
    lastTransitionTime:
      prevReady?.status === 'True' && prevReady.lastTransitionTime ? prevReady.lastTransitionTime : stamp,
  };
  const others = (previous?.conditions ?? []).filter((c) => c.type !== 'Ready');
  const capacity = machineCapacity();
  return {
    ...previous,
    capacity,
    allocatable: { ...capacity },
    addresses: [
      { type: 'InternalIP', address: cfg.address },
      { type: 'Hostname', address: cfg.nodeName },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: cfg.port } },
    conditions: [...others, ready],
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      kernelVersion: os.release(),
      osImage: `${os.type()} ${os.release()}`,
      containerRuntimeVersion: cfg.containerRuntimeVersion,
      kubeletVersion: KUBELET_VERSION,
      kubeProxyVersion: '',
      operatingSystem: process.platform,
      architecture: goArch(process.arch),
    },
  };
}

/** The Node object this kubelet creates on first registration (kubelet initialNode). */
export function initialNode(cfg: NodeStatusConfig, now: Date): Node {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: cfg.nodeName,
      labels: {
        'kubernetes.io/hostname': cfg.nodeName,
        'kubernetes.io/os': process.platform,
        'kubernetes.io/arch': goArch(process.arch),
      },
    },
    spec: {},
    status: buildNodeStatus(cfg, now),
  };
}

/**
 * Registers the Node, retrying with backoff until it succeeds or `signal` aborts. An existing Node
 * of the same name is adopted (a restarted kubelet): its status is brought up to date.
 */
export async function registerWithApiServer(
  api: ApiServerClient,
  cfg: NodeStatusConfig,
  signal: AbortSignal,
  log: Logger,
): Promise<Node> {
  let delay = 100;
  for (;;) {
    try {
      return await tryRegisterWithApiServer(api, cfg, signal);
    } catch (err) {
      if (signal.aborted) throw err;
      log(`unable to register node ${JSON.stringify(cfg.nodeName)} with the apiserver: ${errorMessage(err)}`);
    }
    await abortableSleep(delay, signal);
    delay = Math.min(delay * 2, 7000);
  }
}

async function tryRegisterWithApiServer(
  api: ApiServerClient,
  cfg: NodeStatusConfig,
  signal: AbortSignal,
): Promise<Node> {
  const node = initialNode(cfg, new Date());
  try {
    const created = await api.createNode(node, signal);
    // Some servers drop status on create (as for pods); write it through the status subresource.
    return await api.updateNodeStatus({ ...created, status: node.status }, signal);
  } catch (err) {
    if (!isApiStatus(err, 409)) throw err;
  }
  return updateNodeStatus(api, cfg, signal);
}

/** One status update: read the Node, refresh the status, write it back; retried on conflict. */
export async function updateNodeStatus(
  api: ApiServerClient,
  cfg: NodeStatusConfig,
  signal?: AbortSignal,
): Promise<Node> {
  const NODE_STATUS_UPDATE_RETRY = 5;
  let lastErr: unknown;
  for (let i = 0; i < NODE_STATUS_UPDATE_RETRY; i++) {
    try {
      const existing = await api.getNode(cfg.nodeName, signal);
      const updated: Node = { ...existing, status: buildNodeStatus(cfg, new Date(), existing.status) };
      return await api.updateNodeStatus(updated, signal);
    } catch (err) {
      lastErr = err;
      if (!isApiStatus(err, 409) || signal?.aborted) throw err;
    }
  }
  throw lastErr;
}

/**
 * Posts node status every `intervalMs` (upstream `--node-status-update-frequency`, 10 s) until
 * stopped. Failures are logged and retried on the next tick.
 */
export class NodeStatusUpdater {
  private readonly abort = new AbortController();
  private loop?: Promise<void>;

  constructor(
    private readonly api: ApiServerClient,
    private readonly cfg: NodeStatusConfig,
    private readonly intervalMs: number,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted) {
      try {
        await abortableSleep(this.intervalMs, signal);
        await updateNodeStatus(this.api, this.cfg, signal);
      } catch (err) {
        if (!signal.aborted) this.log(`error updating node status, will retry: ${errorMessage(err)}`);
      }
    }
  }
}

/** Upstream's default `--max-pods`. */
const MAX_PODS = 110;

/** The machine's resources as quantities (cAdvisor's MachineInfo, as the setter reports it). */
export function machineCapacity(): ResourceList {
  const capacity: ResourceList = {
    cpu: String(os.cpus().length || 1),
    memory: `${Math.floor(os.totalmem() / 1024)}Ki`,
    pods: String(MAX_PODS),
  };
  try {
    const fsStats = fs.statfsSync('/');
    capacity['ephemeral-storage'] = `${Math.floor((fsStats.bsize * fsStats.blocks) / 1024)}Ki`;
  } catch {
    // no filesystem stats: leave it out, as a kubelet without imagefs stats does
  }
  return capacity;
}

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function goArch(arch: string): string {
  return arch === 'x64' ? 'amd64' : arch === 'ia32' ? '386' : arch;
}
