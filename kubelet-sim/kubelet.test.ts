import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Pod } from '../shared/api/core-v1.js';
import { startKubelet, type KubeletOptions, type RunningKubelet } from './kubelet.js';
import { FakeApiServer } from './test-support/fake-apiserver.js';
import { FakeRuntime } from './test-support/fake-runtime.js';
import { waitFor } from '../shared/test-support/poll.js';

const key = randomBytes(32);
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function setup(opts: { watch?: boolean } = {}): Promise<{ api: FakeApiServer; runtime: FakeRuntime }> {
  const api = await new FakeApiServer(opts).start();
  cleanups.push(() => api.close());
  return { api, runtime: new FakeRuntime() };
}

async function kubelet(
  api: FakeApiServer,
  runtime: FakeRuntime,
  node = 'node-1',
  extra: Partial<KubeletOptions> = {},
): Promise<RunningKubelet> {
  const k = await startKubelet({
    ...extra,
    apiserver: api.url,
    token: 'node-token',
    apiserverTokenKeys: { hs256: key },
    nodeName: node,
    address: '127.0.0.1',
    port: 0,
    runtime,
    log: () => {},
    watchTimeoutSeconds: 5,
    relistIntervalMs: 100,
  });
  cleanups.push(() => k.close());
  return k;
}

function demoPod(name = 'demo', image = 'busybox', nodeName = 'node-1'): Pod {
  return {
    metadata: { name, namespace: 'default', labels: { app: name } },
    spec: {
      nodeName,
      containers: [
        {
          name: 'c',
          image,
          command: ['sleep'],
          args: ['infinity'],
          env: [{ name: 'A', value: '1' }],
          workingDir: '/root',
        },
      ],
    },
  };
}

describe('kubelet: node registration', () => {
  it('registers its Node with the real port, addresses, Ready and nodeInfo, using its own token', async () => {
    const { api, runtime } = await setup();
    const k = await kubelet(api, runtime);
    const node = api.nodes.get('node-1')!;
    expect(node.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(k.port);
    expect(k.url).toBe(`http://127.0.0.1:${k.port}`);
    expect(node.status!.addresses).toEqual([
      { type: 'InternalIP', address: '127.0.0.1' },
      { type: 'Hostname', address: 'node-1' },
    ]);
    expect(node.status!.conditions).toEqual([
      expect.objectContaining({ type: 'Ready', status: 'True', reason: 'KubeletReady' }),
    ]);
    expect(node.status!.nodeInfo).toMatchObject({ containerRuntimeVersion: 'fake-runtime://0.0.1' });
    expect(new Set(api.tokens)).toEqual(new Set(['node-token']));
  });

  it('adopts an existing Node after a restart and records the new port', async () => {
    const { api, runtime } = await setup();
    const first = await kubelet(api, runtime);
    await first.close();
    const second = await kubelet(api, runtime);
    expect(second.port).not.toBe(first.port);
    expect(api.nodes.get('node-1')!.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(second.port);
  });
});

describe('kubelet: pods', () => {
  it('runs a pod bound to it and reports Running with containerStatuses', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    const created = api.createPod(demoPod());
    api.createPod(demoPod('elsewhere', 'busybox', 'node-2'));
    const pod = await waitFor('pod Running', () => {
      const p = api.getPod('default', 'demo')!;
      return p.status?.phase === 'Running' && p;
    });
    const uid = created.metadata.uid!;
    const sandbox = [...runtime.sandboxes.values()];
    expect(sandbox).toHaveLength(1); // not the pod of node-2
    expect(sandbox[0]!.labels).toMatchObject({
      app: 'demo',
      'io.kubernetes.pod.name': 'demo',
      'io.kubernetes.pod.namespace': 'default',
      'io.kubernetes.pod.uid': uid,
    });
    expect(runtime.calls.find((c) => c.method === 'RunPodSandbox')!.req).toMatchObject({
      config: { metadata: { name: 'demo', namespace: 'default', uid }, hostname: 'demo' },
    });
    expect(runtime.calls.find((c) => c.method === 'CreateContainer')!.req).toMatchObject({
      config: {
        metadata: { name: 'c' },
        // The image as the runtime answered ImageStatus (its ID), the user's name beside it.
        image: { image: 'sha256:busybox', user_specified_image: 'busybox' },
        command: ['sleep'],
        args: ['infinity'],
        working_dir: '/root',
        envs: [{ key: 'A', value: '1' }],
        labels: { 'io.kubernetes.container.name': 'c', 'io.kubernetes.pod.uid': uid },
      },
    });
    const [cid] = [...runtime.containers.keys()];
    expect(pod.status).toMatchObject({
      phase: 'Running',
      hostIP: '127.0.0.1',
      // The sandbox's IP (PodSandboxStatus), not the node's.
      podIP: '10.88.0.1',
      podIPs: [{ ip: '10.88.0.1' }],
      containerStatuses: [
        {
          name: 'c',
          image: 'busybox',
          imageID: 'sha256:busybox',
          // The runtime's name from CRI Version is the scheme (containerd://… upstream).
          containerID: `fake-runtime://${cid}`,
          ready: true,
          restartCount: 0,
          started: true,
          state: { running: { startedAt: expect.stringMatching(/Z$/) } },
        },
      ],
    });
    expect(pod.status!.startTime).toBeDefined();
    const conds = Object.fromEntries(pod.status!.conditions!.map((c) => [c.type, c.status]));
    expect(conds).toMatchObject({
      Ready: 'True',
      ContainersReady: 'True',
      PodScheduled: 'True',
      Initialized: 'True',
    });
  });

  it('pulls an image it lacks: ErrImagePull, then ImagePullBackOff, then a pull after the back-off', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime, 'node-1', { imagePullBackoffInitialMs: 3000, imagePullBackoffMaxMs: 10_000 });
    api.createPod(demoPod('bad', 'registry.example/no-such-image:1.0'));
    // Every status written, in order (ErrImagePull may last milliseconds: the sandbox's PLEG event
    // syncs the pod again at once, inside the back-off).
    const waiting = () =>
      api
        .podVersions('default', 'bad')
        .map((p) => p.status?.containerStatuses?.[0]?.state.waiting)
        .filter((w) => w?.reason === 'ErrImagePull' || w?.reason === 'ImagePullBackOff');
    await waitFor('waiting ImagePullBackOff', () => waiting().some((w) => w!.reason === 'ImagePullBackOff'));
    const [first] = waiting();
    expect(first!.reason).toBe('ErrImagePull');
    expect(first!.message).toContain('"registry.example/no-such-image:1.0": not found');
    expect(waiting().find((w) => w!.reason === 'ImagePullBackOff')!.message).toBe(
      'Back-off pulling image "registry.example/no-such-image:1.0"',
    );
    // No pull while backing off (3 s: far beyond a sync under load); the registry gets the image;
    // the next pull, after the back-off, works.
    expect(runtime.count('PullImage')).toBe(1);
    expect(api.getPod('default', 'bad')!.status!.phase).toBe('Pending');
    runtime.pullable.add('registry.example/no-such-image:1.0');
    await waitFor('pod Running', () => api.getPod('default', 'bad')!.status?.phase === 'Running', 10_000);
    expect(runtime.count('PullImage')).toBe(2);
  });

  it.each([
    ['busybox', undefined, 1],
    ['busybox:latest', undefined, 1],
    ['busybox:1.36', undefined, 0],
    ['busybox', 'IfNotPresent', 0],
    ['busybox:1.36', 'Always', 1],
  ])('image %s with pull policy %s: %i pulls of a present image', async (image, policy, pulls) => {
    const { api, runtime } = await setup();
    runtime.images.add(image);
    await kubelet(api, runtime);
    const pod = demoPod('p', image);
    pod.spec.containers[0]!.imagePullPolicy = policy;
    api.createPod(pod);
    await waitFor('pod Running', () => api.getPod('default', 'p')!.status?.phase === 'Running');
    expect(runtime.count('PullImage')).toBe(pulls);
    expect(runtime.count('ImageStatus')).toBe(1);
  });

  it('never pulls with policy Never: ErrImageNeverPull for an absent image', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    const pod = demoPod('never', 'absent:1');
    pod.spec.containers[0]!.imagePullPolicy = 'Never';
    api.createPod(pod);
    const st = await waitFor('waiting', () => api.getPod('default', 'never')!.status?.containerStatuses?.[0]);
    expect(st.state).toEqual({
      waiting: {
        reason: 'ErrImageNeverPull',
        message: 'Container image "absent:1" is not present with pull policy of Never',
      },
    });
    expect(runtime.count('PullImage')).toBe(0);
  });

  it('refuses an image name that is no reference: InvalidImageName, nothing asked of the runtime', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    api.createPod(demoPod('invalid', 'Not A/Valid::Name'));
    const st = await waitFor(
      'waiting',
      () => api.getPod('default', 'invalid')!.status?.containerStatuses?.[0],
    );
    expect(st.state.waiting!.reason).toBe('InvalidImageName');
    expect(runtime.count('ImageStatus') + runtime.count('PullImage')).toBe(0);
  });

  it('asks for the node namespaces of a hostNetwork/hostPID/hostIPC pod and reports the node IP as the pod IP', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    const host = demoPod('host');
    Object.assign(host.spec, { hostNetwork: true, hostPID: true, hostIPC: true });
    api.createPod(host);
    api.createPod(demoPod('own'));
    await waitFor('both Running', () =>
      ['host', 'own'].every((n) => api.getPod('default', n)!.status?.phase === 'Running'),
    );
    const sandboxReq = (name: string) =>
      runtime.calls.find(
        (c) =>
          c.method === 'RunPodSandbox' &&
          (c.req as { config: { metadata: { name: string } } }).config.metadata.name === name,
      )!.req;
    expect((sandboxReq('host') as { config: { hostname?: string } }).config.hostname).toBeUndefined();
    expect(sandboxReq('host')).toMatchObject({
      config: {
        linux: { security_context: { namespace_options: { network: 'NODE', pid: 'NODE', ipc: 'NODE' } } },
      },
    });
    expect(sandboxReq('own')).toMatchObject({
      config: {
        linux: { security_context: { namespace_options: { network: 'POD', pid: 'CONTAINER', ipc: 'POD' } } },
      },
    });
    expect(api.getPod('default', 'host')!.status).toMatchObject({
      podIP: '127.0.0.1',
      podIPs: [{ ip: '127.0.0.1' }],
    });
    expect(api.getPod('default', 'own')!.status!.podIP).toMatch(/^10\.88\.0\.\d+$/);
  });

  it('gives each pod a log directory under --pod-logs-dir, made before the sandbox and removed with the pod', async () => {
    const { api, runtime } = await setup();
    const logs = fs.mkdtempSync(path.join(os.tmpdir(), 'pod-logs-'));
    cleanups.push(() => fs.rmSync(logs, { recursive: true, force: true }));
    await kubelet(api, runtime, 'node-1', { podLogsDir: logs });
    const uid = api.createPod(demoPod()).metadata.uid!;
    await waitFor('pod Running', () => api.getPod('default', 'demo')!.status?.phase === 'Running');
    const dir = path.join(logs, `default_demo_${uid}`);
    expect(runtime.calls.find((c) => c.method === 'RunPodSandbox')!.req).toMatchObject({
      config: { log_directory: dir },
    });
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    api.deletePod('default', 'demo');
    await waitFor('log directory removed', () => !fs.existsSync(dir));
  });

  it("removes a pod's sandboxes that are not ready besides the one it runs in", async () => {
    const { api, runtime } = await setup();
    const first = await kubelet(api, runtime);
    api.createPod(demoPod());
    await waitFor('pod Running', () => api.getPod('default', 'demo')!.status?.phase === 'Running');
    await first.close();
    // What a crashed kubelet can leave: a second sandbox of the pod, stopped.
    const [ready] = [...runtime.sandboxes.values()];
    const { pod_sandbox_id: stale } = await runtime.runPodSandbox({
      config: {
        metadata: { name: 'demo', namespace: 'default', uid: ready!.metadata!.uid },
        labels: ready!.labels,
      },
    });
    await runtime.stopPodSandbox({ pod_sandbox_id: stale });
    const second = await kubelet(api, runtime);
    await second.syncLoop.nextRelist();
    await waitFor('stale sandbox removed', () => !runtime.sandboxes.has(stale));
    expect([...runtime.sandboxes.keys()]).toEqual([ready!.id]);
  });

  it('removes the sandbox of a pod deleted from the apiserver', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    api.createPod(demoPod());
    await waitFor('pod Running', () => api.getPod('default', 'demo')!.status?.phase === 'Running');
    api.deletePod('default', 'demo');
    await waitFor('sandbox removed', () => runtime.sandboxes.size === 0);
    expect(runtime.count('StopPodSandbox')).toBe(1);
    expect(runtime.count('RemovePodSandbox')).toBe(1);
    expect(runtime.containers.size).toBe(0);
  });

  it('a restarted kubelet adopts the running pod instead of duplicating it, and cleans up pods deleted meanwhile', async () => {
    const { api, runtime } = await setup();
    const first = await kubelet(api, runtime);
    api.createPod(demoPod('keep'));
    api.createPod(demoPod('gone'));
    await waitFor('both Running', () =>
      ['keep', 'gone'].every((n) => api.getPod('default', n)!.status?.phase === 'Running'),
    );
    await first.close();
    // Pods stay in the runtime while the kubelet is down.
    expect(runtime.sandboxes.size).toBe(2);
    api.deletePod('default', 'gone');
    runtime.calls.length = 0;

    const second = await kubelet(api, runtime);
    await second.syncLoop.nextRelist();
    await second.workers.drain();
    await waitFor('orphan removed', () => runtime.sandboxes.size === 1);
    expect(runtime.count('RunPodSandbox')).toBe(0);
    expect(runtime.count('CreateContainer')).toBe(0);
    expect([...runtime.sandboxes.values()][0]!.labels['io.kubernetes.pod.name']).toBe('keep');
  });

  it('falls back to relisting when the apiserver cannot watch', async () => {
    const { api, runtime } = await setup({ watch: false });
    const k = await kubelet(api, runtime);
    await k.syncLoop.nextRelist();
    api.createPod(demoPod());
    await waitFor('pod Running', () => api.getPod('default', 'demo')!.status?.phase === 'Running');
    api.deletePod('default', 'demo');
    await waitFor('sandbox removed', () => runtime.sandboxes.size === 0);
    expect(api.requests.filter((r) => r.includes('watch=true'))).toHaveLength(1);
  });

  it('stops cleanly: no apiserver requests after close', async () => {
    const { api, runtime } = await setup();
    const k = await kubelet(api, runtime);
    api.createPod(demoPod());
    await waitFor('pod Running', () => api.getPod('default', 'demo')!.status?.phase === 'Running');
    await k.close();
    const n = api.requests.length;
    api.createPod(demoPod('later'));
    await new Promise((r) => setTimeout(r, 200)); // a window in which a leaked loop would act
    expect(api.requests.length).toBe(n);
    expect(runtime.sandboxes.size).toBe(1); // pods survive the kubelet
  });
});
