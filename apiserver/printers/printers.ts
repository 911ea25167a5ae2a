/**
 * The column sets `kubectl get` shows for pods and nodes, computed on the server: one row of cells
 * per object, wide columns marked with priority 1 (kubectl shows them with `-o wide`).
 *
 * Mirrors kubernetes `pkg/printers/internalversion/printers.go` (podColumnDefinitions / printPod,
 * nodeColumnDefinitions / printNode, translateTimestampSince) and apimachinery
 * `pkg/util/duration` HumanDuration, the same cells and wording, for the fields the lab stores.
 * Sidecar (restartable init) containers are counted as ordinary init containers.
 */
import type { KubeObject } from '../../shared/api/core-v1.js';
import { isRecord } from '../api/json-values.js';
import { eventPrinter } from './event-printer.js';

export interface TableColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

export interface RowCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
}

export interface Printer {
  columns: TableColumnDefinition[];
  row(obj: KubeObject, now: Date): { cells: unknown[]; conditions?: RowCondition[] };
}

const col = (name: string, description: string, priority = 0, format = ''): TableColumnDefinition => ({
  name,
  type: 'string',
  format,
  description,
  priority,
});

const NAME_DESCRIPTION =
  'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names';
const AGE_DESCRIPTION =
  'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata';

/** HumanDuration: "45s", "3m12s", "42m", "5h3m", "20h", "3d4h", "40d", "2y30d", "9y". */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 60 * 2) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 60 * 3) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.trunc(hours / 24)}d` : `${Math.trunc(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.trunc(hours / 24) % 365;
    return dy === 0 ? `${Math.trunc(hours / 24 / 365)}y` : `${Math.trunc(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.trunc(hours / 24 / 365)}y`;
}

/** translateTimestampSince: "<unknown>" for a missing timestamp. */
export function since(timestamp: unknown, now: Date): string {
  const t = typeof timestamp === 'string' ? Date.parse(timestamp) : NaN;
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now.getTime() - t);
}

type Rec = Record<string, unknown>;
const rec = (v: unknown): Rec => (isRecord(v) ? v : {});
const arr = (v: unknown): Rec[] => (Array.isArray(v) ? v.map(rec) : []);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const num = (v: unknown): number => (typeof v === 'number' ? v : 0);

export const podPrinter: Printer = {
  columns: [
    col('Name', NAME_DESCRIPTION, 0, 'name'),
    col('Ready', 'The aggregate readiness state of this pod for accepting traffic.'),
    col('Status', 'The aggregate status of the containers in this pod.'),
    col(
      'Restarts',
      'The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.',
    ),
    col('Age', AGE_DESCRIPTION),
    col(
      'IP',
      'IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.',
      1,
    ),
    col(
      'Node',
      'NodeName is a request to schedule this pod onto a specific node. If it is non-empty, the scheduler simply schedules this pod onto that node, assuming that it fits resource requirements.',
      1,
    ),
    col(
      'Nominated Node',
      'nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods. This field does not guarantee that the pod will be scheduled on this node.',
      1,
    ),
    col(
      'Readiness Gates',
      'If specified, all readiness gates will be evaluated for pod readiness. A pod is ready when all its containers are ready AND all conditions specified in the readiness gates have status equal to "True" More info: https://git.k8s.io/enhancements/keps/sig-network/580-pod-readiness-gates',
      1,
    ),
  ],
  row(obj, now) {
    const spec = rec(obj.spec);
    const status = rec(obj.status);
    const conditions = arr(status.conditions);
    const containers = arr(spec.containers);
    const initSpecs = arr(spec.initContainers);
    let restarts = 0;
    let ready = 0;
    let lastRestart = 0;
    let reason = str(status.reason) || str(status.phase);
    if (conditions.some((c) => c.type === 'PodScheduled' && c.reason === 'SchedulingGated'))
      reason = 'SchedulingGated';
    const noteRestart = (cs: Rec): void => {
      restarts += num(cs.restartCount);
      const finished = Date.parse(str(rec(rec(cs.lastState).terminated).finishedAt));
      if (!Number.isNaN(finished) && finished > lastRestart) lastRestart = finished;
    };

    let initializing = false;
    const initStatuses = arr(status.initContainerStatuses);
    for (let i = 0; i < initStatuses.length; i++) {
      const cs = initStatuses[i]!;
      noteRestart(cs);
      const state = rec(cs.state);
      const terminated = isRecord(state.terminated) ? state.terminated : undefined;
      const waiting = isRecord(state.waiting) ? state.waiting : undefined;
      if (terminated && num(terminated.exitCode) === 0) continue;
      if (terminated) {
        reason = str(terminated.reason)
          ? `Init:${str(terminated.reason)}`
          : num(terminated.signal)
            ? `Init:Signal:${num(terminated.signal)}`
            : `Init:ExitCode:${num(terminated.exitCode)}`;
      } else if (waiting && str(waiting.reason) && waiting.reason !== 'PodInitializing') {
        reason = `Init:${str(waiting.reason)}`;
      } else {
        reason = `Init:${i}/${initSpecs.length}`;
      }
      initializing = true;
      break;
    }
    const initialized = conditions.some((c) => c.type === 'Initialized' && c.status === 'True');
    if (!initializing || initialized) {
      restarts = 0;
      lastRestart = 0;
      let hasRunning = false;
      const statuses = arr(status.containerStatuses);
      for (let i = statuses.length - 1; i >= 0; i--) {
        const cs = statuses[i]!;
        noteRestart(cs);
        const state = rec(cs.state);
        const waiting = isRecord(state.waiting) ? state.waiting : undefined;
        const terminated = isRecord(state.terminated) ? state.terminated : undefined;
        if (waiting && str(waiting.reason)) reason = str(waiting.reason);
        else if (terminated && str(terminated.reason)) reason = str(terminated.reason);
        else if (terminated)
          reason = num(terminated.signal)
            ? `Signal:${num(terminated.signal)}`
            : `ExitCode:${num(terminated.exitCode)}`;
        else if (cs.ready === true && isRecord(state.running)) {
          hasRunning = true;
          ready++;
        }
      }
      if (reason === 'Completed' && hasRunning) {
        reason = conditions.some((c) => c.type === 'Ready' && c.status === 'True') ? 'Running' : 'NotReady';
      }
    }
    const phase = str(status.phase);
    if (obj.metadata.deletionTimestamp && status.reason === 'NodeLost') reason = 'Unknown';
    else if (obj.metadata.deletionTimestamp && phase !== 'Succeeded' && phase !== 'Failed')
      reason = 'Terminating';

    const restartText =
      restarts !== 0 && lastRestart > 0
        ? `${restarts} (${humanDuration(now.getTime() - lastRestart)} ago)`
        : String(restarts);
    const podIP = str(arr(status.podIPs)[0]?.ip) || str(status.podIP) || '<none>';
    const gates = arr(spec.readinessGates);
    const gatesText = gates.length
      ? `${gates.filter((g) => conditions.some((c) => c.type === g.conditionType && c.status === 'True')).length}/${gates.length}`
      : '<none>';
    const cells = [
      obj.metadata.name ?? '',
      `${ready}/${containers.length}`,
      reason,
      restartText,
      since(obj.metadata.creationTimestamp, now),
      podIP,
      str(spec.nodeName) || '<none>',
      str(status.nominatedNodeName) || '<none>',
      gatesText,
    ];
    let rowConditions: RowCondition[] | undefined;
    if (phase === 'Succeeded')
      rowConditions = [
        {
          type: 'Completed',
          status: 'True',
          reason: 'Succeeded',
          message: 'The pod has completed successfully.',
        },
      ];
    if (phase === 'Failed')
      rowConditions = [{ type: 'Completed', status: 'True', reason: 'Failed', message: 'The pod failed.' }];
    return { cells, conditions: rowConditions };
  },
};

export const nodePrinter: Printer = {
  columns: [
    col('Name', NAME_DESCRIPTION, 0, 'name'),
    col('Status', 'The status of the node'),
    col('Roles', 'The roles of the node'),
    col('Age', AGE_DESCRIPTION),
    col('Version', 'Kubelet Version reported by the node.'),
    col(
      'Internal-IP',
      'List of addresses reachable to the node. Queried from cloud provider, if available.',
      1,
    ),
    col(
      'External-IP',
      'List of addresses reachable to the node. Queried from cloud provider, if available.',
      1,
    ),
    col(
      'OS-Image',
      'OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).',
      1,
    ),
    col(
      'Kernel-Version',
      "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).",
      1,
    ),
    col(
      'Container-Runtime',
      'Container runtime version reported by the node through runtime remote API (e.g. containerd://1.4.2).',
      1,
    ),
  ],
  row(obj, now) {
    const spec = rec(obj.spec);
    const status = rec(obj.status);
    const info = rec(status.nodeInfo);
    const readyCond = arr(status.conditions).find((c) => c.type === 'Ready');
    const states = readyCond ? [readyCond.status === 'True' ? 'Ready' : 'NotReady'] : ['Unknown'];
    if (spec.unschedulable === true) states.push('SchedulingDisabled');
    const roles = new Set<string>();
    for (const [k, v] of Object.entries(obj.metadata.labels ?? {})) {
      if (k.startsWith('node-role.kubernetes.io/') && k.length > 'node-role.kubernetes.io/'.length)
        roles.add(k.slice('node-role.kubernetes.io/'.length));
      else if (k === 'kubernetes.io/role' && v) roles.add(v);
    }
    const address = (type: string): string =>
      str(arr(status.addresses).find((a) => a.type === type)?.address) || '<none>';
    return {
      cells: [
        obj.metadata.name ?? '',
        states.join(','),
        roles.size ? [...roles].sort().join(',') : '<none>',
        since(obj.metadata.creationTimestamp, now),
        str(info.kubeletVersion),
        address('InternalIP'),
        address('ExternalIP'),
        str(info.osImage) || '<unknown>',
        str(info.kernelVersion) || '<unknown>',
        str(info.containerRuntimeVersion) || '<unknown>',
      ],
    };
  },
};

/** Any other kind (upstream's default table convertor): Name and Created At. */
export const defaultPrinter: Printer = {
  columns: [
    col('Name', NAME_DESCRIPTION, 0, 'name'),
    { ...col('Created At', AGE_DESCRIPTION), type: 'date' },
  ],
  row: (obj) => ({ cells: [obj.metadata.name ?? '', obj.metadata.creationTimestamp ?? ''] }),
};

export const PRINTERS: Record<string, Printer> = { Pod: podPrinter, Node: nodePrinter, Event: eventPrinter };
