/**
 * The slice of core/v1 the apiserver stores and serves: ObjectMeta, Pod, Node, lists and watch
 * events, in their Kubernetes JSON shapes.
 *
 * Mirrors k8s.io/api `core/v1/types.go` and apimachinery `pkg/apis/meta/v1/types.go`, but only the
 * fields this lab reads; every other field a client sends is stored and returned untouched.
 */
import type { Status } from '../../shared/status.js';

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
  [field: string]: unknown;
}

/** Any stored API object: kind, apiVersion and metadata are known, the rest is passed through. */
export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

export interface Container {
  name?: string;
  image?: string;
  [field: string]: unknown;
}

export interface Pod extends KubeObject {
  spec?: {
    nodeName?: string;
    containers?: Container[];
    initContainers?: Container[];
    ephemeralContainers?: Container[];
    [field: string]: unknown;
  };
  status?: { phase?: string; [field: string]: unknown };
}

export interface NodeAddress {
  type: string;
  address: string;
}

export interface Node extends KubeObject {
  spec?: { unschedulable?: boolean; [field: string]: unknown };
  status?: {
    addresses?: NodeAddress[];
    daemonEndpoints?: { kubeletEndpoint?: { Port?: number } };
    [field: string]: unknown;
  };
}

export interface KubeList {
  kind: string;
  apiVersion: 'v1';
  metadata: { resourceVersion: string };
  items: KubeObject[];
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'ERROR' | 'BOOKMARK';

export interface WatchEvent {
  type: WatchEventType;
  object: KubeObject | Status;
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep equality of JSON values, ignoring key order (apimachinery's semantic DeepEqual, roughly). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => jsonEqual(v, b[i]))
    );
  }
  if (!isRecord(a) || !isRecord(b)) return false;
  const ka = Object.keys(a).filter((k) => a[k] !== undefined);
  const kb = Object.keys(b).filter((k) => b[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => jsonEqual(a[k], b[k]));
}
