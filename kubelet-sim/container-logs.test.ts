/**
 * `/containerLogs/{ns}/{pod}/{container}` against the fake runtime: a real CRI log file on disk,
 * the kubelet server on a loopback port, `fetch` as the apiserver.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { APISERVER_USER, KUBELET_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import { formatLogLine } from '../shared/cri/log-format.js';
import { podLogOptions } from './container-logs.js';
import { KubeletServer } from './server.js';
import { FakeRuntime } from './test-support/fake-runtime.js';
import { waitFor } from '../shared/test-support/poll.js';

const key = randomBytes(32);
const token = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
const AUTH = { Authorization: `Bearer ${token}` };

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface Setup {
  base: string;
  server: KubeletServer;
  runtime: FakeRuntime;
  containerId: string;
  logPath: string;
  append: (stream: 'stdout' | 'stderr', line: string, ts?: string) => void;
}

async function setup(): Promise<Setup> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-logs-'));
  cleanups.push(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const runtime = new FakeRuntime();
  const server = new KubeletServer({
    apiserverTokenKeys: { hs256: key },
    runtime,
    log: () => {},
    logPollIntervalMs: 50,
  });
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
  const { container_id } = await runtime.createContainer({
    pod_sandbox_id,
    config: {
      metadata: { name: 'c' },
      image: { image: 'busybox' },
      labels: { ...labels, 'io.kubernetes.container.name': 'c' },
    },
  });
  await runtime.startContainer({ container_id });
  const logPath = path.join(tmp, 'c', '0.log');
  fs.mkdirSync(path.dirname(logPath));
  fs.writeFileSync(logPath, '');
  runtime.logPaths.set(container_id, logPath);
  let n = 0;
  const append = (stream: 'stdout' | 'stderr', line: string, ts?: string): void => {
    const stamp = ts ?? `2026-01-02T03:04:05.${String(++n).padStart(6, '0')}Z`;
    fs.appendFileSync(logPath, formatLogLine(stamp, stream, 'F', Buffer.from(line)));
  };
  return { base: `http://127.0.0.1:${port}`, server, runtime, containerId: container_id, logPath, append };
}

const LOGS = '/containerLogs/default/demo/c';

async function get(s: Setup, query = ''): Promise<{ code: number; body: string; type: string | null }> {
  const res = await fetch(`${s.base}${LOGS}${query}`, { headers: AUTH });
  return { code: res.status, body: await res.text(), type: res.headers.get('content-type') };
}

describe('kubelet /containerLogs', () => {
  it('serves the whole log as plain text, both streams in file order', async () => {
    const s = await setup();
    s.append('stdout', 'one');
    s.append('stderr', 'two');
    s.append('stdout', 'three');
    const r = await get(s);
    expect(r).toEqual({ code: 200, body: 'one\ntwo\nthree\n', type: 'text/plain; charset=utf-8' });
    expect(s.runtime.calls.find((c) => c.method === 'ListContainers')!.req).toMatchObject({
      filter: {
        label_selector: {
          'io.kubernetes.pod.namespace': 'default',
          'io.kubernetes.pod.name': 'demo',
          'io.kubernetes.container.name': 'c',
        },
      },
    });
  });

  it('tailLines, limitBytes and the old `tail` alias', async () => {
    const s = await setup();
    for (const l of ['a', 'b', 'c', 'd']) s.append('stdout', l);
    expect((await get(s, '?tailLines=2')).body).toBe('c\nd\n');
    expect((await get(s, '?tailLines=0')).body).toBe('');
    expect((await get(s, '?tail=1')).body).toBe('d\n');
    expect((await get(s, '?tail=all')).body).toBe('a\nb\nc\nd\n');
    expect((await get(s, '?limitBytes=3')).body).toBe('a\nb');
  });

  it('timestamps=true prefixes each line with its RFC3339Nano time (nine digits)', async () => {
    const s = await setup();
    s.append('stdout', 'hello', '2026-01-02T03:04:05.5Z');
    s.append('stderr', 'world', '2026-01-02T03:04:06.123456789Z');
    expect((await get(s, '?timestamps=true')).body).toBe(
      '2026-01-02T03:04:05.500000000Z hello\n2026-01-02T03:04:06.123456789Z world\n',
    );
    expect((await get(s, '?timestamps=false')).body).toBe('hello\nworld\n');
  });

  it('sinceSeconds and sinceTime skip older lines', async () => {
    const s = await setup();
    s.append('stdout', 'old', '2020-01-01T00:00:00Z');
    s.append('stdout', 'new', new Date().toISOString());
    expect((await get(s, '?sinceSeconds=60')).body).toBe('new\n');
    expect((await get(s, '?sinceTime=2021-01-01T00:00:00Z')).body).toBe('new\n');
  });

  it('follow=true sends a line written after the request, and ends when the container exits', async () => {
    const s = await setup();
    s.append('stdout', 'before');
    const res = await fetch(`${s.base}${LOGS}?follow=true`, { headers: AUTH });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let got = '';
    const readUntil = async (want: string): Promise<void> => {
      while (!got.includes(want)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${JSON.stringify(want)}; got ${JSON.stringify(got)}`);
        got += dec.decode(value, { stream: true });
      }
    };
    await readUntil('before\n');
    s.append('stdout', 'after');
    await readUntil('after\n');
    expect(s.server.activeLogStreams).toBe(1);
    s.append('stderr', 'last words');
    s.runtime.exit(s.containerId, 1);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      got += dec.decode(value, { stream: true });
    }
    expect(got).toBe('before\nafter\nlast words\n');
    await waitFor('follower gone', () => s.server.activeLogStreams === 0, 2000);
  });

  it('closing the client stops the follower (no leaked watch)', async () => {
    const s = await setup();
    s.append('stdout', 'x');
    const statusCalls = (): number => s.runtime.count('ContainerStatus');
    await new Promise<void>((resolve, reject) => {
      const req = http.get(`${s.base}${LOGS}?follow=1`, { headers: AUTH }, (res) => {
        res.once('data', () => {
          expect(s.server.activeLogStreams).toBe(1);
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
    });
    await waitFor('follower gone', () => s.server.activeLogStreams === 0, 2000);
    // The follower asked "still running?" while it waited; once gone it asks no more.
    const n = statusCalls();
    s.append('stdout', 'nobody reads this');
    await new Promise((r) => setTimeout(r, 200)); // four poll periods in which a leaked follower would poll
    expect(statusCalls()).toBe(n);
  });

  it('previous=true reads the instance before the newest; without one it is 400', async () => {
    const s = await setup();
    s.append('stdout', 'first life');
    s.runtime.exit(s.containerId, 2);
    const sandbox = [...s.runtime.sandboxes.keys()][0]!;
    const { container_id } = await s.runtime.createContainer({
      pod_sandbox_id: sandbox,
      config: {
        metadata: { name: 'c', attempt: 1 },
        image: { image: 'busybox' },
        labels: { ...s.runtime.containers.get(s.containerId)!.labels },
      },
    });
    await s.runtime.startContainer({ container_id });
    const second = path.join(path.dirname(s.logPath), '1.log');
    fs.writeFileSync(
      second,
      formatLogLine('2026-01-02T03:04:05Z', 'stdout', 'F', Buffer.from('second life')),
    );
    s.runtime.logPaths.set(container_id, second);
    expect((await get(s)).body).toBe('second life\n');
    expect((await get(s, '?previous=true')).body).toBe('first life\n');

    s.runtime.containers.delete(s.containerId);
    const r = await get(s, '?previous=true');
    expect(r.code).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({
      kind: 'Status',
      message: 'previous terminated container "c" in pod "demo" not found',
    });
  });

  it.each([
    ['/containerLogs/default/demo/nope', 404, 'container "nope" not found in pod "demo"'],
    ['/containerLogs/default/ghost/c', 404, 'pod does not exist'],
    [`${LOGS}?tailLines=-1`, 400, 'tailLines: must be greater than or equal to 0'],
    [`${LOGS}?tailLines=ten`, 400, 'invalid tailLines "ten": not an integer'],
    [`${LOGS}?limitBytes=0`, 400, 'limitBytes: must be greater than 0'],
    [`${LOGS}?sinceSeconds=0`, 400, 'sinceSeconds: must be greater than 0'],
    [`${LOGS}?sinceTime=yesterday`, 400, 'invalid sinceTime "yesterday": not an RFC 3339 time'],
    [
      `${LOGS}?sinceSeconds=5&sinceTime=2026-01-01T00:00:00Z`,
      400,
      'at most one of `sinceTime` or `sinceSeconds` may be specified',
    ],
    ['/containerLogs/default/demo', 400, undefined],
  ])('%s → %s as a Status', async (p, code, message) => {
    const s = await setup();
    const res = await fetch(`${s.base}${p}`, { headers: AUTH });
    expect(res.status).toBe(code);
    const body = (await res.json()) as { kind: string; code: number; message: string };
    expect(body).toMatchObject({ kind: 'Status', code });
    if (message) expect(body.message).toBe(message);
  });

  it('a log file that is gone is 400 with the reader’s reason; a container not started yet is waiting', async () => {
    const s = await setup();
    fs.rmSync(s.logPath);
    const r = await get(s);
    expect(r.code).toBe(400);
    expect(JSON.parse(r.body).message).toMatch(/^failed to open log file .*0\.log": ENOENT$/);
    s.runtime.containers.get(s.containerId)!.state = 'CONTAINER_CREATED';
    expect(JSON.parse((await get(s)).body).message).toBe(
      'container "c" in pod "demo" is waiting to start: ContainerCreating',
    );
  });

  it('is authenticated like /exec and GET only', async () => {
    const s = await setup();
    s.append('stdout', 'secret');
    expect((await fetch(`${s.base}${LOGS}`)).status).toBe(401);
    const other = mintToken(key, { name: 'system:node:x', groups: [] }, { audience: KUBELET_AUDIENCE });
    expect((await fetch(`${s.base}${LOGS}`, { headers: { Authorization: `Bearer ${other}` } })).status).toBe(
      403,
    );
    expect((await fetch(`${s.base}${LOGS}`, { method: 'POST', headers: AUTH })).status).toBe(405);
    expect(s.runtime.count('ContainerStatus')).toBe(0);
  });

  it('parses PodLogOptions as apimachinery converts a query', () => {
    expect(podLogOptions(new URLSearchParams('follow=&previous=0&timestamps=FALSE&tailLines=3'))).toEqual({
      follow: true,
      previous: false,
      timestamps: false,
      tailLines: 3,
    });
  });
});
