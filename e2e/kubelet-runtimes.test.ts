/**
 * The kubelet-sim as a kubelet on a real CRI (issue 14), judged on each runtime the lab can use
 * (e2e/support/runtimes.ts: the cri-shim and a real containerd), one-node lab each, real kubectl:
 * the runtime's name in node info and container IDs; pod IPs from the sandbox (containerd: the
 * CNI bridge's 10.x, never the node's; the node's for hostNetwork); `kubectl logs` from the
 * sandbox's log directory under `--pod-logs-dir`; an image no registry has → ErrImagePull, then
 * ImagePullBackOff; a kubelet-sim restart that keeps the pod in its one sandbox (asked over CRI),
 * serving exec; and a deleted pod leaving no sandbox and no log directory.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { connectRuntime, KubernetesPodNameLabel, type RuntimeServiceClient } from '../shared/cri/client.js';
import { launchSpecOf, restart, type Restarted } from './support/faults.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { holdsWithin } from '../shared/test-support/poll.js';

import { E2E_RUNTIMES, LOCAL_IMAGE_POLICY } from './support/runtimes.js';

const podYaml = (name: string, command: string[], extra: Record<string, string> = {}) =>
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      nodeName: 'node-1',
      ...(extra.hostNetwork ? { hostNetwork: true } : {}),
      containers: [
        {
          name: 'main',
          image: extra.image ?? 'busybox',
          imagePullPolicy: extra.imagePullPolicy ?? LOCAL_IMAGE_POLICY,
          command,
        },
      ],
    },
  });

describe.each(E2E_RUNTIMES)('the kubelet-sim on %s', (runtime) => {
  let dir = '';
  let lab: Lab;
  let k: Kubectl;
  let cri: RuntimeServiceClient;
  const restarted: Restarted[] = [];
  const logs: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `kubelet-${runtime}-`));
    lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, runtime, log: (l) => logs.push(l) });
    k = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
    cri = connectRuntime(lab.nodes[0]!.criEndpoint);
  }, 120_000);

  afterAll(async () => {
    cri?.close();
    await Promise.all(restarted.map((r) => r.stop()));
    await lab?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  async function ok(args: string[], input?: string): Promise<string> {
    const res = await k.run(args, input);
    if (res.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
    return res.stdout.toString();
  }
  const jsonpath = (name: string, p: string) => ok(['get', 'pod', name, '-o', `jsonpath={${p}}`]);
  const sandboxesOf = async (name: string) =>
    (await cri.listPodSandbox({ filter: { label_selector: { [KubernetesPodNameLabel]: name } } })).items;

  it("names the runtime in the node's info and in container IDs; the pod IP is the sandbox's", async () => {
    const runtimeName = runtime === 'containerd' ? 'containerd' : 'kexec-cri-shim';
    const nodeInfo = await ok([
      'get',
      'node',
      'node-1',
      '-o',
      'jsonpath={.status.nodeInfo.containerRuntimeVersion}',
    ]);
    expect(nodeInfo).toMatch(new RegExp(`^${runtimeName}://`));
    expect(await jsonpath('demo', '.status.containerStatuses[0].containerID')).toMatch(
      new RegExp(`^${runtimeName}://[0-9a-f]{64}$`),
    );
    expect(await jsonpath('demo', '.status.containerStatuses[0].imageID')).toMatch(/^sha256:[0-9a-f]{64}$/);
    const [sandbox] = await sandboxesOf('demo');
    const { status } = await cri.podSandboxStatus({ pod_sandbox_id: sandbox!.id });
    const podIP = await jsonpath('demo', '.status.podIP');
    expect(podIP).toBe(status!.network!.ip);
    if (runtime === 'containerd') {
      // The CNI bridge's subnet, not the node's address.
      expect(podIP).toMatch(/^10\.(2[0-4]\d)\.\d+\.\d+$/);
      expect(podIP).not.toBe(await jsonpath('demo', '.status.hostIP'));
      const inPod = await ok(['exec', 'demo', '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
      expect(inPod).toContain(`inet ${podIP}/24`);
    }
  });

  it('gives a hostNetwork pod the node IP and the node network', async () => {
    await ok(['apply', '-f', '-'], podYaml('hostnet', ['sleep', '3600'], { hostNetwork: 'true' }));
    await ok(['wait', '--for=condition=Ready', 'pod/hostnet', '--timeout=40s']);
    expect(await jsonpath('hostnet', '.status.podIP')).toBe(await jsonpath('hostnet', '.status.hostIP'));
    // The node's loopback is the pod's: the host's interfaces are all there.
    const ifaces = await ok(['exec', 'hostnet', '--', 'cat', '/proc/net/dev']);
    const hostIfaces = fs.readFileSync('/proc/net/dev', 'utf8');
    const names = (t: string) => [...t.matchAll(/^\s*([^:\s]+):/gm)].map((m) => m[1]).sort();
    expect(names(ifaces)).toEqual(names(hostIfaces));
    await ok(['delete', 'pod', 'hostnet', '--timeout=30s']);
  });

  it('serves kubectl logs from the log directory it gave the sandbox', async () => {
    const mark = randomBytes(4).toString('hex');
    await ok(
      ['apply', '-f', '-'],
      podYaml('talker', ['sh', '-c', `echo hello ${mark}; echo oops >&2; sleep 3600`]),
    );
    await ok(['wait', '--for=condition=Ready', 'pod/talker', '--timeout=40s']);
    const uid = await jsonpath('talker', '.metadata.uid');
    const logDir = path.join(lab.dir, 'pod-logs', `default_talker_${uid}`);
    const text = async () => (await k.run(['logs', 'talker'])).stdout.toString();
    const deadline = Date.now() + 10_000;
    let got = await text();
    while (!got.includes('oops') && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      got = await text();
    }
    expect(got.split('\n').sort()).toEqual(['', `hello ${mark}`, 'oops']);
    expect(fs.readFileSync(path.join(logDir, 'main', '0.log'), 'utf8')).toContain(`stdout F hello ${mark}`);
    await ok(['delete', 'pod', 'talker', '--timeout=30s']);
    expect(await holdsWithin(() => !fs.existsSync(logDir), 10_000)).toBe(true);
    expect(await sandboxesOf('talker')).toEqual([]);
  });

  it('reports an image no registry has as ErrImagePull, then ImagePullBackOff', async () => {
    // Every status the kubelet writes, as a watch sees it (the first may last milliseconds: the
    // sandbox's PLEG event syncs the pod again, within the pull back-off).
    const watch = k.start([
      'get',
      'pods',
      '--watch',
      '-o',
      'jsonpath={.metadata.name} {.status.containerStatuses[0].state.waiting.reason}{"\\n"}',
    ]);
    let seen = '';
    watch.stdout!.on('data', (c: Buffer) => (seen += c.toString()));
    try {
      // A registry on loopback where nothing listens: the pull fails at once, on every runtime.
      await ok(
        ['apply', '-f', '-'],
        podYaml('nopull', ['sleep', '1'], {
          image: '127.0.0.1:1/kexec/absent:1.0',
          imagePullPolicy: 'Always',
        }),
      );
      const reasons = () => new Set([...seen.matchAll(/^nopull (\S+)$/gm)].map((m) => m[1]));
      expect(await holdsWithin(() => reasons().has('ImagePullBackOff'), 20_000)).toBe(true);
      expect([...reasons()].sort()).toEqual(['ErrImagePull', 'ImagePullBackOff']);
    } finally {
      watch.kill();
    }
    expect(await jsonpath('nopull', '.status.containerStatuses[0].state.waiting.message')).toBe(
      'Back-off pulling image "127.0.0.1:1/kexec/absent:1.0"',
    );
    expect(await jsonpath('nopull', '.status.phase')).toBe('Pending');
    await ok(['delete', 'pod', 'nopull', '--timeout=30s']);
  }, 40_000);

  it('keeps a pod in its one sandbox across a kubelet-sim restart, exec still working', async () => {
    await ok(['apply', '-f', '-'], podYaml('steady', ['sleep', '3600']));
    await ok(['wait', '--for=condition=Ready', 'pod/steady', '--timeout=40s']);
    const cid = await jsonpath('steady', '.status.containerStatuses[0].containerID');
    const [before] = await sandboxesOf('steady');

    const pid = lab.pids['kubelet-sim']!;
    const spec = launchSpecOf(pid);
    process.kill(pid, 'SIGTERM');
    expect(await holdsWithin(() => !fs.existsSync(`/proc/${pid}`), 15_000)).toBe(true);
    restarted.push(await restart(spec, (l) => logs.push(`[kubelet-sim again] ${l}`)));

    // A fresh exec through the new kubelet proves it serves; the pod is the same one.
    const deadline = Date.now() + 20_000;
    let exec = await k.run(['exec', 'steady', '--', 'echo', 'still here']);
    while (exec.code !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      exec = await k.run(['exec', 'steady', '--', 'echo', 'still here']);
    }
    expect({ code: exec.code, out: exec.stdout.toString() }).toEqual({ code: 0, out: 'still here\n' });
    expect(await jsonpath('steady', '.status.containerStatuses[0].containerID')).toBe(cid);
    expect(await jsonpath('steady', '.status.containerStatuses[0].restartCount')).toBe('0');
    expect((await sandboxesOf('steady')).map((s) => s.id)).toEqual([before!.id]);
  }, 59_000);
});
