/**
 * The kubelet's connection to the apiserver: a handful of REST calls over plain `fetch`, each
 * with the node's bearer token and a deadline, and a watch that yields events line by line.
 *
 * Plays the part of the kubelet's client-go clientset (`kubeClient`) and the reflector behind
 * `pkg/kubelet/config/apiserver.go`. Deliberately small: JSON only, no retries here (the callers
 * loop), no informer cache.
 */
import type { CoreEvent } from '../shared/events.js';
import { StatusError, failureStatus, type Status } from '../shared/status.js';
import type { KubeObject, List, Node, Pod, WatchEvent } from '../shared/api/core-v1.js';
import type { SubjectAccessReviewSpec } from './kubelet-authorizer.js';
import { userAgent } from '../shared/user-agent.js';

const USER_AGENT = userAgent('kubelet');

/** coordination.k8s.io/v1 Lease, as the kubelet writes it (node-lease.ts). */
export interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string };
}

const LEASES = '/apis/coordination.k8s.io/v1';

export interface ApiServerClientOptions {
  /** e.g. `http://127.0.0.1:6443`. */
  url: string;
  /** Bearer token (the node's own, audience `kexec-lab-apiserver`). */
  token: string;
  /** Deadline of each non-watch request. Default 10 s. */
  requestTimeoutMs?: number;
  /** Longest single watch event line accepted. Default 4 MiB. */
  maxWatchLineBytes?: number;
}

export class ApiServerClient {
  private readonly base: string;
  private readonly timeoutMs: number;
  private readonly maxLine: number;

  constructor(private readonly opts: ApiServerClientOptions) {
    this.base = opts.url.replace(/\/+$/, '');
    this.timeoutMs = opts.requestTimeoutMs ?? 10_000;
    this.maxLine = opts.maxWatchLineBytes ?? 4 * 1024 * 1024;
  }

  getNode(name: string, signal?: AbortSignal): Promise<Node> {
    return this.json('GET', `/api/v1/nodes/${enc(name)}`, undefined, signal);
  }

  createNode(node: Node, signal?: AbortSignal): Promise<Node> {
    return this.json('POST', '/api/v1/nodes', node, signal);
  }

  updateNodeStatus(node: Node, signal?: AbortSignal): Promise<Node> {
    return this.json('PUT', `/api/v1/nodes/${enc(node.metadata.name!)}/status`, node, signal);
  }

  getLease(namespace: string, name: string, signal?: AbortSignal): Promise<Lease> {
    return this.json('GET', `${LEASES}/namespaces/${enc(namespace)}/leases/${enc(name)}`, undefined, signal);
  }

  createLease(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    return this.json('POST', `${LEASES}/namespaces/${enc(lease.metadata.namespace!)}/leases`, lease, signal);
  }

  updateLease(lease: Lease, signal?: AbortSignal): Promise<Lease> {
    const { namespace, name } = lease.metadata;
    return this.json('PUT', `${LEASES}/namespaces/${enc(namespace!)}/leases/${enc(name!)}`, lease, signal);
  }

  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<Pod> {
    return this.json('GET', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, undefined, signal);
  }

  updatePodStatus(pod: Pod, signal?: AbortSignal): Promise<Pod> {
    const { namespace, name } = pod.metadata;
    return this.json('PUT', `/api/v1/namespaces/${enc(namespace!)}/pods/${enc(name!)}/status`, pod, signal);
  }

  deletePod(namespace: string, name: string, uid: string, signal?: AbortSignal): Promise<unknown> {
    // gracePeriodSeconds 0 plus a UID precondition, as the kubelet's status manager does once a
    // terminating pod's containers are gone: never delete a newer pod that reused the name.
    const body = { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 0, preconditions: { uid } };
    return this.json('DELETE', `/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, body, signal);
  }

  createEvent(namespace: string, event: CoreEvent): Promise<unknown> {
    return this.json('POST', `/api/v1/namespaces/${enc(namespace)}/events`, event);
  }

  patchEvent(namespace: string, name: string, patch: Partial<CoreEvent>): Promise<unknown> {
    const path = `/api/v1/namespaces/${enc(namespace)}/events/${enc(name)}`;
    return this.json('PATCH', path, patch, undefined, 'application/merge-patch+json');
  }

  /** Asks whether a user may do something (the kubelet's webhook authorizer); the review's status. */
  async createSubjectAccessReview(
    spec: SubjectAccessReviewSpec,
  ): Promise<{ allowed?: boolean; reason?: string }> {
    const review = { kind: 'SubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', spec };
    const res = await this.json<{ status?: { allowed?: boolean; reason?: string } }>(
      'POST',
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      review,
    );
    return res.status ?? {};
  }

  /** Pods bound to `nodeName` (fieldSelector spec.nodeName), across all namespaces. */
  listPods(nodeName: string, signal?: AbortSignal): Promise<List<Pod>> {
    const q = new URLSearchParams({ fieldSelector: `spec.nodeName=${nodeName}` });
    return this.json('GET', `/api/v1/pods?${q}`, undefined, signal);
  }

  /**
   * Watches pods bound to `nodeName` from `resourceVersion`. Yields events until the server ends
   * the stream (after `timeoutSeconds`), the signal aborts, or the connection fails (throws).
   * A server that cannot watch answers with a non-200 Status: that throws a StatusError.
   */
  async *watchPods(
    nodeName: string,
    resourceVersion: string | undefined,
    timeoutSeconds: number,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent<Pod>> {
    const q = new URLSearchParams({
      fieldSelector: `spec.nodeName=${nodeName}`,
      watch: 'true',
      timeoutSeconds: String(timeoutSeconds),
    });
    if (resourceVersion) q.set('resourceVersion', resourceVersion);
    const res = await fetch(`${this.base}/api/v1/pods?${q}`, {
      headers: this.headers(),
      signal,
    });
    if (res.status !== 200 || !res.body) throw await toStatusError(res);
    let pending = '';
    const decoder = new TextDecoder();
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      pending += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, nl).trim();
        pending = pending.slice(nl + 1);
        if (line) yield parseEvent(line);
      }
      if (pending.length > this.maxLine) throw new Error(`watch event longer than ${this.maxLine} bytes`);
    }
    if (pending.trim()) yield parseEvent(pending.trim());
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return {
      Authorization: `Bearer ${this.opts.token}`,
      Accept: 'application/json',
      'User-Agent': USER_AGENT,
      ...extra,
    };
  }

  private async json<T>(
    method: string,
    path: string,
    body?: unknown,
    signal?: AbortSignal,
    contentType = 'application/json',
  ): Promise<T> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const res = await fetch(this.base + path, {
      method,
      headers: this.headers(body === undefined ? {} : { 'Content-Type': contentType }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    if (res.status < 200 || res.status >= 300) throw await toStatusError(res);
    return (await res.json()) as T;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

function parseEvent(line: string): WatchEvent<Pod> {
  const ev = JSON.parse(line) as WatchEvent<Pod>;
  if (!ev || typeof ev.type !== 'string' || typeof ev.object !== 'object') {
    throw new Error(`malformed watch event: ${line.slice(0, 200)}`);
  }
  return ev;
}

/** The apiserver's Status for a failed call (or a synthesised one when the body is not a Status). */
async function toStatusError(res: Response): Promise<StatusError> {
  const text = await res.text().catch(() => '');
  try {
    const s = JSON.parse(text) as Status;
    if (s && s.kind === 'Status') return new StatusError({ ...s, code: s.code ?? res.status });
  } catch {
    // not JSON: fall through
  }
  return new StatusError(failureStatus(res.status, text.slice(0, 500) || `HTTP ${res.status}`));
}

/** True when `err` is the apiserver answering with this HTTP code. */
export function isApiStatus(err: unknown, code: number): err is StatusError {
  return err instanceof StatusError && err.code === code;
}
