/**
 * The kubelet-sim's newer paths against the real apiserver and the real cri-shim (in-process, real
 * sockets, real container processes): container logs (direct and via `pods/log`), port-forward
 * (direct and via `pods/portforward`), restart policies, and a cri-shim restart (it comes back
 * empty) that the kubelet repairs by recreating the pod exactly once.
 */
import fs from 'node:fs';
import net from 'node:net';
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
import { openPortForwardTunnel } from '../shared/portforward/websocket-client.js';
import { closeServer, listen } from '../shared/test-support/loopback.js';
import type { Container, Pod } from '../shared/api/core-v1.js';
import { startKubelet, type RunningKubelet } from '../kubelet-sim/kubelet.js';
import { waitFor } from '../shared/test-support/poll.js';

const ISOLATION = bwrapWorks() ? 'bwrap' : 'none';
const key = randomBytes(32);
const admin = mintToken(key, { name: 'admin', groups: [ADMIN_GROUP] }, { audience: APISERVER_AUDIENCE });
const nodeToken = mintToken(
  key,
  { name: 'system:node:node-1', groups: [NODES_GROUP] },
  { audience: APISERVER_AUDIENCE },
);
const asApiserver = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
const KUBELET_AUTH = { Authorization: `Bearer ${asApiserver}` };
const ADMIN_AUTH = { Authorization: `Bearer ${admin}` };

let tmp: string;
let socket: string;
let shim: CriShim;
let apiserver: ApiServer;
let cri: RuntimeServiceClient;
let kubelet: RunningKubelet;

async function startShim(root: string): Promise<CriShim> {
  return startCriShim({
    listen: `unix://${socket}`,
    root: path.join(tmp, root),
    isolation: ISOLATION,
    log: () => {},
  });
}

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-sim-node-'));
  socket = path.join(tmp, 'cri.sock');
  shim = await startShim('root-1');
  apiserver = await startApiServer({ port: 0, signingKey: key, log: () => {}, kubeletTimeoutMs: 10_000 });
  cri = connectRuntime(shim.endpoint);
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
    plegRelistPeriodMs: 100,
    restartBackoffInitialMs: 300,
    restartBackoffMaxMs: 600,
    logPollIntervalMs: 100,
  });
});

afterAll(async () => {
  await kubelet?.close();
  cri?.close();
  await apiserver?.close();
  await shim?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function api<T>(method: string, p: string, body?: unknown): Promise<{ code: number; body: T }> {
  const res = await fetch(apiserver.url + p, {
    method,
    headers: { ...ADMIN_AUTH, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { code: res.status, body: (await res.json()) as T };
}

const getPod = async (name: string): Promise<Pod> =>
  (await api<Pod>('GET', `/api/v1/namespaces/default/pods/${name}`)).body;

async function createPod(
  name: string,
  c: Partial<Container>,
  restartPolicy?: string,
  hostNetwork?: boolean,
): Promise<void> {
  const res = await api('POST', '/api/v1/namespaces/default/pods', {
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: 'node-1',
      ...(restartPolicy ? { restartPolicy } : {}),
      ...(hostNetwork ? { hostNetwork } : {}),
      containers: [{ name: 'main', image: 'busybox', ...c }],
    },
  });
  expect(res.code).toBe(201);
}

async function deletePod(name: string): Promise<void> {
  await api('DELETE', `/api/v1/namespaces/default/pods/${name}`);
}

const sh = (script: string): Partial<Container> => ({ command: ['sh', '-c', script] });

describe('container logs through the kubelet and the apiserver', () => {
  beforeAll(async () => {
    await createPod(
      'talker',
      sh('echo hello; echo oops >&2; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done'),
    );
    await waitFor('talker Running', async () => (await getPod('talker')).status?.phase === 'Running');
  });
  afterAll(() => deletePod('talker'));

  it('tailLines and timestamps, direct and via pods/log', async () => {
    const direct = await waitFor('two ticks logged', async () => {
      const r = await fetch(`${kubelet.url}/containerLogs/default/talker/main`, { headers: KUBELET_AUTH });
      const t = await r.text();
      return r.status === 200 && t.includes('tick 2') && t.includes('oops') && t;
    });
    // stdout and stderr are two pipes: where the stderr line lands among stdout's is not fixed.
    const lines = direct.split('\n');
    expect(lines).toContain('oops');
    expect(lines.filter((l) => l !== 'oops').slice(0, 3)).toEqual(['hello', 'tick 1', 'tick 2']);
    const viaApi = await fetch(
      `${apiserver.url}/api/v1/namespaces/default/pods/talker/log?tailLines=1&timestamps=true`,
      { headers: ADMIN_AUTH },
    );
    expect(viaApi.status).toBe(200);
    expect(await viaApi.text()).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z tick \d+\n$/);
    const limited = await fetch(`${apiserver.url}/api/v1/namespaces/default/pods/talker/log?limitBytes=5`, {
      headers: ADMIN_AUTH,
    });
    expect(await limited.text()).toBe('hello');
  });

  it('follow via pods/log streams lines written after the request; closing the client stops the follower', async () => {
    const ac = new AbortController();
    const res = await fetch(
      `${apiserver.url}/api/v1/namespaces/default/pods/talker/log?follow=true&tailLines=1`,
      {
        headers: ADMIN_AUTH,
        signal: ac.signal,
      },
    );
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    const dec = new TextDecoder();
    while ((text.match(/tick/g) ?? []).length < 4) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`log ended early: ${text}`);
      text += dec.decode(value, { stream: true });
    }
    // The first four (a chunk may already carry the next line too).
    const ticks = [...text.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])).slice(0, 4);
    // One line from the tail, then three the container wrote after the request, in order.
    expect(ticks.slice(1)).toEqual([ticks[0]! + 1, ticks[0]! + 2, ticks[0]! + 3]);
    expect(kubelet.server.activeLogStreams).toBe(1);
    ac.abort();
    await waitFor('the kubelet follower stopped', () => kubelet.server.activeLogStreams === 0, 5000);
  });

  it('an unknown container is 404 from the kubelet', async () => {
    const r = await fetch(`${kubelet.url}/containerLogs/default/talker/nope`, { headers: KUBELET_AUTH });
    expect(r.status).toBe(404);
    expect(((await r.json()) as { message: string }).message).toBe(
      'container "nope" not found in pod "talker"',
    );
  });
});

describe('port-forward through the kubelet and the apiserver to the real cri-shim', () => {
  let target: number;
  let srv: net.Server;
  const sockets = new Set<net.Socket>();
  beforeAll(async () => {
    // A hostNetwork pod shares the host's network namespace, as upstream: a host listener is "in
    // the pod" (other pods have their own loopback: e2e/pod-isolation.test.ts).
    srv = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('data', (d: Buffer) => s.write(`pong:${d.toString()}`));
    });
    target = await listen(srv);
    await createPod('web', {}, undefined, true);
    await waitFor('web Running', async () => (await getPod('web')).status?.phase === 'Running');
  });
  afterAll(async () => {
    await closeServer(srv, sockets);
    await deletePod('web');
  });

  const roundTrip = (t: NodeJS.ReadWriteStream, s: string): Promise<string> =>
    new Promise((resolve, reject) => {
      t.once('data', (d: Buffer) => resolve(d.toString()));
      t.once('error', reject);
      t.write(s);
    });

  it('direct to the kubelet (WebSocket v4, ?port=)', async () => {
    const tunnel = await openPortForwardTunnel({
      url: `${kubelet.url}/portForward/default/web?port=${target}`,
      port: target,
      headers: KUBELET_AUTH,
    });
    try {
      expect(await roundTrip(tunnel, 'ping')).toBe('pong:ping');
    } finally {
      tunnel.destroy();
    }
  });

  it('the whole chain: pods/portforward?ports= through the apiserver', async () => {
    const tunnel = await openPortForwardTunnel({
      url: `${apiserver.url}/api/v1/namespaces/default/pods/web/portforward?ports=${target}`,
      port: target,
      portParam: 'ports',
      headers: ADMIN_AUTH,
    });
    try {
      expect(await roundTrip(tunnel, 'a')).toBe('pong:a');
      expect(await roundTrip(tunnel, 'b')).toBe('pong:b');
    } finally {
      tunnel.destroy();
    }
  });
});

describe('restartPolicy with real container processes', () => {
  it("Always: `sh -c 'exit 1'` restarts, restartCount grows, lastState is the failure", async () => {
    await createPod('crasher', sh('echo attempt; exit 1'));
    const st = await waitFor(
      'restartCount ≥ 2',
      async () => {
        const s = (await getPod('crasher')).status?.containerStatuses?.[0];
        return s && s.restartCount >= 2 && s;
      },
      20_000,
    );
    expect(st.lastState).toMatchObject({ terminated: { exitCode: 1, reason: 'Error' } });
    expect((await getPod('crasher')).status!.phase).toBe('Running');
    // Each instance has its own log; `previous` reads the one before the newest.
    const prev = await fetch(`${kubelet.url}/containerLogs/default/crasher/main?previous=true`, {
      headers: KUBELET_AUTH,
    });
    expect(await prev.text()).toBe('attempt\n');
    await deletePod('crasher');
  });

  it('OnFailure: exit 0 is not restarted and the pod Succeeded', async () => {
    await createPod('oneshot', sh('exit 0'), 'OnFailure');
    const p = await waitFor('Succeeded', async () => {
      const x = await getPod('oneshot');
      return x.status?.phase === 'Succeeded' && x;
    });
    expect(p.status!.containerStatuses![0]).toMatchObject({
      restartCount: 0,
      state: { terminated: { exitCode: 0, reason: 'Completed' } },
    });
    await deletePod('oneshot');
  });

  it('Never: exit 1 stays terminated and the pod is Failed', async () => {
    await createPod('once', sh('exit 1'), 'Never');
    const p = await waitFor('Failed', async () => {
      const x = await getPod('once');
      return x.status?.phase === 'Failed' && x;
    });
    expect(p.status!.containerStatuses![0]).toMatchObject({
      restartCount: 0,
      state: {
        terminated: {
          exitCode: 1,
          reason: 'Error',
          startedAt: expect.any(String),
          finishedAt: expect.any(String),
        },
      },
    });
    const relists = kubelet.pleg.relistCount;
    await waitFor('three PLEG relists', () => kubelet.pleg.relistCount >= relists + 3);
    const { containers } = await cri.listContainers({
      filter: { label_selector: { 'io.kubernetes.pod.name': 'once' } },
    });
    expect(containers).toHaveLength(1);
    await deletePod('once');
  });
});

describe('a restarted cri-shim (it starts empty)', () => {
  it('the kubelet recreates the pod exactly once', async () => {
    await createPod('phoenix', {});
    await waitFor('phoenix Running', async () => (await getPod('phoenix')).status?.phase === 'Running');
    await shim.close();
    shim = await startShim('root-2');
    const sandboxes = async (): Promise<number> =>
      (await cri.listPodSandbox({ filter: { label_selector: { 'io.kubernetes.pod.name': 'phoenix' } } }))
        .items.length;
    await waitFor('phoenix sandbox recreated', async () => (await sandboxes()) === 1, 20_000);
    const st = await waitFor('phoenix running again', async () => {
      const s = (await getPod('phoenix')).status?.containerStatuses?.[0];
      return s?.state.running && s.restartCount === 1 && s;
    });
    expect(st.ready).toBe(true);
    const relists = kubelet.pleg.relistCount;
    await waitFor('three PLEG relists', () => kubelet.pleg.relistCount >= relists + 3);
    await kubelet.workers.drain();
    expect(await sandboxes()).toBe(1);
    const { containers } = await cri.listContainers({
      filter: { label_selector: { 'io.kubernetes.pod.name': 'phoenix' } },
    });
    expect(containers).toHaveLength(1);
    await deletePod('phoenix');
  });
});
