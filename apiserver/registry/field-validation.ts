/**
 * Server-side field validation (`?fieldValidation=Strict|Warn|Ignore`): fields the API does not
 * know are an error (Strict), a `Warning` header (Warn, the default) or silently dropped (Ignore)
 * — dropped in every case but Strict, as upstream's decoder drops them.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/create.go` / `patch.go` (the strict decoding
 * error "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field
 * \"spec.foo\"", the `299 - "unknown field \"spec.foo\""` warnings). Upstream checks every level
 * against the Go types; the lab knows the field names of the levels listed below (object,
 * ObjectMeta, PodSpec, Container, PodStatus, NodeSpec, NodeStatus) and passes deeper levels
 * through unchecked.
 */
import { badRequest } from '../api/errors.js';
import type { KubeObject } from '../../shared/api/core-v1.js';
import { isRecord } from '../api/json-values.js';

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore';

interface Level {
  fields: readonly string[];
  /** Field → the level of its value (an object, or each element of a list). */
  nested?: Record<string, Level>;
}

const OBJECT_META: Level = {
  fields: [
    'name',
    'generateName',
    'namespace',
    'selfLink',
    'uid',
    'resourceVersion',
    'generation',
    'creationTimestamp',
    'deletionTimestamp',
    'deletionGracePeriodSeconds',
    'labels',
    'annotations',
    'ownerReferences',
    'finalizers',
    'managedFields',
  ],
};

const CONTAINER_FIELDS = [
  'name',
  'image',
  'command',
  'args',
  'workingDir',
  'ports',
  'envFrom',
  'env',
  'resources',
  'resizePolicy',
  'restartPolicy',
  'volumeMounts',
  'volumeDevices',
  'livenessProbe',
  'readinessProbe',
  'startupProbe',
  'lifecycle',
  'terminationMessagePath',
  'terminationMessagePolicy',
  'imagePullPolicy',
  'securityContext',
  'stdin',
  'stdinOnce',
  'tty',
];
const CONTAINER: Level = { fields: CONTAINER_FIELDS };

const POD: Level = {
  fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  nested: {
    metadata: OBJECT_META,
    spec: {
      fields: [
        'volumes',
        'initContainers',
        'containers',
        'ephemeralContainers',
        'restartPolicy',
        'terminationGracePeriodSeconds',
        'activeDeadlineSeconds',
        'dnsPolicy',
        'nodeSelector',
        'serviceAccountName',
        'serviceAccount',
        'automountServiceAccountToken',
        'nodeName',
        'hostNetwork',
        'hostPID',
        'hostIPC',
        'shareProcessNamespace',
        'securityContext',
        'imagePullSecrets',
        'hostname',
        'subdomain',
        'affinity',
        'schedulerName',
        'tolerations',
        'hostAliases',
        'priorityClassName',
        'priority',
        'dnsConfig',
        'readinessGates',
        'runtimeClassName',
        'enableServiceLinks',
        'preemptionPolicy',
        'overhead',
        'topologySpreadConstraints',
        'setHostnameAsFQDN',
        'os',
        'hostUsers',
        'schedulingGates',
        'resourceClaims',
        'resources',
      ],
      nested: {
        containers: CONTAINER,
        initContainers: CONTAINER,
        ephemeralContainers: { fields: [...CONTAINER_FIELDS, 'targetContainerName'] },
      },
    },
    status: {
      fields: [
        'observedGeneration',
        'phase',
        'conditions',
        'message',
        'reason',
        'nominatedNodeName',
        'hostIP',
        'hostIPs',
        'podIP',
        'podIPs',
        'startTime',
        'initContainerStatuses',
        'containerStatuses',
        'qosClass',
        'ephemeralContainerStatuses',
        'resize',
        'resourceClaimStatuses',
      ],
    },
  },
};

const NODE: Level = {
  fields: ['apiVersion', 'kind', 'metadata', 'spec', 'status'],
  nested: {
    metadata: OBJECT_META,
    spec: {
      fields: ['podCIDR', 'podCIDRs', 'providerID', 'unschedulable', 'taints', 'configSource', 'externalID'],
    },
    status: {
      fields: [
        'capacity',
        'allocatable',
        'phase',
        'conditions',
        'addresses',
        'daemonEndpoints',
        'nodeInfo',
        'images',
        'volumesInUse',
        'volumesAttached',
        'config',
        'runtimeHandlers',
        'features',
      ],
    },
  },
};

const BINDING: Level = {
  fields: ['apiVersion', 'kind', 'metadata', 'target'],
  nested: {
    metadata: OBJECT_META,
    target: { fields: ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'] },
  },
};

const LEVELS: Record<string, Level> = { Pod: POD, Node: NODE, Binding: BINDING };

export function fieldValidationDirective(q: URLSearchParams): FieldValidation {
  const v = q.get('fieldValidation');
  if (v === null || v === '' || v === 'Warn') return 'Warn';
  if (v === 'Strict' || v === 'Ignore') return v;
  throw badRequest(
    `fieldValidation: Unsupported value: ${JSON.stringify(v)}: supported values: "Ignore", "Strict", "Warn"`,
  );
}

/**
 * Removes the unknown fields of `obj` (a `kind` object) in place and returns the paths to warn
 * about (`spec.containers[0].imagee`; none with Ignore); with Strict, throws the 400 upstream sends.
 */
export function checkFields(obj: KubeObject, kind: string, directive: FieldValidation): string[] {
  const level = LEVELS[kind];
  if (!level) return [];
  const unknown: string[] = [];
  walk(obj, level, '', unknown, directive !== 'Strict');
  if (unknown.length && directive === 'Strict') {
    const list = unknown.map((f) => `unknown field ${JSON.stringify(f)}`).join(', ');
    throw badRequest(
      `${kind} in version "v1" cannot be handled as a ${kind}: strict decoding error: ${list}`,
    );
  }
  return directive === 'Warn' ? unknown : [];
}

function walk(
  value: Record<string, unknown>,
  level: Level,
  path: string,
  unknown: string[],
  drop: boolean,
): void {
  for (const key of Object.keys(value)) {
    const here = path ? `${path}.${key}` : key;
    if (!level.fields.includes(key)) {
      unknown.push(here);
      if (drop) delete value[key];
      continue;
    }
    const sub = level.nested?.[key];
    const v = value[key];
    if (!sub) continue;
    if (isRecord(v)) walk(v, sub, here, unknown, drop);
    else if (Array.isArray(v))
      v.forEach((e, i) => isRecord(e) && walk(e, sub, `${here}[${i}]`, unknown, drop));
  }
}

/** The `Warning` header values for dropped fields (RFC 7234 warn-code 299). */
export function warningHeaders(unknown: string[]): string[] {
  return unknown.map((f) => `299 - ${JSON.stringify(`unknown field ${JSON.stringify(f)}`)}`);
}
