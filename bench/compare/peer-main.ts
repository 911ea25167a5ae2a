/**
 * One peer of the comparison bench (bench/compare/main.ts), in a process of its own:
 *
 * - `source`: the far end of every peer path. An http(s) server that answers any upgrade with 101
 *   and then, on the upgraded connection, either writes `bytes` bytes and ends (`/down?bytes=N`,
 *   like a command's stdout) or reads `bytes` bytes and answers one byte `k` (`/up?bytes=N`, like
 *   stdin). It is also the port-forward target (a plain TCP listener on `--tcp`: writes
 *   `--tcp-bytes` at once, or reads what comes and answers `k` at the client's end).
 * - `splice`: a raw Node splice, no HTTP at all: every accepted connection is dialled through to
 *   `--target` and piped both ways (the anchor: what a proxy hop costs with nothing but copying).
 * - `http-proxy`: node-http-proxy (the `http-proxy` npm package) with `ws: true`.
 * - `uah`: one UpgradeAwareHandler hop (shared/proxy), as the apiserver and kubelet-sim run it.
 *
 * `--tls` serves TLS (cert and key from `--cert`/`--key`); a `--target` of `https:`/`tls:` is
 * dialled with TLS (the bench's self-signed certificate, not verified: the peers compare copying,
 * not trust). Prints `READY <port>` (and `TCP <port>` for the source) once listening.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { parseArgs } from 'node:util';
import type { Duplex } from 'node:stream';
import httpProxy from 'http-proxy';
import { UpgradeAwareHandler } from '../../shared/proxy/upgrade-aware-handler.js';
import { pour } from './stats.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tls: { type: 'boolean', default: false },
    cert: { type: 'string' },
    key: { type: 'string' },
    target: { type: 'string' },
    tcp: { type: 'boolean', default: false },
    'tcp-bytes': { type: 'string', default: '0' },
  },
});
const role = positionals[0];
const serverTls = values.tls
  ? { cert: fs.readFileSync(values.cert!), key: fs.readFileSync(values.key!) }
  : undefined;
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** A WebSocket 101 (haproxy checks Sec-WebSocket-Accept); what follows is raw bytes, not frames. */
function switching(key: string): string {
  const accept = createHash('sha1')
    .update(key + WS_GUID)
    .digest('base64');
  return `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`;
}

function listen(server: net.Server, line: string): void {
  server.listen(0, '127.0.0.1', () => {
    console.log(`${line} ${(server.address() as net.AddressInfo).port}`);
  });
}

/** Reads `total` bytes (or until the end), then answers `k` and ends. */
function swallow(socket: Duplex, total: number): void {
  let got = 0;
  const done = (): void => {
    socket.removeAllListeners('data');
    socket.end('k');
  };
  socket.on('data', (c: Buffer) => {
    got += c.length;
    if (total > 0 && got >= total) done();
  });
  if (total === 0) socket.once('end', done);
  socket.resume();
}

function source(): void {
  const onUpgrade = (req: http.IncomingMessage, socket: Duplex, head: Buffer): void => {
    const u = new URL(req.url ?? '/', 'http://x');
    const bytes = Number(u.searchParams.get('bytes') ?? '0');
    socket.on('error', () => socket.destroy());
    socket.write(switching(String(req.headers['sec-websocket-key'] ?? '')));
    if (u.pathname === '/up') {
      if (head.length) socket.unshift(head);
      swallow(socket, bytes);
    } else {
      pour(socket, bytes, () => socket.end());
      socket.resume();
    }
  };
  const server = serverTls ? https.createServer(serverTls) : http.createServer();
  server.on('request', (_req, res) => res.writeHead(426).end());
  server.on('upgrade', onUpgrade);
  listen(server, 'READY');
  if (values.tcp) {
    const tcpBytes = Number(values['tcp-bytes']);
    const tcp = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on('error', () => s.destroy());
      if (tcpBytes > 0) {
        pour(s, tcpBytes, () => s.end());
        s.resume();
      } else swallow(s, 0);
    });
    listen(tcp, 'TCP');
  }
}

function target(): URL {
  if (!values.target) throw new Error('--target is required');
  return new URL(values.target);
}

function splice(): void {
  const to = target();
  const secure = to.protocol === 'https:' || to.protocol === 'tls:';
  const onConnection = (client: net.Socket): void => {
    const backend = secure
      ? tls.connect({ host: to.hostname, port: Number(to.port), rejectUnauthorized: false })
      : net.connect({ host: to.hostname, port: Number(to.port) });
    const close = (): void => {
      client.destroy();
      backend.destroy();
    };
    client.on('error', close);
    backend.on('error', close);
    client.pipe(backend);
    backend.pipe(client);
  };
  const server = serverTls ? tls.createServer(serverTls, onConnection) : net.createServer(onConnection);
  listen(server, 'READY');
}

function nodeHttpProxy(): void {
  const to = target();
  const proxy = httpProxy.createProxyServer({ target: to.href, ws: true, secure: false });
  proxy.on('error', (_err, _req, res) => {
    if (res && 'destroy' in res) (res as Duplex).destroy();
  });
  const server = serverTls ? https.createServer(serverTls) : http.createServer();
  server.on('request', (req, res) => proxy.web(req, res));
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => proxy.ws(req, socket, head));
  listen(server, 'READY');
}

function upgradeAwareHop(): void {
  const handler = new UpgradeAwareHandler({
    location: target(),
    useRequestLocation: true,
    tls: { rejectUnauthorized: false },
  });
  const server = serverTls ? https.createServer(serverTls) : http.createServer();
  server.on('request', (req, res) => handler.handle(req, res));
  server.on('upgrade', (req, socket: Duplex, head: Buffer) => handler.handleUpgrade(req, socket, head));
  listen(server, 'READY');
}

const roles: Record<string, () => void> = {
  source,
  splice,
  'http-proxy': nodeHttpProxy,
  uah: upgradeAwareHop,
};
const run = role ? roles[role] : undefined;
if (!run) {
  console.error(
    `usage: peer-main.js ${Object.keys(roles).join('|')} [--tls --cert F --key F] [--target URL]`,
  );
  process.exit(2);
}
run();
// The bench ends a peer by closing its stdin (or with SIGTERM): nothing outlives the bench.
process.stdin.on('end', () => process.exit(0)).resume();
process.on('SIGTERM', () => process.exit(0));
