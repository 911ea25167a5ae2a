/**
 * The Linux part of the CRI requests the kubelet makes for a pod: the sandbox's namespaces
 * (hostNetwork) and, per container, its security context and memory limit.
 *
 * Mirrors kubelet `pkg/kubelet/kuberuntime/kuberuntime_sandbox_linux.go`
 * (generatePodSandboxLinuxConfig), `kuberuntime_container_linux.go`
 * (generateLinuxContainerConfig: memory limit from `resources.limits.memory`),
 * `security_context_others.go`/`pkg/securitycontext` (the pod's runAsUser, runAsGroup,
 * runAsNonRoot and seccompProfile as defaults for each container's), `verifyRunAsNonRoot`.
 * Difference, on purpose: a pod without a seccomp profile gets RuntimeDefault, as a kubelet
 * started with `--seccomp-default` does (the kubelet's own default is Unconfined).
 */
import type {
  In,
  LinuxContainerConfig,
  LinuxPodSandboxConfig,
  NamespaceOptionIn,
} from '../shared/cri/types.js';
import type { Container, Pod, SeccompProfile } from '../shared/api/core-v1.js';

/** `ns`: the pod's namespaces (kuberuntime-manager.ts namespacesForPod). */
export function sandboxLinuxConfig(pod: Pod, ns: NamespaceOptionIn): In<LinuxPodSandboxConfig> {
  return {
    security_context: {
      namespace_options: ns,
      ...(pod.spec.securityContext?.supplementalGroups
        ? { supplemental_groups: pod.spec.securityContext.supplementalGroups }
        : {}),
    },
  };
}

/** Why a container cannot be created as asked (CreateContainerConfigError), or undefined. */
export function verifyRunAsNonRoot(pod: Pod, spec: Container): string | undefined {
  const sc = { ...pod.spec.securityContext, ...spec.securityContext };
  if (!sc.runAsNonRoot) return undefined;
  // The lab's images run as root unless told otherwise.
  if ((sc.runAsUser ?? 0) === 0) return 'container has runAsNonRoot and image will run as root';
  return undefined;
}

export function containerLinuxConfig(
  pod: Pod,
  spec: Container,
  ns: NamespaceOptionIn,
): In<LinuxContainerConfig> {
  const podSc = pod.spec.securityContext ?? {};
  const sc = spec.securityContext ?? {};
  const runAsUser = sc.runAsUser ?? podSc.runAsUser;
  const runAsGroup = sc.runAsGroup ?? podSc.runAsGroup;
  const seccomp: SeccompProfile = sc.seccompProfile ?? podSc.seccompProfile ?? { type: 'RuntimeDefault' };
  const memory = spec.resources?.limits?.memory;
  return {
    resources: memory === undefined ? {} : { memory_limit_in_bytes: parseQuantity(String(memory)) },
    security_context: {
      privileged: !!sc.privileged,
      capabilities: {
        add_capabilities: sc.capabilities?.add ?? [],
        drop_capabilities: sc.capabilities?.drop ?? [],
      },
      namespace_options: ns,
      ...(runAsUser !== undefined ? { run_as_user: { value: runAsUser } } : {}),
      ...(runAsGroup !== undefined ? { run_as_group: { value: runAsGroup } } : {}),
      readonly_rootfs: !!sc.readOnlyRootFilesystem,
      supplemental_groups: podSc.supplementalGroups ?? [],
      no_new_privs: sc.allowPrivilegeEscalation === false,
      seccomp: { profile_type: seccomp.type, localhost_ref: seccomp.localhostProfile ?? '' },
    },
  };
}

const SUFFIXES: Record<string, number> = {
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
};

/** A resource.Quantity as bytes (`64Mi`, `1G`, `128974848`, `1e9`); the apiserver validated it. */
export function parseQuantity(q: string): number {
  const m = /^([0-9.]+(?:e[0-9]+)?)([kMGT]i?)?$/.exec(q.trim());
  const mult = m ? SUFFIXES[m[2] ?? ''] : undefined;
  if (!m || mult === undefined) throw new Error(`invalid quantity ${JSON.stringify(q)}`);
  return Math.ceil(Number(m[1]) * mult);
}
