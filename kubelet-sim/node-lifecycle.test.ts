/**
 * Node depth against the fake apiserver and fake runtime: the node heartbeat, restart policy with
 * back-off (driven by the PLEG noticing exits), terminal phases, and a runtime that lost all
 * its state. Back-off and periods are shortened; every wait polls with a deadline.
 */
import { randomBytes } from 'node:crypto';
import type { ContainerStatus, Pod } from '../shared/api/core-v1.js';
import { Backoff } from './backoff.js';
import { goDuration } from './kuberuntime-manager.js';
import { startKubelet, type KubeletOptions, type RunningKubelet } from './kubelet.js';
import { GenericPLEG, type PodLifecycleEvent } from './pleg.js';
import { FakeApiServer } from './test-support/fake-apiserver.js';
import { FakeRuntime } from './test-support/fake-runtime.js';
import { waitFor } from '../shared/test-support/poll.js';

const key = randomBytes(32);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(
  extra: Partial<KubeletOptions> = {},
): Promise<{ api: FakeApiServer; runtime: FakeRuntime; k: RunningKubelet }> {
  const api = await new FakeApiServer().start();
  cleanups.push(() => api.close());
  const runtime = new FakeRuntime();
  const k = await startKubelet({
    apiserver: api.url,
    token: 'node-token',
    apiserverTokenKeys: { hs256: key },
    nodeName: 'node-1',
    port: 0,
    runtime,
    log: () => {},
    watchTimeoutSeconds: 30,
    plegRelistPeriodMs: 50,
    restartBackoffInitialMs: 400,
    restartBackoffMaxMs: 800,
    ...extra,
  });
  cleanups.push(() => k.close());
  return { api, runtime, k };
}

function pod(name: string, restartPolicy?: 'Always' | 'OnFailure' | 'Never'): Pod {
  return {
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: 'node-1',
      ...(restartPolicy ? { restartPolicy } : {}),
      containers: [{ name: 'c', image: 'busybox' }],
    },
  };
}

const statusOf = (api: FakeApiServer, name: string): ContainerStatus | undefined =>
  api.getPod('default', name)?.status?.containerStatuses?.[0];

/** The running instance of container `c` of the pod, once there is one with this attempt. */
async function runningAttempt(runtime: FakeRuntime, name: string, attempt: number): Promise<string> {
  return waitFor(
    `attempt ${attempt} of ${name} running`,
    () =>
      runtime
        .containersOf(name, 'c')
        .find((c) => c.state === 'CONTAINER_RUNNING' && c.metadata?.attempt === attempt)?.id,
  );
}

describe('node heartbeat', () => {
  it('posts the Ready condition with a fresh lastHeartbeatTime every period', async () => {
    const { api } = await setup({ nodeStatusUpdateMs: 100 });
    const ready = () => api.nodes.get('node-1')!.status!.conditions!.find((c) => c.type === 'Ready')!;
    const first = ready();
    const puts = () => api.requests.filter((r) => r === 'PUT /api/v1/nodes/node-1/status').length;
    const before = puts();
    await waitFor('three more status updates', () => puts() >= before + 3, 5000);
    // RFC 3339 has whole seconds: within the deadline the stamp moves on, the transition stays.
    const later = await waitFor(
      'a later heartbeat',
      () => Date.parse(ready().lastHeartbeatTime!) > Date.parse(first.lastHeartbeatTime!) && ready(),
      5000,
    );
    expect(later.lastTransitionTime).toBe(first.lastTransitionTime);
    expect(later).toMatchObject({ status: 'True', reason: 'KubeletReady' });
  });

  // Issue 13: `kubectl describe node` read no Lease ("Failed to get lease").
  it('creates its Lease in kube-node-lease, owned by the Node, and renews it', async () => {
    const { api } = await setup({ nodeLeaseRenewMs: 100 });
    const lease = () => api.leases.get('kube-node-lease/node-1');
    const first = await waitFor('the lease', () => lease(), 5000);
    expect(first).toMatchObject({
      metadata: {
        name: 'node-1',
        namespace: 'kube-node-lease',
        ownerReferences: [
          { apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: api.nodes.get('node-1')!.metadata.uid },
        ],
      },
      spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 },
    });
    const firstRenew = first.spec!.renewTime!;
    expect(firstRenew).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    await waitFor('a renewal', () => lease()!.spec!.renewTime! > firstRenew, 5000);
    expect(
      api.requests.filter((r) =>
        r.startsWith('PUT /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-1'),
      ).length,
    ).toBeGreaterThan(0);
    // The node status carries what describe node divides by.
    const status = api.nodes.get('node-1')!.status!;
    expect(status.allocatable).toEqual(status.capacity);
    expect(status.capacity).toMatchObject({
      cpu: expect.stringMatching(/^\d+$/),
      memory: expect.stringMatching(/^\d+Ki$/),
      pods: '110',
    });
  });
});

describe('restartPolicy', () => {
  it('Always: a container that exits is started again, with back-off, restartCount and lastState', async () => {
    const { api, runtime } = await setup();
    const created = api.createPod(pod('always'));
    const uid = created.metadata.uid!;
    const first = await runningAttempt(runtime, 'always', 0);
    runtime.exit(first, 1);
    // The first restart is immediate.
    const second = await runningAttempt(runtime, 'always', 1);
    const st1 = await waitFor(
      'restartCount 1',
      () => statusOf(api, 'always')?.restartCount === 1 && statusOf(api, 'always'),
    );
    expect(st1).toMatchObject({
      ready: true,
      state: { running: {} },
      lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: `fake-runtime://${first}` } },
    });
    expect(runtime.calls.filter((c) => c.method === 'CreateContainer').map((c) => c.req)).toEqual([
      expect.objectContaining({
        config: expect.objectContaining({ metadata: { name: 'c', attempt: 0 }, log_path: 'c/0.log' }),
      }),
      expect.objectContaining({
        config: expect.objectContaining({ metadata: { name: 'c', attempt: 1 }, log_path: 'c/1.log' }),
      }),
    ]);

    // The second exit backs off (400 ms): CrashLoopBackOff, phase stays Running.
    runtime.exit(second, 2);
    const waiting = await waitFor('CrashLoopBackOff', () => {
      const s = statusOf(api, 'always');
      return s?.state.waiting?.reason === 'CrashLoopBackOff' && s;
    });
    expect(waiting).toMatchObject({
      restartCount: 1,
      ready: false,
      state: {
        waiting: { message: `back-off 400ms restarting failed container=c pod=always_default(${uid})` },
      },
      lastState: { terminated: { exitCode: 2, reason: 'Error', containerID: `fake-runtime://${second}` } },
    });
    expect(api.getPod('default', 'always')!.status!.phase).toBe('Running');
    await runningAttempt(runtime, 'always', 2);
    await waitFor('restartCount 2', () => statusOf(api, 'always')?.restartCount === 2);
    // Only the newest instance and the one before it are kept.
    expect(runtime.containersOf('always', 'c').map((c) => c.metadata?.attempt)).toEqual([1, 2]);
  });

  it('OnFailure: restarts after a failure, not after success (then Succeeded)', async () => {
    const { api, runtime, k } = await setup();
    api.createPod(pod('onfail', 'OnFailure'));
    runtime.exit(await runningAttempt(runtime, 'onfail', 0), 3);
    const again = await runningAttempt(runtime, 'onfail', 1);
    runtime.exit(again, 0);
    const p = await waitFor('Succeeded', () => {
      const x = api.getPod('default', 'onfail')!;
      return x.status?.phase === 'Succeeded' && x;
    });
    expect(p.status!.containerStatuses![0]).toMatchObject({
      restartCount: 1,
      state: { terminated: { exitCode: 0, reason: 'Completed' } },
      lastState: { terminated: { exitCode: 3, reason: 'Error' } },
    });
    const relists = k.pleg.relistCount;
    await waitFor('three PLEG relists', () => k.pleg.relistCount >= relists + 3);
    expect(runtime.count('CreateContainer')).toBe(2);
  });

  it('Never: the container stays terminated and the pod is Failed', async () => {
    const { api, runtime, k } = await setup();
    api.createPod(pod('never', 'Never'));
    runtime.exit(await runningAttempt(runtime, 'never', 0), 1);
    const p = await waitFor('Failed', () => {
      const x = api.getPod('default', 'never')!;
      return x.status?.phase === 'Failed' && x;
    });
    expect(p.status!.containerStatuses![0]).toMatchObject({
      restartCount: 0,
      ready: false,
      state: {
        terminated: {
          exitCode: 1,
          reason: 'Error',
          startedAt: expect.any(String),
          finishedAt: expect.any(String),
        },
      },
      lastState: {},
    });
    const relists = k.pleg.relistCount;
    await waitFor('three PLEG relists', () => k.pleg.relistCount >= relists + 3);
    expect(runtime.count('CreateContainer')).toBe(1);
  });
});

describe('runtime lost its state (a restarted cri-shim starts empty)', () => {
  it('recreates the pod once: one new sandbox, restart count carried on', async () => {
    const { api, runtime, k } = await setup();
    api.createPod(pod('survivor'));
    await runningAttempt(runtime, 'survivor', 0);
    await waitFor('Running', () => api.getPod('default', 'survivor')!.status?.phase === 'Running');
    runtime.sandboxes.clear();
    runtime.containers.clear();
    await runningAttempt(runtime, 'survivor', 1);
    await waitFor('restartCount 1', () => statusOf(api, 'survivor')?.restartCount === 1);
    const relists = k.pleg.relistCount;
    await waitFor('three PLEG relists', () => k.pleg.relistCount >= relists + 3);
    await k.workers.drain();
    expect(runtime.sandboxes.size).toBe(1);
    expect(runtime.count('RunPodSandbox')).toBe(2);
    expect(runtime.containersOf('survivor')).toHaveLength(1);
  });
});

describe('PLEG', () => {
  it('reports container and sandbox changes by pod UID, and nothing when nothing changed', async () => {
    const runtime = new FakeRuntime();
    const events: PodLifecycleEvent[][] = [];
    const pleg = new GenericPLEG(
      runtime,
      (e) => events.push(e),
      {},
      () => {},
    );
    const labels = { 'io.kubernetes.pod.uid': 'u1', 'io.kubernetes.pod.name': 'p' };
    const { pod_sandbox_id } = await runtime.runPodSandbox({ config: { metadata: { name: 'p' }, labels } });
    const { container_id } = await runtime.createContainer({
      pod_sandbox_id,
      config: { metadata: { name: 'c' }, image: { image: 'busybox' }, labels },
    });
    await runtime.startContainer({ container_id });
    expect(await pleg.relist()).toEqual([
      { uid: 'u1', type: 'SandboxChanged', id: pod_sandbox_id },
      { uid: 'u1', type: 'ContainerStarted', id: container_id },
    ]);
    expect(await pleg.relist()).toEqual([]);
    expect(pleg.hasReadySandbox('u1')).toBe(true);
    runtime.exit(container_id, 1);
    expect(await pleg.relist()).toEqual([{ uid: 'u1', type: 'ContainerDied', id: container_id }]);
    runtime.sandboxes.clear();
    runtime.containers.clear();
    expect(await pleg.relist()).toEqual([
      { uid: 'u1', type: 'SandboxRemoved', id: pod_sandbox_id },
      { uid: 'u1', type: 'ContainerRemoved', id: container_id },
    ]);
    expect(events.map((e) => e.length)).toEqual([2, 0, 1, 2]); // called after every relist
    expect(pleg.hasReadySandbox('u1')).toBe(false);
    expect(pleg.healthy()).toBe(true);
    expect(pleg.healthy(Date.now() + 181_000)).toBe(false);
  });
});

describe('Backoff', () => {
  it('first restart immediate, then doubling up to the maximum; an old entry starts over', () => {
    let now = 1_000_000;
    const b = new Backoff(10_000, 40_000, () => now);
    expect(b.remaining('k', now)).toBe(0);
    b.next('k', now);
    expect(b.get('k')).toBe(10_000);
    expect(b.remaining('k', now)).toBe(10_000);
    now += 4_000;
    expect(b.remaining('k', now - 4_000)).toBe(6_000);
    for (const want of [20_000, 40_000, 40_000]) {
      b.next('k', now);
      expect(b.get('k')).toBe(want);
    }
    now += 100_000;
    expect(b.remaining('k', now)).toBe(0); // unused for more than twice the maximum
    b.next('k', now);
    expect(b.get('k')).toBe(10_000);
    b.gc();
    expect(b.size).toBe(1);
    now += 80_001;
    b.gc();
    expect(b.size).toBe(0);
  });

  it('prints durations as Go does', () => {
    expect([400, 10_000, 12_500, 300_000, 330_000].map(goDuration)).toEqual([
      '400ms',
      '10s',
      '12.5s',
      '5m0s',
      '5m30s',
    ]);
  });
});
