/**
 * Finding what a kubelet server request names (a pod by namespace and name, optionally its UID; a
 * container by name) in the runtime, through the labels the kubelet put on its sandboxes and
 * containers (CRI ListPodSandbox / ListContainers with a label selector).
 *
 * Upstream the kubelet looks the pod up in its pod manager, then asks the runtime
 * (kuberuntime_manager.go GetExec / GetAttach / GetPortForward, kuberuntime_logs.go). The lab
 * asks the runtime directly, so a kubelet that has just restarted can serve what is still
 * running. Wording of the refusals: kubelet server.go.
 */
import {
  KubernetesContainerNameLabel,
  KubernetesPodNameLabel,
  KubernetesPodNamespaceLabel,
  KubernetesPodUIDLabel,
  type Container,
  type PodSandbox,
} from '../shared/cri/types.js';
import { StatusError } from '../shared/status.js';
import type { RuntimeService } from './kuberuntime-manager.js';

export interface PodRef {
  namespace: string;
  pod: string;
  uid?: string;
}

function podLabels(r: PodRef): Record<string, string> {
  const labels: Record<string, string> = {
    [KubernetesPodNamespaceLabel]: r.namespace,
    [KubernetesPodNameLabel]: r.pod,
  };
  if (r.uid) labels[KubernetesPodUIDLabel] = r.uid;
  return labels;
}

/** Newest first: by restart attempt, then by creation time. */
export function byNewest(a: Container, b: Container): number {
  const attempt = (b.metadata?.attempt ?? 0) - (a.metadata?.attempt ?? 0);
  return attempt !== 0 ? attempt : b.created_at - a.created_at;
}

/** Every instance of the named container (any state), newest first; 404 when there is none. */
export async function findContainerInstances(
  runtime: RuntimeService,
  r: PodRef & { container: string },
  notFound: () => string,
): Promise<Container[]> {
  const labels = podLabels(r);
  const { containers } = await runtime.listContainers({
    filter: { label_selector: { ...labels, [KubernetesContainerNameLabel]: r.container } },
  });
  if (containers.length) return [...containers].sort(byNewest);
  await findSandbox(runtime, r);
  throw StatusError.of(404, notFound());
}

/** The newest running instance of the named container; 404 when none runs. */
export async function findRunningContainer(
  runtime: RuntimeService,
  r: PodRef & { container: string },
): Promise<Container> {
  const labels = podLabels(r);
  const { containers } = await runtime.listContainers({
    filter: {
      label_selector: { ...labels, [KubernetesContainerNameLabel]: r.container },
      state: { state: 'CONTAINER_RUNNING' },
    },
  });
  const running = containers.filter((c) => c.state === 'CONTAINER_RUNNING').sort(byNewest);
  if (running[0]) return running[0];
  await findSandbox(runtime, r);
  throw StatusError.of(404, `container not found (${JSON.stringify(r.container)})`);
}

/**
 * The pod's sandbox: the newest ready one, else the newest of any state (the runtime then says
 * why it cannot serve it); 404 `pod does not exist` when the runtime has none.
 */
export async function findSandbox(runtime: RuntimeService, r: PodRef): Promise<PodSandbox> {
  const { items } = await runtime.listPodSandbox({ filter: { label_selector: podLabels(r) } });
  const newest = (list: PodSandbox[]): PodSandbox | undefined =>
    list.reduce<PodSandbox | undefined>((a, b) => (!a || b.created_at > a.created_at ? b : a), undefined);
  const found = newest(items.filter((s) => s.state === 'SANDBOX_READY')) ?? newest(items);
  if (!found) throw StatusError.of(404, 'pod does not exist');
  return found;
}
