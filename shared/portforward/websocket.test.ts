/**
 * The WebSocket port-forward server session and tunnel client against each other on loopback,
 * with a test splice standing in for the runtime's dialer (cri-shim/port-forward.ts does it for
 * real, tested in cri-shim/port-forward.test.ts).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { Duplex } from 'node:stream';
import WebSocket from 'ws';
import { closeServer, listen } from '../test-support/loopback.js';
import { parsePortsQuery } from './protocol.js';
import { openPortForwardTunnel } from './websocket-client.js';
import { acceptPortForwardSession, type PortForwardServerSession } from './websocket-server.js';

let server: http.Server;
let port: number;
const sessions: PortForwardServerSession[] = [];
const protocolErrors: string[] = [];

beforeAll(async () => {
  server = http.createServer((_req, res) => res.writeHead(400).end());
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => {
    const ports = parsePortsQuery(new URL(req.url!, 'http://x').searchParams);
    const session = acceptPortForwardSession(req, socket, head, ports);
    if (!session) return;
    sessions.push(session);
    session.on('protocolError', (e) => protocolErrors.push(e.code));
    // "Forwarding": port 1 answers in upper case then ends; port 2 fails; port 3 says bye and ends.
    for (const s of session.streams) {
      if (s.port === 2) {
        s.error.write('no such port');
        s.data.end();
        continue;
      }
      if (s.port === 3) {
        s.data.end('bye');
        continue;
      }
      s.data.on('data', (c: Buffer) => s.data.end(c.toString().toUpperCase()));
    }
    void Promise.all(session.streams.map((s) => once(s.data, 'finish'))).then(() => session.finish());
  });
  port = await listen(server);
});

afterAll(async () => {
  await Promise.all(sessions.map((s) => s.close()));
  await closeServer(server);
});

test('a tunnel carries one exchange; the server finishing ends the readable side cleanly', async () => {
  const t = await openPortForwardTunnel({ url: `http://127.0.0.1:${port}/pf`, port: 1 });
  const chunks: Buffer[] = [];
  t.on('data', (c: Buffer) => chunks.push(c));
  t.write('hello');
  await once(t, 'end');
  expect(Buffer.concat(chunks).toString()).toBe('HELLO');
});

test('the error channel text becomes a REMOTE_ERROR; other ports of the URL are ignored', async () => {
  const t = await openPortForwardTunnel({ url: `http://127.0.0.1:${port}/pf?port=3&port=2`, port: 2 });
  const [err] = (await once(t, 'error')) as [Error & { code: string }];
  expect(err).toMatchObject({ code: 'REMOTE_ERROR', message: 'no such port' });
  await expect(
    openPortForwardTunnel({ url: `http://127.0.0.1:${port}/pf?port=1`, port: 9 }),
  ).rejects.toMatchObject({
    code: 'BAD_PORT',
  });
});

test('a client writing on an error channel is a protocol error: close 1002', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/pf?port=1`, ['v4.channel.k8s.io']);
  await once(ws, 'open');
  ws.send(Buffer.from([1, 65]));
  const [code] = (await once(ws, 'close')) as [number];
  expect(code).toBe(1002);
  expect(protocolErrors).toContain('UNKNOWN_CHANNEL');
});

test('subprotocols we do not speak are refused before the upgrade', async () => {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/pf?port=1`, ['v5.channel.k8s.io']);
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
  expect(res.statusCode).toBe(400);
  ws.on('error', () => {});
  ws.terminate();
  // No subprotocol at all is the binary protocol, as wsstream's "" entry.
  const plain = new WebSocket(`ws://127.0.0.1:${port}/pf?port=1`);
  const first = once(plain, 'message');
  await once(plain, 'open');
  expect(plain.protocol).toBe('');
  expect(((await first) as [Buffer])[0]).toEqual(Buffer.from([0, 1, 0]));
  plain.close();
  await once(plain, 'close');
});
