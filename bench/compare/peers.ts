/**
 * The peers of the comparison bench, each in its own process: the byte source, raw Node splices,
 * node-http-proxy, one UpgradeAwareHandler hop (peer-main.ts), and nginx and haproxy from Debian
 * with one worker each (configuration written to the bench's temp dir). `measurePeer` drives one
 * upgraded connection through a chain of them and times the bytes.
 *
 * Every peer is told where to dial with a URL; TLS on a hop means TLS on the listening side of
 * that peer (and on the dialling side of whoever dials it), so "TLS" paths are TLS on every hop.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { pour } from './stats.js';

export interface Cert {
  certFile: string;
  keyFile: string;
  /** cert and key in one file (haproxy's `crt`). */
  pemFile: string;
}

/** A self-signed EC P-256 certificate for 127.0.0.1 (the lab's key type, so handshakes compare). */
export function makeCert(dir: string): Cert {
  const certFile = path.join(dir, 'peer.crt');
  const keyFile = path.join(dir, 'peer.key');
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1'],
    ],
    { stdio: 'ignore' },
  );
  const pemFile = path.join(dir, 'peer.pem');
  fs.writeFileSync(pemFile, fs.readFileSync(certFile, 'utf8') + fs.readFileSync(keyFile, 'utf8'));
  return { certFile, keyFile, pemFile };
}

export interface Peer {
  name: string;
  port: number;
  /** The source's plain TCP listener (port-forward target), when asked for. */
  tcpPort?: number;
  tls: boolean;
  pid: number;
  stop(): Promise<void>;
}

const here = path.dirname(fileURLToPath(import.meta.url));

/** Waits for the lines a process prints (`READY 123`), bounded. */
function readPorts(child: ChildProcess, want: string[], what: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const got: Record<string, number> = {};
    const timer = setTimeout(() => reject(new Error(`${what}: not ready after 15 s`)), 15_000);
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      const [word, port] = line.split(' ');
      if (word && want.includes(word)) got[word] = Number(port);
      if (want.every((w) => got[w])) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready`));
    });
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
}

export interface NodePeerOptions {
  tls?: Cert;
  target?: string;
  /** source only: also listen on plain TCP, writing this many bytes per connection (0: read). */
  tcpBytes?: number;
  nodeArgs?: string[];
}

/** A peer-main.ts process. */
export async function startNodePeer(role: string, opts: NodePeerOptions = {}): Promise<Peer> {
  const args = [...(opts.nodeArgs ?? []), path.join(here, 'peer-main.js'), role];
  if (opts.tls) args.push('--tls', '--cert', opts.tls.certFile, '--key', opts.tls.keyFile);
  if (opts.target) args.push('--target', opts.target);
  if (opts.tcpBytes !== undefined) args.push('--tcp', '--tcp-bytes', String(opts.tcpBytes));
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const want = opts.tcpBytes !== undefined ? ['READY', 'TCP'] : ['READY'];
  const ports = await readPorts(child, want, role);
  return {
    name: role,
    port: ports.READY!,
    tcpPort: ports.TCP,
    tls: !!opts.tls,
    pid: child.pid!,
    stop: stopper(child),
  };
}

async function freePort(): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1');
  await new Promise((r) => s.once('listening', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** Polls until something accepts on the port (bounded). */
async function waitListening(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what}: nothing listening on ${port} after 10 s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** nginx (Debian), one worker, as an upgrade-carrying reverse proxy in front of `target`. */
export async function startNginx(dir: string, target: URL, cert?: Cert): Promise<Peer> {
  const port = await freePort();
  const conf = path.join(dir, `nginx-${port}.conf`);
  const scheme = target.protocol === 'https:' ? 'https' : 'http';
  fs.writeFileSync(
    conf,
    `user root;
worker_processes 1;
daemon off;
pid ${dir}/nginx-${port}.pid;
error_log ${dir}/nginx-${port}.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/nginx-body; proxy_temp_path ${dir}/nginx-proxy;
  fastcgi_temp_path ${dir}/nginx-fcgi; uwsgi_temp_path ${dir}/nginx-uwsgi; scgi_temp_path ${dir}/nginx-scgi;
  server {
    listen 127.0.0.1:${port}${cert ? ' ssl' : ''};
    ${cert ? `ssl_certificate ${cert.certFile}; ssl_certificate_key ${cert.keyFile};` : ''}
    location / {
      proxy_pass ${scheme}://${target.host};
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_buffering off;
      proxy_read_timeout 1h;
    }
  }
}
`,
  );
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port, 'nginx');
  return { name: 'nginx', port, tls: !!cert, pid: child.pid!, stop: stopper(child) };
}

/** haproxy (Debian), one thread, HTTP mode (it switches to a tunnel after the 101). */
export async function startHaproxy(dir: string, target: URL, cert?: Cert): Promise<Peer> {
  const port = await freePort();
  const conf = path.join(dir, `haproxy-${port}.cfg`);
  fs.writeFileSync(
    conf,
    `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 5s
  timeout client 60s
  timeout server 60s
  timeout tunnel 1h
frontend bench
  bind 127.0.0.1:${port}${cert ? ` ssl crt ${cert.pemFile}` : ''}
  default_backend source
backend source
  server s ${target.host}${target.protocol === 'https:' ? ' ssl verify none' : ''}
`,
  );
  const child = spawn('haproxy', ['-db', '-f', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitListening(port, 'haproxy');
  return { name: 'haproxy', port, tls: !!cert, pid: child.pid!, stop: stopper(child) };
}

export interface PeerRun {
  /** MiB/s from the 101 to the last byte (down) or to the source's acknowledgement (up). */
  mibPerSec: number;
  /** ms from the first byte sent to the 101. */
  to101Ms: number;
}

const MiB = 1024 * 1024;

/**
 * One upgraded connection to `port` (TLS if `secure`): `down` reads `bytes` bytes, `up` writes
 * them and waits for the source's `k`. Throws when a byte is missing (the count must be exact).
 */
export function measurePeer(
  port: number,
  secure: boolean,
  dir: 'down' | 'up',
  bytes: number,
  timeoutMs = 120_000,
): Promise<PeerRun> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const socket = secure
      ? tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false })
      : net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(
      () => fail(new Error(`${dir} through ${port}: no result in ${timeoutMs} ms`)),
      timeoutMs,
    );
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.once(secure ? 'secureConnect' : 'connect', () => {
      socket.write(
        `GET /${dir}?bytes=${bytes} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\n` +
          `Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: YmVuY2hiZW5jaGJlbmNoMQ==\r\n\r\n`,
      );
    });
    let head = Buffer.alloc(0);
    let t101 = 0;
    let got = 0;
    const finish = (): void => {
      clearTimeout(timer);
      const seconds = (performance.now() - t101) / 1000;
      socket.destroy();
      resolve({ mibPerSec: bytes / MiB / seconds, to101Ms: t101 - start });
    };
    const onBody = (c: Buffer): void => {
      got += c.length;
      if (dir === 'down' && got >= bytes) finish();
      if (dir === 'up' && got >= 1) finish();
    };
    const onHead = (c: Buffer): void => {
      head = Buffer.concat([head, c]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!head.subarray(0, 13).toString('latin1').startsWith('HTTP/1.1 101')) {
        fail(new Error(`no 101 through ${port}: ${head.subarray(0, 60).toString('latin1')}`));
        return;
      }
      t101 = performance.now();
      socket.off('data', onHead);
      socket.on('data', onBody);
      socket.once('end', () => {
        if ((dir === 'down' && got < bytes) || (dir === 'up' && got < 1))
          fail(new Error(`${dir} through ${port}: ended after ${got} of ${bytes} bytes`));
      });
      const rest = head.subarray(end + 4);
      if (rest.length) onBody(rest);
      if (dir === 'up') pour(socket, bytes);
    };
    socket.on('data', onHead);
  });
}
