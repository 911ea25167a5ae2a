/**
 * Port-forward through the shim end to end on real loopback sockets: CRI PortForward hands out a
 * URL, a WebSocket on it reaches a TCP echo server on 127.0.0.1. Checked with a raw `ws` client
 * (the bytes on the wire: port prefixes, channels, error text) and with the shared tunnel client.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { connectRuntime, GrpcStatus, isGrpcError, type RuntimeServiceClient } from '../shared/cri/client.js';
import { dialSpdyPortForward } from '../shared/portforward/spdy-client.js';
import { openPortForwardTunnel, type PortForwardTunnel } from '../shared/portforward/websocket-client.js';
import {
  closeServer,
  listen,
  parseResponse,
  rawExchange,
  upgradeRequest,
} from '../shared/test-support/loopback.js';
import { startCriShim, type CriShim } from './server.js';

let tmp: string;
let shim: CriShim;
let rt: RuntimeServiceClient;
let sandboxId: string;
let echoPort: number;
let closedPort: number;
let echo: net.Server;
const echoSockets = new Set<net.Socket>();
const logs: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-pf-'));
  shim = await startCriShim({
    listen: `unix://${tmp}/cri.sock`,
    root: path.join(tmp, 'root'),
    isolation: 'none',
    log: (l) => logs.push(l),
  });
  rt = connectRuntime(shim.endpoint);
  ({ pod_sandbox_id: sandboxId } = await rt.runPodSandbox({
    config: { metadata: { name: 'pf', namespace: 'default', uid: 'uid-pf' } },
  }));
  echo = net.createServer((s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  echoPort = await listen(echo);
  // A port nobody listens on: bind one, note it, close it.
  const tmpServer = net.createServer();
  closedPort = await listen(tmpServer);
  await closeServer(tmpServer);
});

afterAll(async () => {
  rt?.close();
  await shim?.close();
  await closeServer(echo, echoSockets);
  fs.rmSync(tmp, { recursive: true, force: true });
});

const pfUrl = async (ports: number[] = []): Promise<string> =>
  (await rt.portForward({ pod_sandbox_id: sandboxId, port: ports })).url;

/** Reads from the tunnel until `n` bytes arrived. */
function readBytes(t: PortForwardTunnel, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (c: Buffer): void => {
      chunks.push(c);
      got += c.length;
      if (got >= n) {
        t.off('data', onData);
        t.off('error', reject);
        resolve(Buffer.concat(chunks));
      }
    };
    t.on('data', onData);
    t.once('error', reject);
  });
}

/** Everything a stream delivers until its end. */
async function collect(r: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

interface RawSession {
  protocol: string;
  messages: Array<{ channel: number; payload: Buffer }>;
  closeCode: number;
}

/** A raw v4 client: optionally sends `send` on channel 0 after the data prefix arrives; collects all. */
function rawSession(url: string, opts: { protocol?: string; send?: Buffer; closeAfterBytes?: number } = {}) {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), [opts.protocol ?? 'v4.channel.k8s.io']);
  const base64 = opts.protocol === 'v4.base64.channel.k8s.io';
  const messages: RawSession['messages'] = [];
  let dataBytes = 0;
  return new Promise<RawSession>((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) =>
      reject(Object.assign(new Error(`refused ${res.statusCode}`), { code: res.statusCode })),
    );
    ws.on('error', reject);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      const m = base64
        ? {
            channel: data.toString()[0]!.charCodeAt(0) - 48,
            payload: Buffer.from(data.toString().slice(1), 'base64'),
          }
        : { channel: data[0]!, payload: data.subarray(1) };
      expect(isBinary).toBe(!base64);
      messages.push(m);
      if (m.channel === 0 && messages.filter((x) => x.channel === 0).length === 1 && opts.send) {
        const frame = base64
          ? `0${opts.send.toString('base64')}`
          : Buffer.concat([Buffer.from([0]), opts.send]);
        ws.send(frame);
      } else if (m.channel === 0) {
        dataBytes += m.payload.length;
        if (opts.closeAfterBytes !== undefined && dataBytes >= opts.closeAfterBytes) ws.close(1000);
      }
    });
    ws.on('close', (code) => resolve({ protocol: ws.protocol, messages, closeCode: code }));
  });
}

const le = (port: number): Buffer => Buffer.from([port & 0xff, port >> 8]);

test('CRI PortForward hands out a single-use /portforward/ URL; validation errors', async () => {
  const url = await pfUrl([echoPort]);
  expect(url).toMatch(new RegExp(`^${shim.streamingUrl}/portforward/[A-Za-z0-9_-]+$`));
  const nf = await rt.portForward({ pod_sandbox_id: 'nope' }).catch((e: unknown) => e);
  expect(isGrpcError(nf, GrpcStatus.NOT_FOUND)).toBe(true);
  const bad = await rt.portForward({ pod_sandbox_id: sandboxId, port: [70000] }).catch((e: unknown) => e);
  expect(isGrpcError(bad, GrpcStatus.INVALID_ARGUMENT)).toBe(true);
  const t = await openPortForwardTunnel({ url, port: echoPort });
  t.destroy();
  await expect(openPortForwardTunnel({ url, port: echoPort })).rejects.toMatchObject({
    code: 'UPGRADE_REFUSED',
    httpCode: 404,
  });
});

test('the wire: port prefix first on the data and the error channel, then the echoed bytes on channel 0', async () => {
  const r = await rawSession(`${await pfUrl()}?port=${echoPort}`, {
    send: Buffer.from('ping'),
    closeAfterBytes: 4,
  });
  expect(r.protocol).toBe('v4.channel.k8s.io');
  const prefixes = r.messages.slice(0, 2);
  expect(prefixes).toEqual(
    expect.arrayContaining([
      { channel: 0, payload: le(echoPort) },
      { channel: 1, payload: le(echoPort) },
    ]),
  );
  const data = Buffer.concat(
    r.messages
      .slice(2)
      .filter((m) => m.channel === 0)
      .map((m) => m.payload),
  );
  expect(data.toString()).toBe('ping');
  expect(r.messages.filter((m) => m.channel === 1)).toHaveLength(1); // no error text
});

test('v4.base64.channel.k8s.io works the same, in text messages', async () => {
  const r = await rawSession(`${await pfUrl([echoPort])}`, {
    protocol: 'v4.base64.channel.k8s.io',
    send: Buffer.from('b64!'),
    closeAfterBytes: 4,
  });
  expect(r.protocol).toBe('v4.base64.channel.k8s.io');
  expect(r.messages[0]!.payload).toEqual(le(echoPort));
  const data = Buffer.concat(
    r.messages
      .slice(2)
      .filter((m) => m.channel === 0)
      .map((m) => m.payload),
  );
  expect(data.toString()).toBe('b64!');
});

test('two connections in a row through the tunnel client, each with its own URL', async () => {
  for (const word of ['first', 'second']) {
    const t = await openPortForwardTunnel({ url: await pfUrl([echoPort]), port: echoPort });
    const reply = readBytes(t, word.length);
    t.write(word);
    expect((await reply).toString()).toBe(word);
    t.end();
    await once(t, 'close');
  }
});

test('a closed target port: the error channel says why, and a later connection works', async () => {
  const r = await rawSession(`${await pfUrl()}?port=${closedPort}`);
  const errText = Buffer.concat(r.messages.filter((m) => m.channel === 1).map((m) => m.payload))
    .subarray(2)
    .toString();
  expect(errText).toBe(
    `error forwarding port ${closedPort} to pod ${sandboxId}, uid : dial tcp4 127.0.0.1:${closedPort}: connect: connection refused`,
  );
  expect(r.closeCode).toBe(1000);

  // The same through the client: the tunnel fails with that text.
  const bad = await openPortForwardTunnel({ url: await pfUrl([closedPort]), port: closedPort });
  const [err] = (await once(bad, 'error')) as [Error & { code?: string }];
  expect(err.code).toBe('REMOTE_ERROR');
  expect(err.message).toMatch(/connect: connection refused$/);

  // And the next connection to a live port is fine.
  const t = await openPortForwardTunnel({ url: await pfUrl([echoPort]), port: echoPort });
  const reply = readBytes(t, 5);
  t.write('again');
  expect((await reply).toString()).toBe('again');
  t.destroy();
});

test('several ports on one connection: channels 2i and 2i+1, each port dialled once', async () => {
  const r = await rawSession(`${await pfUrl()}?port=${echoPort},${closedPort}`, {
    send: Buffer.from('multi'),
    closeAfterBytes: 5,
  });
  const onChannel = (c: number) => r.messages.filter((m) => m.channel === c).map((m) => m.payload);
  expect(onChannel(0)[0]).toEqual(le(echoPort));
  expect(onChannel(1)[0]).toEqual(le(echoPort));
  expect(onChannel(2)[0]).toEqual(le(closedPort));
  expect(onChannel(3)[0]).toEqual(le(closedPort));
  expect(Buffer.concat(onChannel(0).slice(1)).toString()).toBe('multi');
  expect(Buffer.concat(onChannel(3).slice(1)).toString()).toMatch(/connection refused/);
});

test('refusals before the upgrade: no port anywhere, a bad port, a SPDY version we do not speak', async () => {
  await expect(rawSession(await pfUrl())).rejects.toMatchObject({ code: 400 });
  await expect(rawSession(`${await pfUrl([echoPort])}?port=0`)).rejects.toMatchObject({ code: 400 });
  const url = new URL(await pfUrl([echoPort]));
  const { all } = await rawExchange(
    Number(url.port),
    upgradeRequest(
      url.pathname,
      { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
      'POST',
    ),
  );
  const res = parseResponse(await all);
  expect(res.code).toBe(403);
  expect(res.headers['x-accepted-stream-protocol-versions']).toBe('portforward.k8s.io');
  expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', status: 'Failure' });
});

test('SPDY: connections one after another on one upgraded connection, one failing in between', async () => {
  const client = await dialSpdyPortForward({ url: await pfUrl() });
  try {
    for (const word of ['one', 'two']) {
      const c = await client.forward(echoPort);
      const got = collect(c.data);
      c.data.end(word); // a FIN: the echo server sees EOF, answers and closes
      expect((await got).toString()).toBe(word);
      expect(await c.errorText).toBe('');
    }
    const bad = await client.forward(closedPort);
    expect(await bad.errorText).toBe(
      `error forwarding port ${closedPort} to pod ${sandboxId}, uid : dial tcp4 127.0.0.1:${closedPort}: connect: connection refused`,
    );
    const again = await client.forward(echoPort);
    const got = collect(again.data);
    again.data.end('three');
    expect((await got).toString()).toBe('three');
  } finally {
    await client.close();
  }
});

test('SPDY: two connections at the same time are paired by requestID', async () => {
  const client = await dialSpdyPortForward({ url: await pfUrl() });
  try {
    const [a, b] = await Promise.all([client.forward(echoPort), client.forward(echoPort)]);
    const [ga, gb] = [collect(a.data), collect(b.data)];
    b.data.end('bbb');
    a.data.end('aaaa');
    expect([(await ga).toString(), (await gb).toString()]).toEqual(['aaaa', 'bbb']);
  } finally {
    await client.close();
  }
});

test('the client leaving closes the connection to the target', async () => {
  const t = await openPortForwardTunnel({ url: await pfUrl([echoPort]), port: echoPort });
  const reply = readBytes(t, 2);
  t.write('hi');
  await reply;
  expect(echoSockets.size).toBe(1);
  const [s] = [...echoSockets];
  t.destroy();
  await once(s!, 'close');
  expect(echoSockets.size).toBe(0);
});
