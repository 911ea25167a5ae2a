import net from 'node:net';
import { once } from 'node:events';
import { APISERVER_USER, KUBELET_AUDIENCE, verifyToken } from '../shared/auth/tokens.js';
import {
  fakeBackend,
  parseResponse,
  rawExchange,
  readHead,
  upgradeRequest,
  type FakeBackend,
} from '../shared/test-support/loopback.js';
import { ADMIN, api, KEY, node, pod, testServer } from './test-support/harness.js';
import type { ApiServer } from './server.js';

const PODS = '/api/v1/namespaces/default/pods';
const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test-protocol\r\n\r\n';
const AUTH = { Authorization: `Bearer ${ADMIN}` };

let server: ApiServer;
const cleanups: (() => Promise<void>)[] = [];
beforeEach(async () => {
  server = await testServer();
  cleanups.push(() => server.close());
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function kubelet(onRequest: Parameters<typeof fakeBackend>[0]): Promise<FakeBackend> {
  const b = await fakeBackend(onRequest);
  cleanups.push(() => b.close());
  await api(server, 'POST', '/api/v1/nodes', { body: node('node-1', '127.0.0.1', b.port) });
  return b;
}

/** The request head's path and its headers, lower-cased. */
function parseHead(head: string): { method: string; path: string; headers: Record<string, string> } {
  const [line, ...rest] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of rest) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  const [method, path] = line!.split(' ');
  return { method: method!, path: path!, headers };
}

describe('pods/exec and pods/attach Connect', () => {
  it('proxies the upgrade to the kubelet URL with the apiserver credential, then splices both ways', async () => {
    let seen = '';
    const k = await kubelet((socket, head) => {
      seen = head;
      socket.write(SWITCH + 'from-kubelet;');
      socket.on('data', (c: Buffer) => socket.write(c));
    });
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1', containers: ['app'] }) });

    const client = net.connect(server.port, '127.0.0.1');
    await once(client, 'connect');
    const query = 'command=ls&command=%2Froot&command=a%20b&stdin=true&stdout=true&stderr=true&tty=false';
    client.write(upgradeRequest(`${PODS}/demo/exec?${query}`, AUTH));
    const { head, rest } = await readHead(client);
    expect(head).toMatch(/^HTTP\/1\.1 101 /);

    const req = parseHead(seen);
    expect(req.method).toBe('GET');
    expect(req.path).toBe(
      '/exec/default/demo/app?command=ls&command=%2Froot&command=a+b&input=1&output=1&error=1',
    );
    expect(req.headers.host).toBe(`127.0.0.1:${k.port}`);
    const token = req.headers.authorization!.replace(/^Bearer /, '');
    expect(token).not.toBe(ADMIN);
    expect(verifyToken(KEY, token, KUBELET_AUDIENCE)).toEqual({ name: APISERVER_USER, groups: [] });
    expect(seen).not.toContain(ADMIN);

    let got = rest.toString();
    client.on('data', (c: Buffer) => (got += c.toString()));
    client.resume();
    client.write('ping');
    for (let i = 0; i < 50 && got.length < 'from-kubelet;ping'.length; i++) await once(client, 'data');
    expect(got).toBe('from-kubelet;ping');
    client.destroy();
  });

  it('a SPDY-style POST upgrade reaches the kubelet as a POST; tty and attach map to their kubelet paths', async () => {
    const heads: string[] = [];
    await kubelet((socket, head) => {
      heads.push(head);
      socket.end(SWITCH);
    });
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1', containers: ['a', 'b'] }) });
    for (const [method, path] of [
      ['POST', `${PODS}/demo/exec?command=sh&container=b&stdin=1&stdout=1&tty=true`],
      ['GET', `${PODS}/demo/attach?container=a&stdout=true&stderr=true`],
    ] as const) {
      const { all } = await rawExchange(server.port, upgradeRequest(path, AUTH, method));
      expect(parseResponse(await all).code).toBe(101);
    }
    expect(heads.map((h) => parseHead(h).method + ' ' + parseHead(h).path)).toEqual([
      'POST /exec/default/demo/b?command=sh&input=1&output=1&tty=1',
      'GET /attach/default/demo/a?output=1&error=1',
    ]);
  });

  it('refuses bad targets with upstream messages, before contacting any kubelet', async () => {
    const k = await kubelet((socket) => socket.destroy());
    await api(server, 'POST', PODS, { body: pod('two', { nodeName: 'node-1', containers: ['a', 'b'] }) });
    await api(server, 'POST', PODS, { body: pod('unscheduled') });
    await api(server, 'POST', PODS, { body: pod('lost', { nodeName: 'node-gone' }) });
    const cases: [string, number, string][] = [
      [
        'two/exec?command=ls&stdout=1',
        400,
        'a container name must be specified for pod two, choose one of: [a b]',
      ],
      ['two/exec?command=ls&stdout=1&container=c', 400, 'container c is not valid for pod two'],
      ['unscheduled/exec?command=ls&stdout=1', 400, 'pod unscheduled does not have a host assigned'],
      ['unscheduled/attach?stdout=1', 400, 'pod unscheduled does not have a host assigned'],
      ['missing/exec?command=ls&stdout=1', 404, 'pods "missing" not found'],
      ['lost/exec?command=ls&stdout=1', 404, 'nodes "node-gone" not found'],
    ];
    for (const [path, code, message] of cases) {
      const { all } = await rawExchange(server.port, upgradeRequest(`${PODS}/${path}`, AUTH));
      const res = parseResponse(await all);
      expect([path, res.code, JSON.parse(res.body).message]).toEqual([path, code, message]);
      expect(res.headers.connection).toBe('close');
    }
    // The same errors without an upgrade.
    const plain = await api(server, 'POST', `${PODS}/unscheduled/exec?command=ls`);
    expect(plain.code).toBe(400);
    expect(plain.body.message).toBe('pod unscheduled does not have a host assigned');
    expect(k.connections).toHaveLength(0);
  });

  it('a plain (non-upgrade) exec request is refused with "Upgrade request required"', async () => {
    const k = await kubelet((socket) => socket.destroy());
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    const r = await api(server, 'POST', `${PODS}/demo/exec?command=ls&stdout=true`);
    expect(r.code).toBe(400);
    expect(r.body).toMatchObject({ kind: 'Status', message: 'Upgrade request required' });
    expect(k.connections).toHaveLength(0);
  });

  it('a kubelet redirect is never followed: the client gets 502 and the target is never contacted', async () => {
    const target = await fakeBackend((socket) => socket.end(SWITCH));
    cleanups.push(() => target.close());
    await kubelet((socket) =>
      socket.end(
        `HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:${target.port}/exec\r\nContent-Length: 0\r\n\r\n`,
      ),
    );
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    const { all } = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/demo/exec?command=ls&stdout=1`, AUTH),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(502);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', status: 'Failure', code: 502 });
    expect(res.body).not.toContain(String(target.port));
    expect(target.connections).toHaveLength(0);
  });

  it('a kubelet refusing with 400 is passed on and both connections are closed', async () => {
    const refusal =
      '{"kind":"Status","status":"Failure","message":"you must specify at least 1 of stdin, stdout, stderr","code":400}';
    let kubeletSocketClosed: Promise<unknown> = Promise.resolve();
    const k = await kubelet((socket) => {
      kubeletSocketClosed = once(socket, 'close');
      socket.write(
        `HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: ${refusal.length}\r\n\r\n${refusal}`,
      );
    });
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    // A second request pipelined behind the upgrade must never reach the kubelet (CVE-2018-1002105).
    const smuggled = `GET /runningpods/ HTTP/1.1\r\nHost: x\r\n\r\n`;
    const { all } = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/demo/exec?command=ls`, AUTH) + smuggled,
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(400);
    expect(res.body).toBe(refusal);
    await kubeletSocketClosed;
    expect(k.requestCount()).toBe(1);
  });

  it('an unreachable kubelet is a 503 Status', async () => {
    const k = await kubelet((socket) => socket.destroy());
    await k.close();
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    const { all } = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/demo/exec?command=ls&stdout=1`, AUTH),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(503);
    expect(JSON.parse(res.body).message).toMatch(/^error dialing backend: /);
  });
});

describe('pods/portforward and pods/log', () => {
  it('port-forward goes to /portForward/{ns}/{pod} with the ports', async () => {
    let seen = '';
    await kubelet((socket, head) => {
      seen = head;
      socket.end(SWITCH);
    });
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1' }) });
    const { all } = await rawExchange(
      server.port,
      upgradeRequest(`${PODS}/demo/portforward?ports=8080&ports=9090`, AUTH),
    );
    expect(parseResponse(await all).code).toBe(101);
    expect(parseHead(seen).path).toBe('/portForward/default/demo?port=8080%2C9090');

    const bad = await rawExchange(server.port, upgradeRequest(`${PODS}/demo/portforward?ports=99999`, AUTH));
    expect(parseResponse(await bad.all).code).toBe(400);
  });

  it('logs stream from /containerLogs with the log options, without the client credential', async () => {
    let seen = '';
    await kubelet((socket, head) => {
      seen = head;
      socket.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\nline1\nline2\n');
    });
    await api(server, 'POST', PODS, { body: pod('demo', { nodeName: 'node-1', containers: ['app'] }) });
    const r = await api(server, 'GET', `${PODS}/demo/log?follow=true&tailLines=5&timestamps=false`);
    expect(r.code).toBe(200);
    expect(r.text).toBe('line1\nline2\n');
    const req = parseHead(seen);
    expect(req.path).toBe('/containerLogs/default/demo/app?follow=true&tailLines=5');
    expect(req.headers.authorization).not.toContain(ADMIN);

    await api(server, 'POST', PODS, { body: pod('pending') });
    const empty = await api(server, 'GET', `${PODS}/pending/log`);
    expect([empty.code, empty.text]).toEqual([200, '']);
  });
});
