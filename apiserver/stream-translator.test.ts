/**
 * The StreamTranslator: a v5 WebSocket client, a kubelet that speaks SPDY. A fake kubelet here
 * serves remotecommand over both transports with the shared session code and records how each
 * request reached it.
 */
import http from 'node:http';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { APISERVER_USER, KUBELET_AUDIENCE, verifyToken } from '../shared/auth/tokens.js';
import type { RemoteCommandSession } from '../shared/remotecommand/session.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { closeServer, listen } from '../shared/test-support/loopback.js';
import type { ApiServer, ApiServerOptions } from './server.js';
import { ADMIN, api, KEY, node, pod, serveEchoUntilKubelet, testServer } from './test-support/harness.js';

interface Seen {
  method: string;
  upgrade: string;
  user?: string;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/**
 * An apiserver with pod demo on a fake kubelet whose program echoes stdin until it has seen
 * "kubelet", then exits 3 (it cannot wait for stdin's end: before v5 a client cannot close it).
 */
async function setup(opts: Partial<ApiServerOptions> = {}): Promise<{
  server: ApiServer;
  seen: Seen[];
  firstSession: Promise<RemoteCommandSession>;
}> {
  const seen: Seen[] = [];
  let started!: (s: RemoteCommandSession) => void;
  const firstSession = new Promise<RemoteCommandSession>((r) => (started = r));
  const kubelet = http.createServer();
  kubelet.on('upgrade', async (req, socket, head) => {
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    seen.push({
      method: req.method!,
      upgrade: req.headers.upgrade ?? '',
      user: verifyToken(KEY, token, KUBELET_AUDIENCE)?.name,
    });
    const session = await serveEchoUntilKubelet(req, socket, head);
    if (session) started(session);
  });
  const port = await listen(kubelet);
  cleanups.push(() => closeServer(kubelet));
  const server = await testServer(opts);
  cleanups.push(() => server.close());
  await api(server, 'POST', '/api/v1/nodes', { body: node('node-1', '127.0.0.1', port) });
  await api(server, 'POST', '/api/v1/namespaces/default/pods', {
    body: pod('demo', { nodeName: 'node-1', containers: ['app'] }),
  });
  return { server, seen, firstSession };
}

function execUrl(server: ApiServer): string {
  return `${server.url}/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true&stderr=true`;
}

async function exec(server: ApiServer, protocols?: string[]) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const res = await runChannelClient({
    url: execUrl(server),
    headers: { Authorization: `Bearer ${ADMIN}` },
    protocols,
    stdin: Readable.from([Buffer.from('hello '), Buffer.from('kubelet')]),
    stdout: out,
  });
  return { ...res, text };
}

describe('StreamTranslator', () => {
  it('ends a v5 WebSocket at the apiserver and speaks SPDY to the kubelet', async () => {
    const { server, seen } = await setup();
    const res = await exec(server);
    expect(res.protocol).toBe('v5.channel.k8s.io');
    expect(res.text).toBe('hello kubelet');
    expect(res.exitCode).toBe(3);
    expect(seen).toEqual([{ method: 'POST', upgrade: 'SPDY/3.1', user: APISERVER_USER }]);
  });

  it('splices clients that do not offer v5', async () => {
    const { server, seen } = await setup();
    const res = await exec(server, ['v4.channel.k8s.io']);
    expect(res.protocol).toBe('v4.channel.k8s.io');
    expect(res.exitCode).toBe(3);
    expect(seen).toEqual([{ method: 'GET', upgrade: 'websocket', user: APISERVER_USER }]);
  });

  it('splices v5 too when the feature gate is off', async () => {
    const { server, seen } = await setup({ translateStreamCloseWebsocketRequests: false });
    const res = await exec(server);
    expect(res.protocol).toBe('v5.channel.k8s.io');
    expect(res.text).toBe('hello kubelet');
    expect(seen.map((s) => s.method)).toEqual(['GET']);
  });

  it('closes the kubelet session when the client goes away', async () => {
    const { server, firstSession } = await setup();
    const ws = new (await import('ws')).default(
      execUrl(server).replace('http', 'ws'),
      ['v5.channel.k8s.io'],
      {
        headers: { Authorization: `Bearer ${ADMIN}` },
      },
    );
    await once(ws, 'open');
    const session = await firstSession;
    expect(session.isClosed).toBe(false);
    const closed = new Promise<void>((resolve) => session.once('close', resolve));
    ws.terminate();
    await closed;
    expect(session.isClosed).toBe(true);
  });
});
