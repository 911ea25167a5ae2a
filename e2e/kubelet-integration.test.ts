/**
 * The kubelet-sim against the real apiserver and the real cri-shim (in-process, real sockets):
 * registration, running a pod, exec through the kubelet (and through the apiserver), deletion,
 * and a kubelet restart that must not duplicate the sandbox.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startApiServer, type ApiServer } from '../apiserver/server.js';
import { bwrapWorks } from '../cri-shim/isolation.js';
import { startCriShim, type CriShim } from '../cri-shim/server.js';
import {
  ADMIN_GROUP,
  APISERVER_AUDIENCE,
  APISERVER_USER,
  KUBELET_AUDIENCE,
  mintToken,
  NODES_GROUP,
} from '../shared/auth/tokens.js';
import { connectRuntime, type RuntimeServiceClient } from '../shared/cri/client.js';
import type { Node, Pod } from '../shared/api/core-v1.js';
import { startKubelet, type RunningKubelet } from '../kubelet-sim/kubelet.js';
import { waitFor } from '../shared/test-support/poll.js';
import { wsExec } from '../shared/test-support/ws-exec.js';

// With bubblewrap the container sees the image's files at /root; without it (isolation none) the
// process runs on the host with the container's root directory as its working directory.
const ISOLATION = bwrapWorks() ? 'bwrap' : 'none';
const LS_ROOT = ISOLATION === 'bwrap' ? 'command=ls&command=/root' : 'command=ls';

const key = randomBytes(32);
const admin = mintToken(key, { name: 'admin', groups: [ADMIN_GROUP] }, { audience: APISERVER_AUDIENCE });
const nodeToken = mintToken(
  key,
  { name: 'system:node:node-1', groups: [NODES_GROUP] },
  { audience: APISERVER_AUDIENCE },
);
const asApiserver = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });

let tmp: string;
let shim: CriShim;
let apiserver: ApiServer;
let cri: RuntimeServiceClient;
let kubelet: RunningKubelet | undefined;

async function startNode(): Promise<RunningKubelet> {
  kubelet = await startKubelet({
    apiserver: apiserver.url,
    token: nodeToken,
    apiserverTokenKeys: { hs256: key },
    nodeName: 'node-1',
    address: '127.0.0.1',
    port: 0,
    runtime: shim.endpoint,
    log: () => {},
    watchTimeoutSeconds: 5,
  });
  return kubelet;
}

async function api<T>(method: string, p: string, body?: unknown): Promise<{ code: number; body: T }> {
  const res = await fetch(apiserver.url + p, {
    method,
    headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { code: res.status, body: (await res.json()) as T };
}

const getPod = async (name: string): Promise<Pod> =>
  (await api<Pod>('GET', `/api/v1/namespaces/default/pods/${name}`)).body;

async function sandboxesOf(name: string): Promise<number> {
  const { items } = await cri.listPodSandbox({
    filter: { label_selector: { 'io.kubernetes.pod.name': name } },
  });
  return items.length;
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-sim-it-'));
  shim = await startCriShim({
    listen: `unix://${tmp}/cri.sock`,
    root: path.join(tmp, 'root'),
    isolation: ISOLATION,
    log: () => {},
  });
  apiserver = await startApiServer({ port: 0, signingKey: key, log: () => {}, kubeletTimeoutMs: 10_000 });
  cri = connectRuntime(shim.endpoint);
  await startNode();
});

afterAll(async () => {
  await kubelet?.close();
  cri?.close();
  await apiserver?.close();
  await shim?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('kubelet-sim with the real apiserver and cri-shim', () => {
  it('registers node-1 with its real port and the runtime version', async () => {
    const { code, body: node } = await api<Node>('GET', '/api/v1/nodes/node-1');
    expect(code).toBe(200);
    expect(node.status!.daemonEndpoints!.kubeletEndpoint!.Port).toBe(kubelet!.port);
    expect(node.status!.addresses).toContainEqual({ type: 'InternalIP', address: '127.0.0.1' });
    expect(node.status!.conditions!.find((c) => c.type === 'Ready')).toMatchObject({ status: 'True' });
    expect(node.status!.nodeInfo!.containerRuntimeVersion).toMatch(/^kexec-cri-shim:\/\//);
  });

  it(`runs a pod bound to it, and exec \`ls /root\` (isolation ${ISOLATION}) through the kubelet shows the image files`, async () => {
    const created = await api<Pod>('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'demo', namespace: 'default' },
      spec: { nodeName: 'node-1', containers: [{ name: 'main', image: 'busybox' }] },
    });
    expect(created.code).toBe(201);
    const pod = await waitFor('demo Running', async () => {
      const p = await getPod('demo');
      return p.status?.phase === 'Running' && p;
    });
    expect(pod.status!.containerStatuses).toEqual([
      expect.objectContaining({
        name: 'main',
        ready: true,
        restartCount: 0,
        started: true,
        containerID: expect.stringMatching(/^kexec-cri-shim:\/\/.+/),
        state: { running: { startedAt: expect.any(String) } },
      }),
    ]);

    const r = await wsExec(`${kubelet!.url}/exec/default/demo/main?${LS_ROOT}&output=1&error=1`, {
      headers: { Authorization: `Bearer ${asApiserver}` },
    });
    expect(r.protocol).toBe('v5.channel.k8s.io');
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['README.txt', 'hello.sh', 'notes']);
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
  });

  it('the whole chain: exec through the apiserver reaches the container via this kubelet', async () => {
    const r = await wsExec(
      `${apiserver.url}/api/v1/namespaces/default/pods/demo/exec?${LS_ROOT}&stdout=true&stderr=true`,
      { headers: { Authorization: `Bearer ${admin}` } },
    );
    expect(r.stdout.split('\n').filter(Boolean).sort()).toEqual(['README.txt', 'hello.sh', 'notes']);
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
  });

  it('a pod with an unknown image waits with the pull error (the cri-shim has no such template)', async () => {
    await api('POST', '/api/v1/namespaces/default/pods', {
      metadata: { name: 'bad', namespace: 'default' },
      spec: { nodeName: 'node-1', containers: [{ name: 'main', image: 'no-such-image' }] },
    });
    const st = await waitFor('bad waiting', async () => (await getPod('bad')).status?.containerStatuses?.[0]);
    // ErrImagePull at the failed pull, ImagePullBackOff while the back-off runs (upstream
    // alternates them): a slow poll may first see either.
    expect(st.state.waiting!.reason).toMatch(/^(ErrImagePull|ImagePullBackOff)$/);
    expect(st.state.waiting!.message).toMatch(/no-such-image/);
    expect((await api('DELETE', '/api/v1/namespaces/default/pods/bad')).code).toBe(200);
  });

  it('a restarted kubelet does not duplicate the sandbox', async () => {
    expect(await sandboxesOf('demo')).toBe(1);
    await kubelet!.close();
    const k = await startNode();
    await k.syncLoop.nextRelist();
    await k.workers.drain();
    expect(await sandboxesOf('demo')).toBe(1);
    expect((await getPod('demo')).status!.phase).toBe('Running');
  });

  it('deleting the pod removes its sandbox', async () => {
    expect((await api('DELETE', '/api/v1/namespaces/default/pods/demo')).code).toBe(200);
    await waitFor('demo sandbox removed', async () => (await sandboxesOf('demo')) === 0);
  });
});
