/**
 * `/portForward/{ns}/{pod}` against the fake runtime: CRI PortForward is asked with the sandbox
 * and the ports, and the upgrade is proxied to the URL it returns — here a streaming server on
 * loopback that speaks the v4 WebSocket port-forward protocol (shared/portforward) and splices to a
 * TCP echo server. SPDY POSTs take the same path; the backend's refusal is what the client sees.
 */
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import grpc from '@grpc/grpc-js';
import { APISERVER_USER, KUBELET_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import { openPortForwardTunnel } from '../shared/portforward/websocket-client.js';
import { acceptPortForwardSession } from '../shared/portforward/websocket-server.js';
import {
  closeServer,
  listen,
  parseResponse,
  rawExchange,
  upgradeRequest,
} from '../shared/test-support/loopback.js';
import { failureStatus, writeStatusToSocket } from '../shared/status.js';
import { KubeletServer } from './server.js';
import { FakeRuntime, grpcError } from './test-support/fake-runtime.js';

const key = randomBytes(32);
const token = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
const AUTH = { Authorization: `Bearer ${token}` };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A TCP server in "the pod" that answers every chunk with `echo:` + chunk. */
async function echoServer(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const srv = net.createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (d: Buffer) => s.write(Buffer.concat([Buffer.from('echo:'), d])));
  });
  const port = await listen(srv);
  cleanups.push(() => closeServer(srv, sockets));
  return port;
}

interface Backend {
  base: string;
  seen: { method: string; url: string; authorization?: string; ports: number[] }[];
}

/** The runtime's streaming server: `/portforward/{token}`, the ports from the CRI request. */
async function streamingServer(runtime: FakeRuntime): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const srv = http.createServer((_req, res) => res.writeHead(400).end());
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  srv.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const call = [...runtime.calls].reverse().find((c) => c.method === 'PortForward');
    const ports = (call?.req as { port?: number[] }).port ?? [];
    seen.push({ method: req.method!, url: req.url!, authorization: req.headers.authorization, ports });
    if (req.method !== 'GET') {
      return writeStatusToSocket(socket, failureStatus(400, 'unable to upgrade: SPDY is not supported here'));
    }
    const session = acceptPortForwardSession(req, socket, head, ports);
    for (const st of session?.streams ?? []) {
      const target = net.connect(st.port, '127.0.0.1');
      st.data.pipe(target).pipe(st.data);
      target.on('error', (e) => st.error.write(e.message));
    }
  });
  const port = await listen(srv);
  cleanups.push(() => closeServer(srv, sockets));
  runtime.streamingBase = `http://127.0.0.1:${port}`;
  return { base: runtime.streamingBase, seen };
}

async function setup(): Promise<{ kubelet: string; port: number; runtime: FakeRuntime; sandbox: string }> {
  const runtime = new FakeRuntime();
  const server = new KubeletServer({ apiserverTokenKeys: { hs256: key }, runtime, log: () => {} });
  const port = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  const labels = {
    'io.kubernetes.pod.name': 'demo',
    'io.kubernetes.pod.namespace': 'default',
    'io.kubernetes.pod.uid': 'uid-demo',
  };
  const { pod_sandbox_id } = await runtime.runPodSandbox({
    config: { metadata: { name: 'demo', namespace: 'default', uid: 'uid-demo' }, labels },
  });
  runtime.calls.length = 0;
  return { kubelet: `http://127.0.0.1:${port}`, port, runtime, sandbox: pod_sandbox_id };
}

function roundTrip(tunnel: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    tunnel.once('data', (d: Buffer) => resolve(d.toString()));
    tunnel.once('error', reject);
    tunnel.write(text);
  });
}

async function upgrade(port: number, path: string, headers: Record<string, string> = AUTH, method = 'GET') {
  const { all } = await rawExchange(port, upgradeRequest(path, headers, method));
  return parseResponse(await all);
}

describe('kubelet /portForward', () => {
  it('asks CRI PortForward for the sandbox and ports, and carries a v4 WebSocket session there', async () => {
    const { kubelet, runtime, sandbox } = await setup();
    const backend = await streamingServer(runtime);
    const target = await echoServer();
    const tunnel = await openPortForwardTunnel({
      url: `${kubelet}/portForward/default/demo?port=${target}`,
      port: target,
      headers: AUTH,
    });
    cleanups.push(() => void tunnel.destroy());
    expect(await roundTrip(tunnel, 'hello')).toBe('echo:hello');
    expect(await roundTrip(tunnel, 'again')).toBe('echo:again');
    expect(runtime.calls.find((c) => c.method === 'PortForward')!.req).toEqual({
      pod_sandbox_id: sandbox,
      port: [target],
    });
    // The runtime's URL as given (its own query only), and never our credentials.
    expect(backend.seen).toEqual([
      { method: 'GET', url: '/portforward/tok2', authorization: undefined, ports: [target] },
    ]);
  });

  it('several ports in one request, comma-separated as the apiserver sends them, and the uid form', async () => {
    const { kubelet, runtime } = await setup();
    await streamingServer(runtime);
    const a = await echoServer();
    const b = await echoServer();
    const tunnel = await openPortForwardTunnel({
      url: `${kubelet}/portForward/default/demo/uid-demo?port=${a},${b}`,
      port: b,
      headers: AUTH,
    });
    cleanups.push(() => void tunnel.destroy());
    expect(await roundTrip(tunnel, 'to b')).toBe('echo:to b');
    expect((runtime.calls.find((c) => c.method === 'PortForward')!.req as { port: number[] }).port).toEqual([
      a,
      b,
    ]);
  });

  it('a SPDY POST needs no port query and is proxied; the backend refusal reaches the client', async () => {
    const { port, runtime } = await setup();
    const backend = await streamingServer(runtime);
    const res = await upgrade(
      port,
      '/portForward/default/demo',
      { ...AUTH, Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'portforward.k8s.io' },
      'POST',
    );
    expect(res.code).toBe(400);
    expect(JSON.parse(res.body).message).toBe('unable to upgrade: SPDY is not supported here');
    expect(backend.seen).toEqual([expect.objectContaining({ method: 'POST', ports: [] })]);
  });

  it.each([
    ['/portForward/default/demo', 400, 'query parameter "port" is required'],
    ['/portForward/default/demo?port=0', 400, 'port "0" must be 1-65535'],
    ['/portForward/default/demo?port=http', 400, 'unable to parse "http" as a port'],
    ['/portForward/default/demo?port=', 400, 'query parameter "port" cannot be empty'],
    ['/portForward/default/ghost?port=80', 404, 'pod does not exist'],
    ['/portForward/default/demo/other-uid?port=80', 404, 'pod does not exist'],
    ['/portForward/Default/demo?port=80', 400, 'invalid namespace name "Default"'],
  ])('%s → %s before any streaming token is spent', async (path, code, message) => {
    const { port, runtime } = await setup();
    const res = await upgrade(port, path, { ...AUTH, Upgrade: 'websocket' });
    expect(res.code).toBe(code);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code, message });
    expect(runtime.count('PortForward')).toBe(0);
  });

  it('CRI errors become Status: a sandbox that is not ready is 400, UNIMPLEMENTED is 500', async () => {
    const { port, runtime, sandbox } = await setup();
    runtime.failNext.set(
      'PortForward',
      grpcError(grpc.status.UNIMPLEMENTED, 'PortForward is not implemented'),
    );
    const unimpl = await upgrade(port, '/portForward/default/demo?port=80');
    expect(unimpl.code).toBe(500);
    expect(JSON.parse(unimpl.body)).toMatchObject({
      reason: 'InternalError',
      message: 'PortForward is not implemented',
    });
    runtime.sandboxes.get(sandbox)!.state = 'SANDBOX_NOTREADY';
    const notReady = await upgrade(port, '/portForward/default/demo?port=80');
    expect(notReady.code).toBe(400);
    expect(JSON.parse(notReady.body).message).toBe(`sandbox ${sandbox} is not ready`);
  });

  it('is authenticated and refuses plain requests', async () => {
    const { port, kubelet, runtime } = await setup();
    expect((await upgrade(port, '/portForward/default/demo?port=80', {})).code).toBe(401);
    const plain = await fetch(`${kubelet}/portForward/default/demo?port=80`, { headers: AUTH });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { message: string }).message).toBe('Upgrade request required');
    expect(runtime.count('PortForward')).toBe(0);
  });
});
