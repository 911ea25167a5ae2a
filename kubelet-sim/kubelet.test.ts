import { randomBytes } from 'node:crypto';
import type { Pod } from '../shared/api/core-v1.js';
import { startKubelet, type RunningKubelet } from './kubelet.js';
import { FakeApiServer } from './test-support/fake-apiserver.js';
import { FakeRuntime } from './test-support/fake-runtime.js';
import { waitFor } from './test-support/wait.js';

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

async function kubelet(api: FakeApiServer, runtime: FakeRuntime, node = 'node-1'): Promise<RunningKubelet> {
  const k = await startKubelet({
    apiserver: api.url,
    token: 'node-token',
    signingKey: key,
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
        image: { image: 'busybox' },
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
      podIP: '127.0.0.1',
      containerStatuses: [
        {
          name: 'c',
          image: 'busybox',
          imageID: 'sha256:busybox',
          containerID: `kexec://${cid}`,
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

  it('reports an unknown image as waiting ErrImagePull', async () => {
    const { api, runtime } = await setup();
    await kubelet(api, runtime);
    api.createPod(demoPod('bad', 'no-such-image'));
    const st = await waitFor(
      'waiting status',
      () => api.getPod('default', 'bad')!.status?.containerStatuses?.[0],
    );
    expect(st.state).toEqual({
      waiting: { reason: 'ErrImagePull', message: 'image "no-such-image" not found' },
    });
    expect(api.getPod('default', 'bad')!.status!.phase).toBe('Pending');
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
