/**
 * Writes pod statuses to the apiserver (`PUT pods/{name}/status`), only when they change.
 *
 * Mirrors kubelet `pkg/kubelet/status/status_manager.go` (SetPodStatus, syncPod,
 * needsUpdate): a per-UID cache of the last status written, conflicts retried on a fresh copy,
 * a pod that is gone (404) or was replaced (another UID) is left alone.
 */
import type { Pod, PodStatus } from '../shared/api/core-v1.js';
import { isApiStatus, type ApiServerClient } from './apiserver-client.js';

const CONFLICT_RETRIES = 3;

export class StatusManager {
  private readonly written = new Map<string, string>();

  constructor(private readonly api: ApiServerClient) {}

  /** Writes `status` for `pod` unless the apiserver (or our last write) already has it. */
  async setPodStatus(pod: Pod, status: PodStatus, signal?: AbortSignal): Promise<void> {
    const uid = pod.metadata.uid!;
    const wanted = JSON.stringify(status);
    if (this.written.get(uid) === wanted || JSON.stringify(pod.status ?? {}) === wanted) {
      this.written.set(uid, wanted);
      return;
    }
    let current = pod;
    for (let attempt = 0; ; attempt++) {
      try {
        await this.api.updatePodStatus({ ...current, status }, signal);
        this.written.set(uid, wanted);
        return;
      } catch (err) {
        if (isApiStatus(err, 404)) return; // deleted meanwhile
        if (!isApiStatus(err, 409) || attempt >= CONFLICT_RETRIES) throw err;
      }
      current = await this.api.getPod(pod.metadata.namespace ?? 'default', pod.metadata.name!, signal);
      if (current.metadata.uid !== uid) return; // a new pod took the name
    }
  }

  /** The status most recently written for this UID (for tests and debugging). */
  lastWritten(uid: string): PodStatus | undefined {
    const s = this.written.get(uid);
    return s === undefined ? undefined : (JSON.parse(s) as PodStatus);
  }

  forget(uid: string): void {
    this.written.delete(uid);
  }
}
