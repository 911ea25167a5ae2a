/**
 * `--max-connection-bytes-per-sec` on the two paths where the apiserver itself reads the stream
 * bytes: the StreamTranslator (a v5 WebSocket client, SPDY to the kubelet) and the port-forward
 * tunnel (SPDY inside WebSocket messages, SPDY to the kubelet). Upstream both are throttled
 * (streamtranslator.go wraps stdin/stdout/stderr in flowrate; the tunnel wraps the throttled
 * UpgradeAwareHandler). 2 MiB echoed through each at 512 KiB/s must take seconds, not the tenth of
 * a second loopback needs, and arrive intact. Bounds are deliberately wide (CI machines vary): the
 * point is the order of magnitude.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { exitStatus } from '../shared/remotecommand/exit-status.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { acceptSpdySession } from '../shared/remotecommand/spdy-server.js';
import { closeServer, fakeBackend, listen, readHead } from '../shared/test-support/loopback.js';
import { TUNNEL_PROTOCOL } from './util/proxy/stream-tunnel.js';
import type { ApiServer } from './server.js';
import { ADMIN, api, node, pod, testServer } from './test-support/harness.js';

const MiB = 1024 * 1024;
const RATE = 512 * 1024;
const SIZE = 2 * MiB;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** An apiserver at `rate` with pod demo on a kubelet listening on `kubeletPort`. */
async function apiserver(kubeletPort: number, rate: number): Promise<ApiServer> {
  const server = await testServer({ maxConnectionBytesPerSec: rate });
  cleanups.push(() => server.close());
  await api(server, 'POST', '/api/v1/nodes', { body: node('node-1', '127.0.0.1', kubeletPort) });
  await api(server, 'POST', '/api/v1/namespaces/default/pods', {
    body: pod('demo', { nodeName: 'node-1', containers: ['app'] }),
  });
  return server;
}

/** A kubelet that serves exec over SPDY only, running `cat`: stdin back on stdout, exit 0 at EOF. */
async function spdyCatKubelet(): Promise<{ port: number; methods: string[] }> {
  const methods: string[] = [];
  const kubelet = http.createServer((_req, res) => res.writeHead(400).end());
  kubelet.on('upgrade', async (req, socket, head) => {
    methods.push(req.method!);
    const session = await acceptSpdySession(req, socket, head, {
      stdin: true,
      stdout: true,
      stderr: true,
      tty: false,
    });
    if (!session) return;
    session.stdin!.pipe(session.stdout!, { end: false });
    session.stdin!.once('end', () => void session.finish(exitStatus(0)));
  });
  const port = await listen(kubelet);
  cleanups.push(() => closeServer(kubelet));
  return { port, methods };
}

/** Runs `cat` with `data` on stdin through the translator; output and elapsed time. */
async function translatedCat(server: ApiServer, data: Buffer) {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const started = performance.now();
  const res = await runChannelClient({
    url: `${server.url}/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true&stderr=true`,
    headers: { Authorization: `Bearer ${ADMIN}` },
    stdin: Readable.from(
      Array.from({ length: data.length / (64 * 1024) }, (_, i) =>
        data.subarray(i * 64 * 1024, (i + 1) * 64 * 1024),
      ),
    ),
    stdout: out,
  });
  return { ...res, ms: performance.now() - started, out: Buffer.concat(chunks) };
}

describe('--max-connection-bytes-per-sec on the StreamTranslator', () => {
  it('limits a translated exec: 2 MiB through cat at 512 KiB/s takes seconds and arrives intact', async () => {
    const kubelet = await spdyCatKubelet();
    const server = await apiserver(kubelet.port, RATE);
    const data = randomBytes(SIZE);
    const res = await translatedCat(server, data);
    expect(res.protocol).toBe('v5.channel.k8s.io');
    expect(kubelet.methods).toEqual(['POST']); // translated: SPDY to the kubelet
    expect(res.exitCode).toBe(0);
    expect(res.out.length).toBe(SIZE);
    expect(sha(res.out)).toBe(sha(data));
    // 2 MiB at 512 KiB/s is 4 s each way (the directions overlap); unthrottled it is ~0.1 s.
    expect(res.ms).toBeGreaterThan(2_000);
    expect(res.ms).toBeLessThan(30_000);
  }, 60_000);

  it('leaves a translated exec alone without a limit', async () => {
    const kubelet = await spdyCatKubelet();
    const server = await apiserver(kubelet.port, 0);
    const data = randomBytes(SIZE);
    const res = await translatedCat(server, data);
    expect(res.exitCode).toBe(0);
    expect(sha(res.out)).toBe(sha(data));
    expect(res.ms).toBeLessThan(2_000);
  }, 30_000);
});

/**
 * A kubelet that accepts the SPDY port-forward upgrade and then echoes every byte. The tunnel
 * never parses the SPDY inside, so raw bytes show exactly what it carries and how fast.
 */
async function echoKubelet(): Promise<{ port: number; heads: string[] }> {
  const heads: string[] = [];
  const backend = await fakeBackend((socket, head, rest) => {
    heads.push(head);
    socket.write(
      'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n' +
        'X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n',
    );
    if (rest.length) socket.write(rest);
    socket.on('data', (c: Buffer) => socket.write(c));
  });
  cleanups.push(() => backend.close());
  return { port: backend.port, heads };
}

/** One masked binary WebSocket frame, as a client sends it (RFC 6455 §5.2). */
function clientFrame(payload: Buffer): Buffer {
  const len = payload.length;
  const header = len < 126 ? Buffer.alloc(2) : len < 65536 ? Buffer.alloc(4) : Buffer.alloc(10);
  header[0] = 0x82;
  if (len < 126) header[1] = 0x80 | len;
  else if (len < 65536) {
    header[1] = 0x80 | 126;
    header.writeUInt16BE(len, 2);
  } else {
    header[1] = 0x80 | 127;
    header.writeBigUInt64BE(BigInt(len), 2);
  }
  const mask = randomBytes(4);
  const masked = Buffer.from(payload);
  for (let i = 0; i < masked.length; i++) masked[i]! ^= mask[i & 3]!;
  return Buffer.concat([header, mask, masked]);
}

/**
 * A raw WebSocket client for the tunnel: ws refuses `SPDY/3.1+portforward.k8s.io` as a
 * subprotocol (not an RFC 7230 token), as gorilla/websocket, which kubectl uses, does not.
 * Resolves after the 101 with a sender and the binary payloads received so far.
 */
async function openTunnel(server: ApiServer) {
  const socket = net.connect(server.port, '127.0.0.1');
  await once(socket, 'connect');
  socket.on('error', () => {});
  socket.write(
    'GET /api/v1/namespaces/default/pods/demo/portforward?ports=80 HTTP/1.1\r\n' +
      `Host: 127.0.0.1:${server.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
      `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n` +
      `Sec-WebSocket-Protocol: ${TUNNEL_PROTOCOL}\r\nAuthorization: Bearer ${ADMIN}\r\n\r\n`,
  );
  const { head, rest } = await readHead(socket);
  let buf = rest;
  const received: Buffer[] = [];
  let total = 0;
  const onBytes = (c: Buffer): void => {
    buf = Buffer.concat([buf, c]);
    // Server frames are unmasked; only binary data frames are expected here.
    for (;;) {
      if (buf.length < 2) return;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (buf.length < at + len) return;
      if ((buf[0]! & 0x0f) === 0x2) {
        received.push(buf.subarray(at, at + len));
        total += len;
      }
      buf = buf.subarray(at + len);
    }
  };
  socket.on('data', onBytes);
  socket.resume();
  return {
    head,
    socket,
    send: (b: Buffer) => socket.write(clientFrame(b)),
    total: () => total,
    data: () => Buffer.concat(received),
  };
}

/** Sends `data` through the tunnel in 64 KiB messages and waits until all of it came back. */
async function echoThroughTunnel(server: ApiServer, data: Buffer) {
  const tunnel = await openTunnel(server);
  expect(tunnel.head).toMatch(/^HTTP\/1\.1 101 /);
  expect(tunnel.head).toContain(`Sec-WebSocket-Protocol: ${TUNNEL_PROTOCOL}`);
  const started = performance.now();
  for (let at = 0; at < data.length; at += 64 * 1024) {
    if (!tunnel.send(data.subarray(at, at + 64 * 1024))) await once(tunnel.socket, 'drain');
  }
  const deadline = Date.now() + 40_000;
  while (tunnel.total() < data.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const ms = performance.now() - started;
  tunnel.socket.destroy();
  return { ms, out: tunnel.data() };
}

describe('--max-connection-bytes-per-sec on the port-forward tunnel', () => {
  it('limits the tunnel: 2 MiB echoed at 512 KiB/s takes seconds and arrives intact', async () => {
    const kubelet = await echoKubelet();
    const server = await apiserver(kubelet.port, RATE);
    const data = randomBytes(SIZE);
    const res = await echoThroughTunnel(server, data);
    // The tunnel dialled the kubelet with a SPDY port-forward upgrade.
    expect(kubelet.heads).toHaveLength(1);
    expect(kubelet.heads[0]).toMatch(/^POST \/portForward\/default\/demo/);
    expect(res.out.length).toBe(SIZE);
    expect(sha(res.out)).toBe(sha(data));
    expect(res.ms).toBeGreaterThan(2_000);
    expect(res.ms).toBeLessThan(30_000);
  }, 60_000);

  it('leaves the tunnel alone without a limit', async () => {
    const kubelet = await echoKubelet();
    const server = await apiserver(kubelet.port, 0);
    const data = randomBytes(SIZE);
    const res = await echoThroughTunnel(server, data);
    expect(sha(res.out)).toBe(sha(data));
    expect(res.ms).toBeLessThan(2_000);
  }, 30_000);
});
