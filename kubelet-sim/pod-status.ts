/**
 * Builds a Pod's API status from what the runtime reports: phase, conditions, IPs, start time and
 * one containerStatus per spec container.
 *
 * Mirrors kubelet `pkg/kubelet/kubelet_pods.go` (generateAPIPodStatus, getPhase,
 * convertToAPIContainerStatuses) and `pkg/kubelet/status/generate.go` (GeneratePodReadyCondition
 * …). Without probes a running container is ready; transition times move only when a condition's
 * status does, so an unchanged pod yields an identical status (and no write). The restart count is
 * the newest instance's CRI attempt number; `lastState` is the instance before it (or, while
 * backing off, the one that just exited).
 */
import type {
  Container,
  ContainerStatus as CriContainerStatus,
  PodSandbox,
  PodSandboxStatus,
} from '../shared/cri/types.js';
import { KubernetesContainerNameLabel } from '../shared/cri/types.js';
import type {
  ContainerState,
  ContainerStatus,
  Pod,
  PodCondition,
  PodPhase,
  PodStatus,
} from '../shared/api/core-v1.js';
import type { ContainerBackoff, ContainerSyncError } from './kuberuntime-manager.js';
import { byNewest } from './runtime-lookup.js';
import { rfc3339 } from './node-status.js';

export interface PodStatusInput {
  pod: Pod;
  hostIP: string;
  /**
   * The runtime's name from CRI Version: the scheme of containerIDs (`containerd://…`, upstream
   * kubecontainer.ContainerID). Default `kexec-cri-shim`.
   */
  runtimeName?: string;
  sandbox?: PodSandbox;
  /** The sandbox's PodSandboxStatus: the pod's IPs. */
  sandboxStatus?: PodSandboxStatus;
  containers: Container[];
  criStatuses: Map<string, CriContainerStatus>;
  errors: Map<string, ContainerSyncError>;
  /** Containers backing off (CrashLoopBackOff), by name. */
  backoffs?: Map<string, ContainerBackoff>;
  now: Date;
}

export function generatePodStatus(input: PodStatusInput): PodStatus {
  const { pod, hostIP, now } = input;
  const previous = pod.status ?? {};
  const statuses = (pod.spec.containers ?? []).map((spec) =>
    containerStatus(spec.name, spec.image ?? '', input),
  );
  const phase = getPhase(pod, statuses);
  const allReady = statuses.length > 0 && statuses.every((s) => s.ready);
  const notReady = statuses.filter((s) => !s.ready).map((s) => s.name);
  const readyMessage = notReady.length
    ? `containers with unready status: [${notReady.join(' ')}]`
    : undefined;
  const cond = (type: string, ok: boolean, reason?: string, message?: string): PodCondition =>
    condition(previous.conditions, type, ok, now, reason, message);
  const podIPs = determinePodIPs(input);
  return {
    phase,
    conditions: [
      cond('PodReadyToStartContainers', !!input.sandbox),
      cond('Initialized', true),
      cond('Ready', allReady, allReady ? undefined : 'ContainersNotReady', readyMessage),
      cond('ContainersReady', allReady, allReady ? undefined : 'ContainersNotReady', readyMessage),
      cond('PodScheduled', true),
    ],
    hostIP,
    hostIPs: [{ ip: hostIP }],
    ...(podIPs.length ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    startTime: previous.startTime ?? rfc3339(now),
    containerStatuses: statuses,
  };
}

/**
 * The pod's IPs (upstream determinePodSandboxIPs): the node's for hostNetwork, else the sandbox's
 * network status, primary first; none while the sandbox has no IP.
 */
function determinePodIPs(input: PodStatusInput): string[] {
  if (input.pod.spec.hostNetwork) return [input.hostIP];
  const net = input.sandboxStatus?.network;
  if (!net?.ip) return [];
  return [net.ip, ...(net.additional_ips ?? []).map((a) => a.ip).filter(Boolean)];
}

function containerStatus(name: string, image: string, input: PodStatusInput): ContainerStatus {
  const instances = input.containers
    .filter(
      (c) =>
        c.labels[KubernetesContainerNameLabel] === name &&
        (!input.sandbox || c.pod_sandbox_id === input.sandbox.id),
    )
    .sort(byNewest);
  const [c, prev] = instances;
  const base = { name, image, imageID: '', restartCount: 0 };
  if (!c) {
    const err = input.errors.get(name);
    return {
      ...base,
      ready: false,
      started: false,
      lastState: {},
      state: {
        waiting: err ? { reason: err.reason, message: err.message } : { reason: 'ContainerCreating' },
      },
    };
  }
  const st = input.criStatuses.get(c.id);
  const containerID = containerIdOf(c, input);
  const imageID = st?.image_ref || c.image_ref || c.image_id || image;
  const common = { ...base, imageID, containerID, restartCount: c.metadata?.attempt ?? 0 };
  const previous = prev ? terminated(prev, input.criStatuses.get(prev.id), input) : undefined;
  const lastState = previous ?? {};
  const backoff = input.backoffs?.get(name);
  switch (st?.state ?? c.state) {
    case 'CONTAINER_RUNNING':
      return {
        ...common,
        ready: true,
        started: true,
        state: { running: { startedAt: nanosToTime(st?.started_at || c.created_at) } },
        lastState,
      };
    case 'CONTAINER_EXITED':
      // Backing off: waiting for the next start, the exit that caused it is the last state.
      if (backoff) {
        return {
          ...common,
          ready: false,
          started: false,
          state: { waiting: { reason: 'CrashLoopBackOff', message: backoff.message } },
          lastState: terminated(c, st, input),
        };
      }
      return { ...common, ready: false, started: false, state: terminated(c, st, input), lastState };
    case 'CONTAINER_CREATED':
      return {
        ...common,
        ready: false,
        started: false,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState,
      };
    default:
      return {
        ...common,
        ready: false,
        started: false,
        state: { waiting: { reason: 'ContainerStatusUnknown' } },
        lastState,
      };
  }
}

const containerIdOf = (c: Container, input: PodStatusInput): string =>
  `${input.runtimeName || 'kexec-cri-shim'}://${c.id}`;

/** An exited instance as a `terminated` state. */
function terminated(c: Container, st: CriContainerStatus | undefined, input: PodStatusInput): ContainerState {
  const exitCode = st?.exit_code ?? 0;
  return {
    terminated: {
      exitCode,
      reason: st?.reason || (exitCode === 0 ? 'Completed' : 'Error'),
      ...(st?.message ? { message: st.message } : {}),
      startedAt: nanosToTime(st?.started_at || c.created_at),
      finishedAt: nanosToTime(st?.finished_at || c.created_at),
      containerID: containerIdOf(c, input),
    },
  };
}

/**
 * The pod phase from its containers' states (kubelet getPhase, without init containers): a
 * container waiting after it already ran counts as stopped, not as pending.
 */
export function getPhase(pod: Pod, statuses: ContainerStatus[]): PodPhase {
  let waiting = 0;
  let running = 0;
  let stopped = 0;
  let succeeded = 0;
  for (const s of statuses) {
    if (s.state.running) running++;
    else if (s.state.terminated) {
      stopped++;
      if (s.state.terminated.exitCode === 0) succeeded++;
    } else if (s.lastState?.terminated) stopped++;
    else waiting++;
  }
  if (statuses.length === 0 || waiting > 0) return 'Pending';
  if (running > 0) return 'Running';
  // Every container has stopped.
  const policy = pod.spec.restartPolicy ?? 'Always';
  if (policy === 'Always') return 'Running';
  if (stopped === succeeded) return 'Succeeded';
  if (policy === 'Never') return 'Failed';
  return 'Running'; // OnFailure: the failed ones start again
}

function condition(
  previous: PodCondition[] | undefined,
  type: string,
  ok: boolean,
  now: Date,
  reason?: string,
  message?: string,
): PodCondition {
  const status = ok ? 'True' : 'False';
  const prev = previous?.find((c) => c.type === type);
  const c: PodCondition = {
    type,
    status,
    lastProbeTime: null,
    lastTransitionTime:
      prev?.status === status && prev.lastTransitionTime ? prev.lastTransitionTime : rfc3339(now),
  };
  if (reason) c.reason = reason;
  if (message) c.message = message;
  return c;
}

function nanosToTime(ns: number): string {
  return rfc3339(new Date(Math.floor(ns / 1e6)));
}
