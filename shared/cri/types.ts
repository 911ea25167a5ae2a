/**
 * TypeScript shapes of the CRI runtime.v1 messages (RuntimeService and ImageService) in `shared/cri/cri.proto`, as
 * @grpc/proto-loader hands them over with the options in `proto.ts`:
 * snake_case field names (keepCase, like upstream's JSON), int64 as `number`, enums as their
 * string names, and `defaults: true` — so every scalar, map and repeated field of a *received*
 * message is present ('' / 0 / false / {} / []), while an unset sub-message is `null`.
 * Requests we *send* may leave fields out (the `In` suffix types are partial).
 */

export type Labels = Record<string, string>;

export type PodSandboxState = 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
export type ContainerState =
  'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface VersionRequest {
  version?: string;
}
export interface VersionResponse {
  version: string;
  runtime_name: string;
  runtime_version: string;
  runtime_api_version: string;
}

export interface PodSandboxMetadata {
  name: string;
  uid: string;
  namespace: string;
  attempt: number;
}

/** POD: the pod's own (shared by its containers); CONTAINER: the container's own; NODE: the host's. */
export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export interface NamespaceOption {
  network: NamespaceMode;
  pid: NamespaceMode;
  ipc: NamespaceMode;
  target_id: string;
}
export type NamespaceOptionIn = Partial<NamespaceOption>;

export interface PodSandboxConfig {
  metadata: PodSandboxMetadata | null;
  hostname: string;
  log_directory: string;
  labels: Labels;
  annotations: Labels;
  linux: LinuxPodSandboxConfig | null;
}
export interface PodSandboxConfigIn {
  metadata: Partial<PodSandboxMetadata> & { name: string };
  hostname?: string;
  log_directory?: string;
  labels?: Labels;
  annotations?: Labels;
  linux?: In<LinuxPodSandboxConfig>;
}

// ---- Linux security and resources ----

/** A message as we send it: every field optional, sub-messages too. */
export type In<T> = { [K in keyof T]?: T[K] extends (infer E)[] ? E[] : In<NonNullable<T[K]>> | T[K] };

/** Int64Value: set (even to 0) or absent (null). */
export interface Int64Value {
  value: number;
}
export interface SecurityProfile {
  profile_type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhost_ref: string;
}
export interface LinuxSandboxSecurityContext {
  namespace_options: NamespaceOption | null;
  run_as_user: Int64Value | null;
  readonly_rootfs: boolean;
  supplemental_groups: number[];
  privileged: boolean;
  run_as_group: Int64Value | null;
  seccomp: SecurityProfile | null;
}
export interface LinuxPodSandboxConfig {
  cgroup_parent: string;
  security_context: LinuxSandboxSecurityContext | null;
}
export interface Capability {
  add_capabilities: string[];
  drop_capabilities: string[];
}
export interface LinuxContainerSecurityContext {
  capabilities: Capability | null;
  privileged: boolean;
  namespace_options: NamespaceOption | null;
  run_as_user: Int64Value | null;
  run_as_username: string;
  readonly_rootfs: boolean;
  supplemental_groups: number[];
  no_new_privs: boolean;
  run_as_group: Int64Value | null;
  seccomp: SecurityProfile | null;
}
export interface LinuxContainerResources {
  cpu_period: number;
  cpu_quota: number;
  cpu_shares: number;
  memory_limit_in_bytes: number;
}
export interface LinuxContainerConfig {
  resources: LinuxContainerResources | null;
  security_context: LinuxContainerSecurityContext | null;
}

export interface RunPodSandboxRequest {
  config: PodSandboxConfigIn;
  runtime_handler?: string;
}
export interface RunPodSandboxResponse {
  pod_sandbox_id: string;
}
export interface PodSandboxIdRequest {
  pod_sandbox_id: string;
}
export type Empty = Record<string, never>;

export interface PodSandboxStatus {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: PodSandboxState;
  /** Nanoseconds since the epoch. As a JS number it loses sub-microsecond precision, which is fine here. */
  created_at: number;
  network: { ip: string; additional_ips: { ip: string }[] } | null;
  labels: Labels;
  annotations: Labels;
  runtime_handler: string;
}
export interface PodSandboxStatusRequest {
  pod_sandbox_id: string;
  verbose?: boolean;
}
export interface PodSandboxStatusResponse {
  status: PodSandboxStatus | null;
  info: Labels;
  containers_statuses: ContainerStatus[];
  timestamp: number;
}

export interface PodSandboxFilter {
  id?: string;
  state?: { state: PodSandboxState } | null;
  label_selector?: Labels;
}
export interface ListPodSandboxRequest {
  filter?: PodSandboxFilter | null;
}
export interface PodSandbox {
  id: string;
  metadata: PodSandboxMetadata | null;
  state: PodSandboxState;
  created_at: number;
  labels: Labels;
  annotations: Labels;
  runtime_handler: string;
}
export interface ListPodSandboxResponse {
  items: PodSandbox[];
}

export interface ImageSpec {
  image: string;
  annotations: Labels;
  user_specified_image: string;
}
export interface KeyValue {
  key: string;
  value: string;
}
export interface ContainerMetadata {
  name: string;
  attempt: number;
}

export interface ContainerConfig {
  metadata: ContainerMetadata | null;
  image: ImageSpec | null;
  command: string[];
  args: string[];
  working_dir: string;
  envs: KeyValue[];
  labels: Labels;
  annotations: Labels;
  log_path: string;
  stdin: boolean;
  stdin_once: boolean;
  tty: boolean;
  linux: LinuxContainerConfig | null;
}
export interface ContainerConfigIn {
  metadata: { name: string; attempt?: number };
  image: { image: string; annotations?: Labels; user_specified_image?: string };
  command?: string[];
  args?: string[];
  working_dir?: string;
  envs?: KeyValue[];
  labels?: Labels;
  annotations?: Labels;
  log_path?: string;
  stdin?: boolean;
  stdin_once?: boolean;
  tty?: boolean;
  linux?: In<LinuxContainerConfig>;
}

export interface CreateContainerRequest {
  pod_sandbox_id: string;
  config: ContainerConfigIn;
  sandbox_config?: PodSandboxConfigIn;
}
export interface CreateContainerResponse {
  container_id: string;
}
export interface ContainerIdRequest {
  container_id: string;
}
export interface StopContainerRequest {
  container_id: string;
  /** Seconds to wait after SIGTERM before SIGKILL; 0 = kill at once. */
  timeout?: number;
}

export interface ContainerFilter {
  id?: string;
  state?: { state: ContainerState } | null;
  pod_sandbox_id?: string;
  label_selector?: Labels;
}
export interface ListContainersRequest {
  filter?: ContainerFilter | null;
}
export interface Container {
  id: string;
  pod_sandbox_id: string;
  metadata: ContainerMetadata | null;
  image: ImageSpec | null;
  image_ref: string;
  state: ContainerState;
  created_at: number;
  labels: Labels;
  annotations: Labels;
  image_id: string;
}
export interface ListContainersResponse {
  containers: Container[];
}

export interface ContainerStatusRequest {
  container_id: string;
  verbose?: boolean;
}
export interface ContainerStatus {
  id: string;
  metadata: ContainerMetadata | null;
  state: ContainerState;
  created_at: number;
  started_at: number;
  finished_at: number;
  exit_code: number;
  image: ImageSpec | null;
  image_ref: string;
  reason: string;
  message: string;
  labels: Labels;
  annotations: Labels;
  log_path: string;
  image_id: string;
}
export interface ContainerStatusResponse {
  status: ContainerStatus | null;
  info: Labels;
}

export interface ExecSyncRequest {
  container_id: string;
  cmd: string[];
  /** Seconds; 0 = no timeout. */
  timeout?: number;
}
export interface ExecSyncResponse {
  stdout: Buffer;
  stderr: Buffer;
  exit_code: number;
}

export interface ExecRequest {
  container_id: string;
  cmd: string[];
  tty?: boolean;
  stdin?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}
export interface AttachRequest {
  container_id: string;
  stdin?: boolean;
  tty?: boolean;
  stdout?: boolean;
  stderr?: boolean;
}
export interface PortForwardRequest {
  pod_sandbox_id: string;
  port?: number[];
}
export interface UrlResponse {
  url: string;
}

export interface RuntimeCondition {
  type: string;
  status: boolean;
  reason: string;
  message: string;
}
export interface StatusRequest {
  verbose?: boolean;
}
export interface StatusResponse {
  status: { conditions: RuntimeCondition[] } | null;
  info: Labels;
}

/** Every RPC of the subset: request and response type, keyed by the upstream method name. */
export interface RuntimeServiceMethods {
  Version: [VersionRequest, VersionResponse];
  RunPodSandbox: [RunPodSandboxRequest, RunPodSandboxResponse];
  StopPodSandbox: [PodSandboxIdRequest, Empty];
  RemovePodSandbox: [PodSandboxIdRequest, Empty];
  PodSandboxStatus: [PodSandboxStatusRequest, PodSandboxStatusResponse];
  ListPodSandbox: [ListPodSandboxRequest, ListPodSandboxResponse];
  CreateContainer: [CreateContainerRequest, CreateContainerResponse];
  StartContainer: [ContainerIdRequest, Empty];
  StopContainer: [StopContainerRequest, Empty];
  RemoveContainer: [ContainerIdRequest, Empty];
  ListContainers: [ListContainersRequest, ListContainersResponse];
  ContainerStatus: [ContainerStatusRequest, ContainerStatusResponse];
  ExecSync: [ExecSyncRequest, ExecSyncResponse];
  Exec: [ExecRequest, UrlResponse];
  Attach: [AttachRequest, UrlResponse];
  PortForward: [PortForwardRequest, UrlResponse];
  Status: [StatusRequest, StatusResponse];
}
export type RuntimeMethodName = keyof RuntimeServiceMethods;

export interface ImageSpecIn {
  image: string;
  annotations?: Labels;
  user_specified_image?: string;
}
export interface Image {
  /** The image ID (`sha256:…` of its config for containerd). */
  id: string;
  repo_tags: string[];
  repo_digests: string[];
  size: number;
  uid: { value: number } | null;
  username: string;
  spec: ImageSpec | null;
  pinned: boolean;
}
export interface ListImagesRequest {
  filter?: { image?: ImageSpecIn } | null;
}
export interface ListImagesResponse {
  images: Image[];
}
export interface ImageStatusRequest {
  image: ImageSpecIn;
  verbose?: boolean;
}
/** `image` is null when the runtime does not have it (not an error, as upstream). */
export interface ImageStatusResponse {
  image: Image | null;
  info: Labels;
}
export interface PullImageRequest {
  image: ImageSpecIn;
  sandbox_config?: PodSandboxConfigIn;
}
export interface PullImageResponse {
  /** The reference of the image pulled (its ID or digest), which a container then runs. */
  image_ref: string;
}
export interface ImageRequest {
  image: ImageSpecIn;
}

/** Every RPC of the ImageService subset. */
export interface ImageServiceMethods {
  ListImages: [ListImagesRequest, ListImagesResponse];
  ImageStatus: [ImageStatusRequest, ImageStatusResponse];
  PullImage: [PullImageRequest, PullImageResponse];
  RemoveImage: [ImageRequest, Empty];
}
export type ImageMethodName = keyof ImageServiceMethods;

/** Container labels the kubelet sets and finds containers by (upstream pkg/kubelet/types/labels.go). */
export const KubernetesPodNameLabel = 'io.kubernetes.pod.name';
export const KubernetesPodNamespaceLabel = 'io.kubernetes.pod.namespace';
export const KubernetesPodUIDLabel = 'io.kubernetes.pod.uid';
export const KubernetesContainerNameLabel = 'io.kubernetes.container.name';
