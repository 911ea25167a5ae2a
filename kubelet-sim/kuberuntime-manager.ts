/**
 * The kubelet's view of the container runtime: turns a Pod spec into CRI calls (RunPodSandbox,
 * CreateContainer, StartContainer), finds what already runs by the kubelet's labels, and tears
 * pods down (StopPodSandbox, RemovePodSandbox).
 *
 * Mirrors kubelet `pkg/kubelet/kuberuntime/kuberuntime_manager.go` (SyncPod, KillPod, GetPods),
 * `kuberuntime_sandbox.go` and `kuberuntime_container.go` (generateContainerConfig,
 * startContainer). Simplifications: no image pulls (the runtime's images are local templates, so an
 * unknown image fails at CreateContainer and is reported as ErrImagePull), no restarts or backoff
 * yet, no init or ephemeral containers, one sandbox attempt at a time.
 */
import type { RuntimeServiceClient } from '../shared/cri/client.js';
import {
  KubernetesContainerNameLabel,
  KubernetesPodNameLabel,
  KubernetesPodNamespaceLabel,
  KubernetesPodUIDLabel,
  type Container,
  type ContainerStatus as CriContainerStatus,
  type PodSandbox,
  type PodSandboxConfigIn,
} from '../shared/cri/types.js';
import type { ContainerSpec, Pod } from './api-types.js';
import { errorMessage, type Logger } from './util.js';

/** The CRI calls the kubelet makes; the real client, or a fake in tests. */
export type RuntimeService = Pick<
  RuntimeServiceClient,
  | 'version'
  | 'runPodSandbox'
  | 'stopPodSandbox'
  | 'removePodSandbox'
  | 'listPodSandbox'
  | 'createContainer'
  | 'startContainer'
  | 'removeContainer'
  | 'listContainers'
  | 'containerStatus'
  | 'exec'
  | 'attach'
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
  reason: 'ErrImagePull' | 'CreateContainerError' | 'RunContainerError' | 'CreateContainerConfigError';
  message: string;
}

export interface PodSyncResult {
  sandbox?: PodSandbox;
  /** Start failures of this sync, by container name. */
  errors: Map<string, ContainerSyncError>;
}

export class KubeRuntimeManager {
  constructor(
    private readonly runtime: RuntimeService,
    private readonly log: Logger,
  ) {}

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

  /** Makes the runtime run `pod`: a ready sandbox, and every spec container created and started once. */
  async syncPod(pod: Pod): Promise<PodSyncResult> {
    const uid = pod.metadata.uid!;
    const errors = new Map<string, ContainerSyncError>();
    const existing = await this.getPod(uid);
    let sandbox = newest(existing?.sandboxes.filter((s) => s.state === 'SANDBOX_READY') ?? []);
    const sandboxConfig = this.sandboxConfig(pod, existing?.sandboxes.length ?? 0);
    if (!sandbox) {
      const { pod_sandbox_id } = await this.runtime.runPodSandbox({ config: sandboxConfig });
      this.log(`started sandbox ${pod_sandbox_id} for pod ${podRef(pod)}`);
      const { items } = await this.runtime.listPodSandbox({ filter: { id: pod_sandbox_id } });
      sandbox = items[0] ?? fakeSandbox(pod_sandbox_id, sandboxConfig);
    }
    for (const spec of pod.spec.containers ?? []) {
      const found = existing?.containers.find(
        (c) => c.pod_sandbox_id === sandbox.id && c.labels[KubernetesContainerNameLabel] === spec.name,
      );
      if (found) continue;
      const err = await this.startContainer(pod, spec, sandbox.id, sandboxConfig);
      if (err) errors.set(spec.name, err);
    }
    return { sandbox, errors };
  }

  /** Stops and removes every sandbox of the pod (the runtime removes their containers with them). */
  async killPod(rp: RuntimePod): Promise<void> {
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
    return {
      metadata: { name: name!, namespace: namespace ?? 'default', uid: uid!, attempt },
      hostname: pod.spec.hostname ?? name!,
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
  ): Promise<ContainerSyncError | undefined> {
    if (!spec.image) return { reason: 'CreateContainerConfigError', message: 'no image specified' };
    let containerId: string;
    try {
      ({ container_id: containerId } = await this.runtime.createContainer({
        pod_sandbox_id: sandboxId,
        sandbox_config: sandboxConfig,
        config: {
          metadata: { name: spec.name, attempt: 0 },
          image: { image: spec.image, user_specified_image: spec.image },
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
          stdin: spec.stdin ?? false,
          stdin_once: spec.stdinOnce ?? false,
          tty: spec.tty ?? false,
        },
      }));
    } catch (err) {
      const message = criMessage(err);
      this.log(`CreateContainer ${spec.name} of pod ${podRef(pod)} failed: ${message}`);
      return { reason: /image/i.test(message) ? 'ErrImagePull' : 'CreateContainerError', message };
    }
    try {
      await this.runtime.startContainer({ container_id: containerId });
      this.log(`started container ${spec.name} (${containerId}) of pod ${podRef(pod)}`);
      return undefined;
    } catch (err) {
      const message = criMessage(err);
      this.log(`StartContainer ${spec.name} of pod ${podRef(pod)} failed: ${message}`);
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

/** A gRPC error's own message (`details`), without grpc-js's "5 NOT_FOUND: " prefix. */
export function criMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'details' in err) {
    const d = (err as { details: unknown }).details;
    if (typeof d === 'string' && d) return d;
  }
  return errorMessage(err);
}

export function podRef(pod: Pod): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}
