import { randomBytes } from 'node:crypto';
import type net from 'node:net';
import grpc from '@grpc/grpc-js';
import WebSocket, { WebSocketServer } from 'ws';
import { APISERVER_AUDIENCE, APISERVER_USER, KUBELET_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import {
  closeServer,
  fakeBackend,
  listen,
  parseResponse,
  rawExchange,
  upgradeRequest,
} from '../shared/test-support/loopback.js';
import { KubeletServer, parseStreamPath, streamOptions } from './server.js';
import { FakeRuntime, grpcError } from './test-support/fake-runtime.js';
import http from 'node:http';

const key = randomBytes(32);
const apiserverToken = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
const AUTH = { Authorization: `Bearer ${apiserverToken}` };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function kubelet(): Promise<{ port: number; runtime: FakeRuntime }> {
  const runtime = new FakeRuntime();
  const server = new KubeletServer({ apiserverTokenKeys: { hs256: key }, runtime, log: () => {} });
  const port = await server.listen(0, '127.0.0.1');
  cleanups.push(() => server.close());
  return { port, runtime };
}

/** A pod `default/demo` with a running container `c` in the fake runtime. */
async function runPod(runtime: FakeRuntime, name = 'demo', container = 'c'): Promise<string> {
  const labels = {
    'io.kubernetes.pod.name': name,
    'io.kubernetes.pod.namespace': 'default',
    'io.kubernetes.pod.uid': `uid-${name}`,
  };
  const { pod_sandbox_id } = await runtime.runPodSandbox({
    config: { metadata: { name, namespace: 'default', uid: `uid-${name}` }, labels },
  });
  const { container_id } = await runtime.createContainer({
    pod_sandbox_id,
    config: {
      metadata: { name: container },
      image: { image: 'busybox' },
      labels: { ...labels, 'io.kubernetes.container.name': container },
    },
  });
  await runtime.startContainer({ container_id });
  runtime.calls.length = 0;
  return container_id;
}

async function upgrade(port: number, path: string, headers: Record<string, string> = AUTH) {
  const { all } = await rawExchange(port, upgradeRequest(path, headers));
  return parseResponse(await all);
}

const EXEC = '/exec/default/demo/c?command=ls&command=/root&output=1&error=1';

describe('kubelet server: /healthz', () => {
  it('answers ok without credentials', async () => {
    const { port } = await kubelet();
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });
});

describe('kubelet server: authentication', () => {
  const cases: [string, Record<string, string>][] = [
    ['no token', {}],
    ['a malformed header', { Authorization: 'Basic YWRtaW46YWRtaW4=' }],
    [
      "a user's apiserver token",
      {
        Authorization: `Bearer ${mintToken(key, { name: 'admin', groups: ['system:masters'] }, { audience: APISERVER_AUDIENCE })}`,
      },
    ],
    [
      'a token signed with another key',
      {
        Authorization: `Bearer ${mintToken(randomBytes(32), { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE })}`,
      },
    ],
    [
      'an expired token',
      {
        Authorization: `Bearer ${mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE, expiresInSec: -120 })}`,
      },
    ],
  ];
  it.each(cases)('refuses %s with 401 and never asks the runtime', async (_name, headers) => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const res = await upgrade(port, EXEC, headers);
    expect(res.code).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'Unauthorized',
      code: 401,
    });
    expect(runtime.calls).toHaveLength(0);
  });

  it('refuses another identity holding a kubelet token with 403', async () => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const token = mintToken(
      key,
      { name: 'system:node:other', groups: ['system:nodes'] },
      { audience: KUBELET_AUDIENCE },
    );
    const res = await upgrade(port, EXEC, { Authorization: `Bearer ${token}` });
    expect(res.code).toBe(403);
    expect(JSON.parse(res.body).message).toBe(
      'Forbidden (user=system:node:other, verb=get, resource=nodes, subresource(s)=[proxy])',
    );
    expect(runtime.calls).toHaveLength(0);
  });
});

describe('kubelet server: paths and options', () => {
  it.each([
    '/exec/default/../etc/c?command=ls&output=1',
    '/exec/default/demo/?command=ls&output=1',
    '/exec//demo/c?command=ls&output=1',
    '/exec/default/de%2Fmo/c?command=ls&output=1',
    '/exec/default/%2e%2e/c?command=ls&output=1',
    '/exec/default/demo/c/x/y?command=ls&output=1',
    '/exec/default/demo?command=ls&output=1',
    '/attach/Default/demo/c?output=1',
    '/exec/default/demo/c?command=ls', // no stream at all
    '/exec/default/demo/c?output=1', // no command
  ])('%s → 400 before the runtime is asked', async (path) => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const res = await upgrade(port, path);
    expect(res.code).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'BadRequest', code: 400 });
    expect(runtime.calls).toHaveLength(0);
  });

  it('unknown paths are 404, other methods 405', async () => {
    const { port } = await kubelet();
    expect((await upgrade(port, '/portforward/default/demo?port=80')).code).toBe(404); // capital F only
    expect((await upgrade(port, '/run/default/demo/c')).code).toBe(404);
    const res = await fetch(`http://127.0.0.1:${port}${EXEC}`, { method: 'PUT', headers: AUTH });
    expect(res.status).toBe(405);
  });

  it('a request that is not an upgrade is refused with 400 without using a streaming token', async () => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const res = await fetch(`http://127.0.0.1:${port}${EXEC}`, { headers: AUTH });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toBe('Upgrade request required');
    expect(runtime.count('Exec')).toBe(0);
  });

  it('parses the uid form and upstream stream options', () => {
    expect(parseStreamPath('/attach/ns/p.q/0f4e-11/c')).toEqual({
      verb: 'attach',
      namespace: 'ns',
      pod: 'p.q',
      uid: '0f4e-11',
      container: 'c',
    });
    expect(parseStreamPath('/containerLogs/ns/p/c')).toBeUndefined();
    // tty drops stderr, as upstream NewOptions does
    expect(streamOptions('exec', new URLSearchParams('command=sh&tty=1&input=1&output=1&error=1'))).toEqual({
      command: ['sh'],
      tty: true,
      stdin: true,
      stdout: true,
      stderr: false,
    });
  });
});

describe('kubelet server: container lookup and CRI errors', () => {
  it('an unknown container is 404 in kubelet wording; an unknown pod likewise', async () => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const c = await upgrade(port, '/exec/default/demo/nope?command=ls&output=1');
    expect(c.code).toBe(404);
    expect(JSON.parse(c.body)).toMatchObject({ reason: 'NotFound', message: 'container not found ("nope")' });
    const p = await upgrade(port, '/exec/default/ghost/c?command=ls&output=1');
    expect(p.code).toBe(404);
    expect(JSON.parse(p.body).message).toBe('pod does not exist');
    expect(runtime.count('Exec')).toBe(0);
  });

  it('a container that is not running is not found', async () => {
    const { port, runtime } = await kubelet();
    const id = await runPod(runtime);
    runtime.containers.get(id)!.state = 'CONTAINER_EXITED';
    expect((await upgrade(port, EXEC)).code).toBe(404);
  });

  it.each([
    [
      grpc.status.RESOURCE_EXHAUSTED,
      'maximum number of in-flight requests exceeded [Retry-After:3]',
      429,
      'TooManyRequests',
    ],
    [grpc.status.FAILED_PRECONDITION, 'container is not running', 400, 'BadRequest'],
    [grpc.status.NOT_FOUND, 'container gone', 404, 'NotFound'],
    [grpc.status.UNAVAILABLE, 'runtime down', 500, 'InternalError'],
  ])('CRI code %s (%s) → HTTP %s', async (code, details, http, reason) => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    runtime.failNext.set('Exec', grpcError(code, details));
    const res = await upgrade(port, EXEC);
    expect(res.code).toBe(http);
    expect(JSON.parse(res.body)).toMatchObject({ reason, message: details, code: http });
    if (http === 429) expect(res.headers['retry-after']).toBe('3');
  });
});

describe('kubelet server: proxying to the runtime', () => {
  it('asks CRI Exec with the options and splices the upgrade to its URL, without our credentials', async () => {
    const { port, runtime } = await kubelet();
    const containerId = await runPod(runtime);
    let backendHead = '';
    const backend = await fakeBackend((socket, head) => {
      backendHead = head;
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test-protocol\r\n\r\n',
      );
      socket.on('data', (c: Buffer) => socket.write(c));
    });
    cleanups.push(() => backend.close());
    runtime.streamingBase = `http://127.0.0.1:${backend.port}`;
    const { socket, all } = await rawExchange(port, upgradeRequest(EXEC, AUTH));
    let got = '';
    await new Promise<void>((resolve) =>
      socket.on('data', (c: Buffer) => {
        got += c.toString('latin1');
        if (got.includes('\r\n\r\n') && !got.endsWith('\r\n\r\n')) resolve();
        else if (got.includes('\r\n\r\n')) socket.write('ping');
      }),
    );
    expect(got).toMatch(/^HTTP\/1\.1 101 /);
    expect(got.endsWith('ping')).toBe(true);
    socket.end();
    await all;
    expect(runtime.calls.find((c) => c.method === 'Exec')!.req).toEqual({
      container_id: containerId,
      cmd: ['ls', '/root'],
      tty: false,
      stdin: false,
      stdout: true,
      stderr: true,
    });
    expect(backendHead).toMatch(/^GET \/exec\/tok\d+ HTTP\/1\.1\r\n/);
    expect(backendHead).not.toMatch(/authorization/i);
  });

  it('a refused upgrade from the runtime is passed on and the connection closed', async () => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    const backend = await fakeBackend((socket) => {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\n\r\nnot found');
    });
    cleanups.push(() => backend.close());
    runtime.streamingBase = `http://127.0.0.1:${backend.port}`;
    const res = await upgrade(port, EXEC);
    expect(res.code).toBe(404);
    expect(res.body).toBe('not found');
    expect(res.headers.connection).toBe('close');
  });

  it('carries a v5.channel.k8s.io WebSocket session to the streaming server and back', async () => {
    const { port, runtime } = await kubelet();
    await runPod(runtime);
    // A fake streaming server speaking just enough of remotecommand v5.
    const streaming = http.createServer();
    const wss = new WebSocketServer({ server: streaming });
    const sockets = new Set<net.Socket>();
    streaming.on('connection', (s) => (sockets.add(s), s.on('close', () => sockets.delete(s))));
    wss.on('connection', (ws, req) => {
      expect(ws.protocol).toBe('v5.channel.k8s.io');
      expect(req.url).toMatch(/^\/exec\/tok\d+$/);
      ws.send(Buffer.concat([Buffer.from([1]), Buffer.from('bin\netc\n')]));
      ws.send(Buffer.concat([Buffer.from([3]), Buffer.from('{"metadata":{},"status":"Success"}')]));
      ws.close(1000);
    });
    const sport = await listen(streaming);
    cleanups.push(() => {
      wss.close();
      return closeServer(streaming, sockets);
    });
    runtime.streamingBase = `http://127.0.0.1:${sport}`;

    const ws = new WebSocket(`ws://127.0.0.1:${port}${EXEC}`, ['v5.channel.k8s.io'], { headers: AUTH });
    const frames: Buffer[] = [];
    ws.on('message', (d: Buffer) => frames.push(d));
    await new Promise<void>((resolve, reject) => {
      ws.on('close', () => resolve());
      ws.on('error', reject);
    });
    expect(ws.protocol).toBe('v5.channel.k8s.io');
    const stdout = frames
      .filter((f) => f[0] === 1)
      .map((f) => f.subarray(1).toString())
      .join('');
    const status = frames
      .find((f) => f[0] === 3)!
      .subarray(1)
      .toString();
    expect(stdout).toBe('bin\netc\n');
    expect(JSON.parse(status)).toEqual({ metadata: {}, status: 'Success' });
  });
});
