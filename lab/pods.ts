/**
 * The lab's demo pod, created through the API like any client would, and a bounded wait for it
 * to run.
 */
import { apiJson, type ClientConfig } from '../kexec/client.js';
import { ApiStatusError } from '../kexec/errors.js';
import type { Pod } from '../shared/api/core-v1.js';
import { errorMessage } from '../shared/logging.js';

export interface DemoPodOptions {
  namespace?: string;
  name?: string;
  nodeName?: string;
  image?: string;
}

export function demoPod(o: DemoPodOptions = {}) {
  const name = o.name ?? 'demo';
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: o.namespace ?? 'default', labels: { app: 'kexec-lab-demo' } },
    spec: {
      nodeName: o.nodeName ?? 'node-1',
      // The lab's images are on the node already (cri-shim templates, or imported into containerd):
      // never pulled, where `busybox` (tag latest) would default to Always and need a registry.
      containers: [{ name, image: o.image ?? 'busybox', imagePullPolicy: 'IfNotPresent' }],
    },
  };
}

function podPath(ns: string, name?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(ns)}/pods`;
  return name ? `${base}/${encodeURIComponent(name)}` : base;
}

/** Creates the pod; an existing one with the same name is kept (AlreadyExists is not an error). */
export async function ensurePod(
  cfg: ClientConfig,
  pod: ReturnType<typeof demoPod>,
): Promise<'created' | 'exists'> {
  try {
    await apiJson(cfg, 'POST', podPath(pod.metadata.namespace), { resource: 'pods' }, pod);
    return 'created';
  } catch (err) {
    if (err instanceof ApiStatusError && err.status.reason === 'AlreadyExists') return 'exists';
    throw err;
  }
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Also retry while the apiserver is unreachable or answers 5xx (a compose start-up). */
  retryUnavailable?: boolean;
  signal?: AbortSignal;
}

/** Polls the pod until its phase is Running (bounded). A Failed or Succeeded pod fails at once. */
export async function waitForPodRunning(cfg: ClientConfig, ns: string, name: string, o: WaitOptions = {}) {
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  let last = 'not seen yet';
  for (;;) {
    o.signal?.throwIfAborted();
    let pod: Pod | undefined;
    try {
      pod = await apiJson<Pod>(cfg, 'GET', podPath(ns, name), { resource: 'pods', name });
    } catch (err) {
      const transient =
        o.retryUnavailable &&
        (!(err instanceof ApiStatusError) || err.httpCode >= 500 || err.status.reason === 'NotFound');
      if (!transient) throw err;
      last = errorMessage(err);
    }
    if (pod) {
      const phase = pod.status?.phase ?? 'Pending';
      if (phase === 'Running') return pod;
      if (phase === 'Failed' || phase === 'Succeeded') {
        throw new Error(`pod ${ns}/${name} ended (phase ${phase}) before it was Running`);
      }
      last = `phase ${phase}`;
    }
    if (Date.now() >= deadline) {
      throw new Error(`pod ${ns}/${name} was not Running after ${timeoutMs} ms (${last})`);
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 200));
  }
}

/** Retries `fn` while the apiserver is unreachable or 5xx, bounded (compose services start in any order). */
export async function retryUntilReachable<T>(
  fn: () => Promise<T>,
  timeoutMs = 60_000,
  intervalMs = 500,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      const transient = !(err instanceof ApiStatusError) || err.httpCode >= 500;
      if (!transient || Date.now() >= deadline) throw err;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
