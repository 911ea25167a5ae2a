/**
 * `--pod-running-timeout`: exec and attach wait (bounded) for a Pending pod to leave Pending
 * before they connect, as kubectl does (`polymorphichelpers.GetFirstPod` with the timeout,
 * default 1m, "timed out waiting for the condition").
 */
import type { ClientConfig } from './client.js';
import type { Pod } from '../shared/api/core-v1.js';
import { getPod } from './pod.js';

export const DEFAULT_POD_RUNNING_TIMEOUT_MS = 60_000;
const POLL_MS = 500;

export async function getRunningPod(
  cfg: ClientConfig,
  namespace: string,
  name: string,
  timeoutMs = DEFAULT_POD_RUNNING_TIMEOUT_MS,
): Promise<Pod> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pod = await getPod(cfg, namespace, name);
    if (pod.status?.phase !== 'Pending') return pod;
    if (Date.now() + POLL_MS > deadline) {
      throw new Error(`timed out waiting for the condition (pod ${namespace}/${name} is Pending)`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
