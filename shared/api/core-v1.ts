/**
 * The slice of the Kubernetes API every part of the lab reads and writes: ObjectMeta, Pod, Node,
 * lists and watch events (core/v1), in their JSON shapes on the wire (timestamps are RFC 3339
 * strings, absent fields are left out). The apiserver stores these, the kubelet-sim syncs them,
 * kexec reads the pod it execs into.
 *
 * Mirrors k8s.io/api `core/v1/types.go` and apimachinery `pkg/apis/meta/v1/types.go`, trimmed to
 * the fields the lab uses. Every object keeps the fields it does not name (`[field: string]:
 * unknown`): the apiserver stores and returns what a client sent, untouched. Not
 * @kubernetes/client-node's model classes: they turn timestamps into `Date`s and need its
 * ObjectSerializer, while plain JSON is what the apiserver speaks.
 */
import type { Status } from '../status.js';

/** meta/v1 ManagedFieldsEntry: which manager owns which fields (server-side apply). */
export interface ManagedFieldsEntry {
  manager?: string;
  operation?: 'Apply' | 'Update';
  apiVersion?: string;
  time?: string;
  fieldsType?: 'FieldsV1';
  fieldsV1?: Record<string, unknown>;
  subresource?: string;
}

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  managedFields?: ManagedFieldsEntry[];
  [field: string]: unknown;
}

/** Any API object: kind, apiVersion and metadata are known, the rest is passed through. */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
}

export interface Container {
  name: string;
  image?: string;
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  securityContext?: SecurityContext;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  /** `Always`, `IfNotPresent` or `Never`; defaulted by the image manager when unset. */
  imagePullPolicy?: string;
  [field: string]: unknown;
}

export interface SeccompProfile {
  type: 'RuntimeDefault' | 'Unconfined' | 'Localhost';
  localhostProfile?: string;
}

export interface SecurityContext {
  privileged?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  seccompProfile?: SeccompProfile;
}

export interface PodSecurityContext {
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  supplementalGroups?: number[];
  seccompProfile?: SeccompProfile;
}

export interface PodSpec {
  nodeName?: string;
  containers: Container[];
  initContainers?: Container[];
  ephemeralContainers?: Container[];
  securityContext?: PodSecurityContext;
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  hostname?: string;
  /** The node's network, PID and IPC namespaces instead of the pod's own. */
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  /** The containers of the pod share one PID namespace (the sandbox's). */
  shareProcessNamespace?: boolean;
  [field: string]: unknown;
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface ContainerState {
  waiting?: { reason?: string; message?: string };
  running?: { startedAt?: string };
  terminated?: {
    exitCode: number;
    reason?: string;
    message?: string;
    startedAt?: string;
    finishedAt?: string;
    containerID?: string;
  };
}

export interface ContainerStatus {
  name: string;
  image: string;
  imageID: string;
  containerID?: string;
  ready: boolean;
  restartCount: number;
  started?: boolean;
  state: ContainerState;
  lastState?: ContainerState;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodStatus {
  phase?: PodPhase;
  conditions?: PodCondition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: { ip: string }[];
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  containerStatuses?: ContainerStatus[];
  [field: string]: unknown;
}

export interface Pod extends KubeObject {
  spec: PodSpec;
  status?: PodStatus;
}

export interface NodeAddress {
  type: 'InternalIP' | 'ExternalIP' | 'Hostname' | 'InternalDNS' | 'ExternalDNS';
  address: string;
}

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface NodeSystemInfo {
  machineID: string;
  systemUUID: string;
  bootID: string;
  kernelVersion: string;
  osImage: string;
  containerRuntimeVersion: string;
  kubeletVersion: string;
  kubeProxyVersion: string;
  operatingSystem: string;
  architecture: string;
}

/** Quantities by resource name (`cpu`, `memory`, `pods`, `ephemeral-storage`), e.g. `"2"`, `"8Gi"`. */
export type ResourceList = Record<string, string>;

export interface NodeStatus {
  addresses?: NodeAddress[];
  conditions?: NodeCondition[];
  daemonEndpoints?: { kubeletEndpoint?: { Port: number } };
  nodeInfo?: NodeSystemInfo;
  capacity?: ResourceList;
  allocatable?: ResourceList;
  [field: string]: unknown;
}

export interface Node extends KubeObject {
  spec?: { unschedulable?: boolean; [field: string]: unknown };
  status?: NodeStatus;
}

export interface List<T = KubeObject> {
  apiVersion?: string;
  kind?: string;
  metadata: { resourceVersion?: string; [field: string]: unknown };
  items: T[];
}

/** A list as the apiserver writes it: always typed, always with a resourceVersion. */
export interface KubeList extends List<KubeObject> {
  kind: string;
  apiVersion: string;
  metadata: { resourceVersion: string; [field: string]: unknown };
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

export interface WatchEvent<T = KubeObject | Status> {
  type: WatchEventType;
  object: T;
}
