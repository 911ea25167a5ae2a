/**
 * Malformed and hostile input against the running services: each gets a clean refusal and a
 * closed connection, and the lab keeps serving afterwards (checked after every case).
 *
 * - oversized request lines/headers (Node's maxHeaderSize) to the apiserver and the kubelet-sim;
 * - WebSocket abuse on a v5 exec through the apiserver (its StreamTranslator terminates the
 *   WebSocket): an oversized message (ws maxPayload → 1009), invalid UTF-8 in a text frame (1007),
 *   an unknown channel and a CLOSE of the wrong length (1002); and invalid UTF-8 on a base64
 *   session spliced through to the cri-shim's streaming server;
 * - SPDY abuse over a real upgrade spliced to the cri-shim: a SETTINGS frame announcing too many
 *   entries (CVE-2026-35469 in spdystream) and an oversized control frame: GOAWAY and close;
 * - path tricks in pod and container names; command injection through `command=` values (argv,
 *   never a shell string).
 * Needs `npm run build`.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { MAX_CLIENT_MESSAGE_BYTES } from '../shared/remotecommand/websocket-server.js';
import { startLab, type Lab } from '../lab/lab.js';
import { request } from './support/https.js';
import { labExec, labExecUrl } from './support/faults.js';
import { runKexec } from './support/processes.js';

let dir = '';
let lab: Lab;
let ca: Buffer;
const logs: string[] = [];
let died = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'malformed-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: (l) => logs.push(l) });
  ca = fs.readFileSync(lab.caFile!);
  void lab.failed.then((f) => (died = `${f.service} exited (${f.code ?? f.signal})`));
}, 60_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** After each case: nobody died, and an exec still runs end to end. */
afterEach(async () => {
  expect(died).toBe('');
  const r = await labExec(lab, ['echo', 'alive']);
  expect({ code: r.exitCode, out: r.stdout }).toEqual({ code: 0, out: 'alive\n' });
});

/** Writes `bytes` on a fresh connection; resolves with everything read until the server closes. */
function rawExchange(url: string, bytes: Buffer | string, timeoutMs = 5000): Promise<string> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const port = Number(u.port);
    const socket: Duplex =
      u.protocol === 'https:'
        ? tls.connect({ host: u.hostname, port, ca, servername: 'localhost' })
        : net.connect(port, u.hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        new Error(`server did not close within ${timeoutMs} ms; got ${Buffer.concat(chunks).toString()}`),
      );
    }, timeoutMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {}); // a reset after the answer is fine
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    socket.write(bytes);
  });
}

describe('oversized request heads', () => {
  const huge = 'a'.repeat(64 * 1024);
  it.each([
    [
      'apiserver',
      'request line',
      () => lab.apiserverUrl,
      `GET /healthz?x=${huge} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ],
    [
      'apiserver',
      'header',
      () => lab.apiserverUrl,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${huge}\r\n\r\n`,
    ],
    [
      'kubelet-sim',
      'request line',
      () => lab.kubeletUrl,
      `GET /healthz?x=${huge} HTTP/1.1\r\nHost: x\r\n\r\n`,
    ],
    [
      'kubelet-sim',
      'header',
      () => lab.kubeletUrl,
      `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${huge}\r\n\r\n`,
    ],
  ])('%s: an oversized %s is refused and the connection closed', async (_svc, _what, url, head) => {
    const answer = await rawExchange(url(), head);
    // As Go's net/http: 431, here with a Status body.
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('"reason":"RequestHeaderFieldsTooLarge"');
  });
});

/** Opens a raw v5 exec WebSocket through the apiserver, with stdin. */
async function openExec(protocol = 'v5.channel.k8s.io', command = ['cat']): Promise<WebSocket> {
  const url = labExecUrl(lab, command, { stdin: true }).replace(/^https/, 'wss');
  const ws = new WebSocket(url, [protocol], { ca, headers: { Authorization: `Bearer ${lab.adminToken}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

function closeOf(ws: WebSocket, timeoutMs = 5000): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not closed within ${timeoutMs} ms`)), timeoutMs);
    ws.on('error', () => {});
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString() });
    });
  });
}

describe('WebSocket abuse', () => {
  it('closes with 1009 on a message over the size limit', async () => {
    const ws = await openExec();
    const closed = closeOf(ws);
    // Only the frame header, announcing one byte over the limit (32 MiB, as x/net/websocket): ws
    // refuses at the header.
    const header = Buffer.alloc(14);
    header[0] = 0x82; // FIN, binary
    header[1] = 0x80 | 127; // masked, 64-bit length
    header.writeBigUInt64BE(BigInt(MAX_CLIENT_MESSAGE_BYTES + 1), 2);
    (ws as unknown as { _socket: Duplex })._socket.write(header);
    expect((await closed).code).toBe(1009);
  });

  it('closes with 1007 on invalid UTF-8 in a text frame', async () => {
    const ws = await openExec();
    const closed = closeOf(ws);
    ws.send(Buffer.from([0x30, 0xc3, 0x28, 0xff]), { binary: false });
    expect((await closed).code).toBe(1007);
  });

  it('closes with 1007 on invalid UTF-8 in a base64 session spliced to the runtime', async () => {
    const ws = await openExec('v4.base64.channel.k8s.io');
    const closed = closeOf(ws);
    ws.send(Buffer.from([0x30, 0xed, 0xa0, 0x80]), { binary: false });
    expect((await closed).code).toBe(1007);
  });

  it('closes with 1002 on an unknown channel', async () => {
    const ws = await openExec();
    const closed = closeOf(ws);
    ws.send(Buffer.from([9, 1, 2, 3]));
    expect(await closed).toEqual({ code: 1002, reason: 'unknown channel 9' });
  });

  it('closes with 1002 on a CLOSE of the wrong length', async () => {
    const ws = await openExec();
    const closed = closeOf(ws);
    ws.send(Buffer.from([255, 0, 0]));
    expect(await closed).toEqual({ code: 1002, reason: 'close message must be exactly 2 bytes, got 3' });
  });
});

/** A SPDY/3.1 exec upgrade through the apiserver (spliced to the kubelet and on to the runtime). */
async function spdyUpgrade(): Promise<Duplex> {
  const u = new URL(labExecUrl(lab, ['cat'], { stdin: true }));
  const socket = tls.connect({ host: u.hostname, port: Number(u.port), ca, servername: 'localhost' });
  socket.write(
    `POST ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nAuthorization: Bearer ${lab.adminToken}\r\n` +
      'Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n' +
      'Content-Length: 0\r\n\r\n',
  );
  let head = '';
  const deadline = Date.now() + 5000;
  while (!head.includes('\r\n\r\n') && Date.now() < deadline) {
    const chunk = await new Promise<Buffer | null>((resolve) => {
      const t = setTimeout(() => resolve(null), 500);
      socket.once('data', (c: Buffer) => {
        clearTimeout(t);
        resolve(c);
      });
    });
    if (chunk) head += chunk.toString('latin1');
  }
  expect(head).toMatch(/^HTTP\/1\.1 101 /);
  return socket;
}

/** Reads until the connection closes (bounded); returns the bytes after the upgrade. */
function untilClosed(socket: Duplex, timeoutMs = 5000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(
      () => reject(new Error(`connection still open after ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

/** A SPDY/3 control frame header: version 3, `type`, flags 0, 24-bit length. */
function controlHeader(type: number, length: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(0x8003, 0);
  b.writeUInt16BE(type, 2);
  b.writeUInt32BE(length & 0xffffff, 4);
  return b;
}

/** Whether `bytes` contain a GOAWAY control frame (type 7). */
const hasGoAway = (bytes: Buffer): boolean => bytes.includes(Buffer.from([0x80, 0x03, 0x00, 0x07]));

describe('SPDY abuse', () => {
  it('answers a SETTINGS frame announcing a million entries with GOAWAY and a close', async () => {
    const socket = await spdyUpgrade();
    const closed = untilClosed(socket);
    const body = Buffer.alloc(4 + 8 * 4);
    body.writeUInt32BE(1_000_000, 0); // entries claimed; only 4 present
    socket.write(Buffer.concat([controlHeader(4, body.length), body]));
    expect(hasGoAway(await closed)).toBe(true);
  });

  it('answers an oversized control frame with GOAWAY and a close', async () => {
    const socket = await spdyUpgrade();
    const closed = untilClosed(socket);
    socket.write(controlHeader(1, 0xffffff)); // a 16 MiB SYN_STREAM announced
    socket.write(Buffer.alloc(4096));
    expect(hasGoAway(await closed)).toBe(true);
  });
});

describe('path tricks', () => {
  const get = (p: string) =>
    request(new URL(p, lab.apiserverUrl), { headers: { Authorization: `Bearer ${lab.adminToken}` }, ca });

  it.each([
    '/api/v1/namespaces/default/pods/..%2F..%2Fetc%2Fpasswd/exec?command=ls',
    '/api/v1/namespaces/default/pods/%2E%2E/exec?command=ls',
    '/api/v1/namespaces/default/pods/demo%2Fexec/exec?command=ls',
    '/api/v1/namespaces/..%2Fkube-system/pods/demo/exec?command=ls',
    '/api/v1/namespaces/default/pods/demo/exec?command=ls&container=..%2F..%2Fdemo',
    '/api/v1/namespaces/default/pods/demo/exec?command=ls&container=demo%2F..%2F..',
  ])('%s is a 4xx Status, never a file', async (p) => {
    const r = await get(p);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.json()).toMatchObject({ kind: 'Status', status: 'Failure' });
    expect(r.text).not.toMatch(/root:x:0:0/);
  });

  it('refuses the same names over an upgrade', async () => {
    for (const container of ['../demo', 'demo/../../x', '%2e%2e']) {
      const res = await runKexec(['--kubeconfig', lab.kubeconfigPath, 'demo', '-c', container, '--', 'ls']);
      expect({ container, code: res.code }).toEqual({ container, code: 1 });
      expect(res.stderr).toMatch(/^(Error from server|error:)/m);
      expect(res.stdout.length).toBe(0);
    }
  });
});

describe('command injection', () => {
  it('passes command values as argv, verbatim', async () => {
    const tricks = [';rm -rf /', '$(id)', '`id`', '&& echo pwned', '| cat /etc/shadow', '\'"\\', '\n;id'];
    const r = await labExec(lab, ['printf', '%s\\0', ...tricks]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(tricks);
  });
});
