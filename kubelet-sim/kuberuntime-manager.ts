/**
 * The kubelet's view of the container runtime: turns a Pod spec into CRI calls (RunPodSandbox,
 * CreateContainer, StartContainer), finds what already runs by the kubelet's labels, and tears
 * pods down (StopPodSandbox, RemovePodSandbox).
 *
 * Mirrors kubelet `pkg/kubelet/kuberuntime/kuberuntime_manager.go` (SyncPod, KillPod, GetPods),
 * `kuberuntime_sandbox.go` and `kuberuntime_container.go` (generateContainerConfig,
 * startContainer, restart policy with doBackOff), `kuberuntime_sandbox.go`
 * (generatePodSandboxConfig: the pod's log directory `<podLogsDir>/<ns>_<name>_<uid>`, made before
 * the sandbox, and the Linux namespace options of `util.go` NamespacesForPod) and
 * `kuberuntime_gc.go` (evictSandboxes: a pod's not-ready sandboxes other than its newest go).
 * Images go through image-manager.ts (ImageStatus, PullImage with the pull policy and back-off)
 * and the container is created with the image reference the runtime answered, as upstream.
 * Simplifications: no init or ephemeral containers, one sandbox attempt at a time, no graceful
 * termination (StopPodSandbox kills at once).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { RuntimeServiceClient } from '../shared/cri/client.js';
import {
  KubernetesContainerNameLabel,
  KubernetesPodNameLabel,
  KubernetesPodNamespaceLabel,
  KubernetesPodUIDLabel,
  type Container,
  type ContainerStatus as CriContainerStatus,
  type NamespaceOptionIn,
  type PodSandbox,
  type PodSandboxConfigIn,
  type PodSandboxStatus,
} from '../shared/cri/types.js';
import type { Container as ContainerSpec, Pod, PodStatus } from '../shared/api/core-v1.js';
import type { Backoff } from './backoff.js';
import { criMessage } from './cri-errors.js';
import type { EventRecorder } from './event-recorder.js';
import { podReference } from '../shared/events.js';
import type { ImageError, ImageManager } from './image-manager.js';
import { byNewest } from './runtime-lookup.js';
import { containerLinuxConfig, sandboxLinuxConfig, verifyRunAsNonRoot } from './security-context.js';
import type { Logger } from '../shared/logging.js';

/** The CRI calls the kubelet makes; the real client, or a fake in tests. */
export type RuntimeService = Pick<
  RuntimeServiceClient,
  | 'version'
  | 'runPodSandbox'
  | 'stopPodSandbox'
  | 'removePodSandbox'
  | 'podSandboxStatus'
  | 'listPodSandbox'
  | 'createContainer'
  | 'startContainer'
  | 'removeContainer'
  | 'listContainers'
  | 'containerStatus'
  | 'exec'
  | 'attach'
  | 'portForward'
>;

/** One pod as the runtime holds it, grouped by the pod UID label. */
export interface RuntimePod {
  uid: string;
  name: string;
  namespace: string;
  sandboxes: PodSandbox[];
  containers: Container[];
}

/** Why a container could not be started, shown as its `waiting` state. */
export interface ContainerSyncError {
  reason: ImageError['reason'] | 'CreateContainerError' | 'RunContainerError' | 'CreateContainerConfigError';
  message: string;
  /** Sync the pod again after this long (an image pull back-off). */
  retryAfterMs?: number;
}

/** A container waiting out its restart back-off (state waiting, reason CrashLoopBackOff). */
export interface ContainerBackoff {
  message: string;
  /** When the back-off is over: the pod should be synced again then. */
  retryAfterMs: number;
}

export interface PodSyncResult {
  sandbox?: PodSandbox;
  /** The sandbox's status (its IPs), when the runtime answered PodSandboxStatus. */
  sandboxStatus?: PodSandboxStatus;
  /** Start failures of this sync, by container name. */
  errors: Map<string, ContainerSyncError>;
  /** Containers backing off, by container name. */
  backoffs: Map<string, ContainerBackoff>;
}

export interface SyncPodContext {
  backoff: Backoff;
  /** The pod's last known API status: restart counts survive a runtime that lost its containers. */
  previousStatus?: PodStatus;
}

/** The back-off key of a container (upstream getStableKey: pod and container). */
export function backoffKey(uid: string, container: string): string {
  return `${uid}/${container}`;
}

export interface KubeRuntimeManagerOptions {
  /**
   * The pods' log directories live here (`<dir>/<ns>_<name>_<uid>`, upstream /var/log/pods): the
   * sandbox's `log_directory`. Unset: no log directory is sent, the runtime picks one.
   */
  podLogsDir?: string;
  /** Records Pulled, Created, Started, Killing, BackOff and Failed (event-recorder.ts). */
  recorder?: EventRecorder;
}

/** The Linux namespaces of a pod (upstream NamespacesForPod): the node's where the spec asks. */
export function namespacesForPod(pod: Pod): NamespaceOptionIn {
  const { hostNetwork, hostPID, hostIPC, shareProcessNamespace } = pod.spec;
  return {
    network: hostNetwork ? 'NODE' : 'POD',
    pid: hostPID ? 'NODE' : shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: hostIPC ? 'NODE' : 'POD',
  };
}

export class KubeRuntimeManager {
  constructor(
    private readonly runtime: RuntimeService,
    private readonly images: ImageManager,
    private readonly log: Logger,
    private readonly opts: KubeRuntimeManagerOptions = {},
  ) {}

  /** An Event about one of the pod's containers (opts.recorder), for `kubectl describe`. */
  private event(
    pod: Pod,
    container: string,
    type: 'Normal' | 'Warning',
    reason: string,
    message: string,
  ): void {
    this.opts.recorder?.event(podReference(pod, container), type, reason, message);
  }

  /** The pod's log directory (upstream BuildPodLogsDirectory), or undefined without podLogsDir. */
  podLogsDirectory(p: { namespace: string; name: string; uid: string }): string | undefined {
    if (!this.opts.podLogsDir) return undefined;
    return path.join(this.opts.podLogsDir, `${p.namespace}_${p.name}_${p.uid}`);
  }

  /** Every pod the kubelet created in the runtime (sandboxes and containers carrying its labels). */
  async getPods(): Promise<Map<string, RuntimePod>> {
    const [{ items }, { containers }] = await Promise.all([
      this.runtime.listPodSandbox({}),
      this.runtime.listContainers({}),
    ]);
    return groupByPod(items, containers);
  }

  /** The runtime's pod with this UID, if any. */
  async getPod(uid: string): Promise<RuntimePod | undefined> {
    const label_selector = { [KubernetesPodUIDLabel]: uid };
    const [{ items }, { containers }] = await Promise.all([
      this.runtime.listPodSandbox({ filter: { label_selector } }),
      this.runtime.listContainers({ filter: { label_selector } }),
    ]);
    return groupByPod(items, containers).get(uid);
  }

  /**
   * Makes the runtime run `pod` (computePodActions + SyncPod): a ready sandbox (a new one, after
   * removing the stale ones, when none is ready), and every spec container running — started once,
   * and started again after it exits when the restart policy says so, with back-off. The instance
   * that exited last is kept (its log is `previous`, its state `lastState`); older ones removed.
   */
  async syncPod(pod: Pod, ctx: SyncPodContext): Promise<PodSyncResult> {
    const uid = pod.metadata.uid!;
    const policy = pod.spec.restartPolicy ?? 'Always';
    const errors = new Map<string, ContainerSyncError>();
    const backoffs = new Map<string, ContainerBackoff>();
    const existing = await this.getPod(uid);
    let sandbox = newest(existing?.sandboxes.filter((s) => s.state === 'SANDBOX_READY') ?? []);
    let containers = existing?.containers ?? [];
    const sandboxConfig = this.sandboxConfig(pod, existing?.sandboxes.length ?? 0);
    if (!sandbox) {
      const stale = existing?.sandboxes ?? [];
      // Upstream: a Never pod whose sandbox died after its containers ran is not started again.
      if (policy === 'Never' && stale.length > 0 && containers.length > 0) {
        return { sandbox: newest(stale), errors, backoffs };
      }
      if (existing && stale.length) await this.killPod(existing);
      containers = [];
      // Upstream createPodSandbox makes the log directory before RunPodSandbox.
      if (sandboxConfig.log_directory)
        fs.mkdirSync(sandboxConfig.log_directory, { recursive: true, mode: 0o755 });
      const { pod_sandbox_id } = await this.runtime.runPodSandbox({ config: sandboxConfig });
      this.log(`started sandbox ${pod_sandbox_id} for pod ${podRef(pod)}`);
      const { items } = await this.runtime.listPodSandbox({ filter: { id: pod_sandbox_id } });
      sandbox = items[0] ?? fakeSandbox(pod_sandbox_id, sandboxConfig);
    } else {
      await this.evictSandboxes(existing!, sandbox);
    }
    const sandboxStatus = await this.runtime
      .podSandboxStatus({ pod_sandbox_id: sandbox.id })
      .then((r) => r.status ?? undefined)
      .catch(() => undefined);
    for (const spec of pod.spec.containers ?? []) {
      const instances = containers
        .filter(
          (c) => c.pod_sandbox_id === sandbox.id && c.labels[KubernetesContainerNameLabel] === spec.name,
        )
        .sort(byNewest);
      const attempt = await this.nextAttempt(pod, spec, instances, ctx, backoffs);
      if (attempt === undefined) continue;
      const err = await this.startContainer(pod, spec, sandbox.id, sandboxConfig, attempt);
      if (err) errors.set(spec.name, err);
    }
    return { sandbox, sandboxStatus, errors, backoffs };
  }

  /**
   * Removes the pod's sandboxes that are not ready, but for `keep` (upstream evictSandboxes keeps
   * the newest; here the ready one): what a runtime or kubelet restart left behind.
   */
  private async evictSandboxes(rp: RuntimePod, keep: PodSandbox): Promise<void> {
    for (const s of rp.sandboxes) {
      if (s.id === keep.id || s.state === 'SANDBOX_READY') continue;
      await this.runtime.stopPodSandbox({ pod_sandbox_id: s.id }).catch(() => undefined);
      await this.runtime.removePodSandbox({ pod_sandbox_id: s.id }).catch(() => undefined);
      this.log(`removed stale sandbox ${s.id} of pod ${rp.namespace}/${rp.name}`);
    }
  }

  /** Forgets the pod's image pull back-offs. */
  forgetPodImages(uid: string): void {
    this.images.forgetPod(uid);
  }

  /** Removes the pod's log directory (the pod is gone; upstream's container GC does it). */
  removePodLogs(p: { namespace: string; name: string; uid: string }): void {
    const dir = this.podLogsDirectory(p);
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }

  /**
   * The attempt number of the instance to start now, or undefined when the container must not be
   * started (it runs, it exited for good, or it is backing off — recorded in `backoffs`).
   */
  private async nextAttempt(
    pod: Pod,
    spec: ContainerSpec,
    instances: Container[],
    ctx: SyncPodContext,
    backoffs: Map<string, ContainerBackoff>,
  ): Promise<number | undefined> {
    const cur = instances[0];
    if (!cur) {
      // The runtime has no instance (a new pod, or a runtime that lost its state): after a loss the
      // count goes on from what the apiserver last heard (upstream reads the log directory).
      const prev = ctx.previousStatus?.containerStatuses?.find((s) => s.name === spec.name);
      return prev?.containerID ? prev.restartCount + 1 : 0;
    }
    if (cur.state === 'CONTAINER_RUNNING') return undefined;
    const attempt = cur.metadata?.attempt ?? 0;
    if (cur.state !== 'CONTAINER_EXITED') {
      // Created but never started (a kubelet that died in between) or unknown: replace it.
      await this.runtime.removeContainer({ container_id: cur.id }).catch(() => undefined);
      return attempt;
    }
    const { status } = await this.runtime.containerStatus({ container_id: cur.id });
    const exitCode = status?.exit_code ?? 0;
    const policy = pod.spec.restartPolicy ?? 'Always';
    if (policy === 'Never' || (policy === 'OnFailure' && exitCode === 0)) return undefined;
    const key = backoffKey(pod.metadata.uid!, spec.name);
    const finishedMs = (status?.finished_at || cur.created_at) / 1e6;
    const wait = ctx.backoff.remaining(key, finishedMs);
    if (wait > 0) {
      const message =
        `back-off ${goDuration(ctx.backoff.get(key))} restarting failed container=${spec.name} ` +
        `pod=${pod.metadata.name}_${pod.metadata.namespace ?? 'default'}(${pod.metadata.uid})`;
      backoffs.set(spec.name, { message, retryAfterMs: wait });
      this.event(
        pod,
        spec.name,
        'Warning',
        'BackOff',
        `Back-off restarting failed container ${spec.name} in pod ${podRef(pod)}`,
      );
      return undefined;
    }
    ctx.backoff.next(key, finishedMs);
    // Keep the instance that just exited (logs --previous, lastState); older ones go.
    for (const old of instances.slice(1)) {
      await this.runtime.removeContainer({ container_id: old.id }).catch(() => undefined);
    }
    this.log(
      `restarting container ${spec.name} of pod ${podRef(pod)} (exit code ${exitCode}, attempt ${attempt + 1})`,
    );
    return attempt + 1;
  }

  /** Stops and removes every sandbox of the pod (the runtime removes their containers with them). */
  async killPod(rp: RuntimePod): Promise<void> {
    const pod = { metadata: { name: rp.name, namespace: rp.namespace, uid: rp.uid } };
    for (const c of rp.containers) {
      if (c.state !== 'CONTAINER_RUNNING') continue;
      const name = c.metadata?.name ?? '';
      this.opts.recorder?.event(podReference(pod, name), 'Normal', 'Killing', `Stopping container ${name}`);
    }
    for (const s of rp.sandboxes) {
      await this.runtime.stopPodSandbox({ pod_sandbox_id: s.id });
      await this.runtime.removePodSandbox({ pod_sandbox_id: s.id });
      this.log(`removed sandbox ${s.id} of pod ${rp.namespace}/${rp.name}`);
    }
  }

  /** CRI ContainerStatus of each container (containers that vanished meanwhile are skipped). */
  async containerStatuses(containers: Container[]): Promise<Map<string, CriContainerStatus>> {
    const out = new Map<string, CriContainerStatus>();
    await Promise.all(
      containers.map(async (c) => {
        try {
          const { status } = await this.runtime.containerStatus({ container_id: c.id });
          if (status) out.set(c.id, status);
        } catch {
          // gone between List and Status: the next sync sees the truth
        }
      }),
    );
    return out;
  }

  private sandboxConfig(pod: Pod, attempt: number): PodSandboxConfigIn {
    const { name, namespace, uid } = pod.metadata;
    const logDirectory = this.podLogsDirectory({ namespace: namespace ?? 'default', name: name!, uid: uid! });
    return {
      metadata: { name: name!, namespace: namespace ?? 'default', uid: uid!, attempt },
      // Upstream sets no hostname for hostNetwork pods: they have the node's (runc refuses to set
      // one without a UTS namespace of the pod's own).
      ...(pod.spec.hostNetwork ? {} : { hostname: pod.spec.hostname ?? name! }),
      ...(logDirectory ? { log_directory: logDirectory } : {}),
      linux: sandboxLinuxConfig(pod, namespacesForPod(pod)),
      labels: {
        ...pod.metadata.labels,
        [KubernetesPodNameLabel]: name!,
        [KubernetesPodNamespaceLabel]: namespace ?? 'default',
        [KubernetesPodUIDLabel]: uid!,
      },
      annotations: { ...pod.metadata.annotations },
    };
  }

  /** Create then start one container; a failure is returned (and the half-made container removed). */
  private async startContainer(
    pod: Pod,
    spec: ContainerSpec,
    sandboxId: string,
    sandboxConfig: PodSandboxConfigIn,
    attempt: number,
  ): Promise<ContainerSyncError | undefined> {
    if (!spec.image) return { reason: 'CreateContainerConfigError', message: 'no image specified' };
    const nonRoot = verifyRunAsNonRoot(pod, spec);
    if (nonRoot) return { reason: 'CreateContainerConfigError', message: nonRoot };
    const ensured = await this.images.ensureImageExists(pod, spec, sandboxConfig);
    if ('error' in ensured) return ensured.error;
    this.event(
      pod,
      spec.name,
      'Normal',
      'Pulled',
      ensured.pulled
        ? `Successfully pulled image "${spec.image}"`
        : `Container image "${spec.image}" already present on machine`,
    );
    let containerId: string;
    try {
      ({ container_id: containerId } = await this.runtime.createContainer({
        pod_sandbox_id: sandboxId,
        sandbox_config: sandboxConfig,
        config: {
          metadata: { name: spec.name, attempt },
          // The runtime's reference for the image (from ImageStatus or PullImage), as upstream.
          image: { image: ensured.imageRef, user_specified_image: spec.image },
          command: spec.command ?? [],
          args: spec.args ?? [],
          working_dir: spec.workingDir ?? '',
          envs: (spec.env ?? []).map((e) => ({ key: e.name, value: e.value ?? '' })),
          labels: {
            [KubernetesPodNameLabel]: pod.metadata.name!,
            [KubernetesPodNamespaceLabel]: pod.metadata.namespace ?? 'default',
            [KubernetesPodUIDLabel]: pod.metadata.uid!,
            [KubernetesContainerNameLabel]: spec.name,
          },
          // Relative to the sandbox's log directory, as upstream (`<container>/<attempt>.log`):
          // each instance keeps its own log, so `previous` still reads after a restart.
          log_path: `${spec.name}/${attempt}.log`,
          stdin: spec.stdin ?? false,
          stdin_once: spec.stdinOnce ?? false,
          tty: spec.tty ?? false,
          linux: containerLinuxConfig(pod, spec, namespacesForPod(pod)),
        },
      }));
    } catch (err) {
      const message = criMessage(err);
      this.log(`CreateContainer ${spec.name} of pod ${podRef(pod)} failed: ${message}`);
      this.event(pod, spec.name, 'Warning', 'Failed', `Error: ${message}`);
      return { reason: /image/i.test(message) ? 'ErrImagePull' : 'CreateContainerError', message };
    }
    this.event(pod, spec.name, 'Normal', 'Created', `Created container: ${spec.name}`);
    try {
      await this.runtime.startContainer({ container_id: containerId });
      this.log(`started container ${spec.name} (${containerId}) of pod ${podRef(pod)}`);
      this.event(pod, spec.name, 'Normal', 'Started', `Started container ${spec.name}`);
      return undefined;
    } catch (err) {
      const message = criMessage(err);
      this.log(`StartContainer ${spec.name} of pod ${podRef(pod)} failed: ${message}`);
      this.event(pod, spec.name, 'Warning', 'Failed', `Error: ${message}`);
      await this.runtime.removeContainer({ container_id: containerId }).catch(() => undefined);
      return { reason: 'RunContainerError', message };
    }
  }
}

function groupByPod(sandboxes: PodSandbox[], containers: Container[]): Map<string, RuntimePod> {
  const pods = new Map<string, RuntimePod>();
  const podFor = (labels: Record<string, string>): RuntimePod | undefined => {
    const uid = labels[KubernetesPodUIDLabel];
    if (!uid) return undefined; // not ours
    let p = pods.get(uid);
    if (!p) {
      p = {
        uid,
        name: labels[KubernetesPodNameLabel] ?? '',
        namespace: labels[KubernetesPodNamespaceLabel] ?? '',
        sandboxes: [],
        containers: [],
      };
      pods.set(uid, p);
    }
    return p;
  };
  for (const s of sandboxes) podFor(s.labels ?? {})?.sandboxes.push(s);
  for (const c of containers) podFor(c.labels ?? {})?.containers.push(c);
  return pods;
}

function newest<T extends { created_at: number }>(items: T[]): T | undefined {
  return items.reduce<T | undefined>((a, b) => (!a || b.created_at > a.created_at ? b : a), undefined);
}

function fakeSandbox(id: string, cfg: PodSandboxConfigIn): PodSandbox {
  return {
    id,
    metadata: null,
    state: 'SANDBOX_READY',
    created_at: Date.now() * 1e6,
    labels: cfg.labels ?? {},
    annotations: cfg.annotations ?? {},
    runtime_handler: '',
  };
}

/** A duration as Go prints it: `100ms`, `10s`, `5m0s`. */
export function goDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const s = ms / 1000;
  if (s < 60) return `${Number.isInteger(s) ? s : s.toFixed(3).replace(/0+$/, '')}s`;
  const m = Math.floor(s / 60);
  return `${m}m${Math.round(s - m * 60)}s`;
}

export function podRef(pod: Pod): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}
