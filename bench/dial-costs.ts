/**
 * What setting up one exec's connection costs a hop, measured in one process on loopback
 * (kexec-lab issue 16): a TLS dial with a client certificate to a server that verifies it — a
 * new context per dial, one shared context, a shared context resuming the last session (what
 * shared/tls/client-sessions.ts does) — and SPDY stream set-up (three streams opened and
 * replied, as an exec without stdin opens them). Prints p50 and CPU per dial (both ends).
 *
 * Run: npm run build && node dist/bench/dial-costs.js [--count 200]
 * Only loopback is used; certificates are made by openssl in a temp dir.
 */
import fs from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls, { type ConnectionOptions } from 'node:tls';
import { parseArgs } from 'node:util';
import { SpdyConnection } from '../shared/spdy/connection.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';
import { issueClientCert, issueServingCert } from '../shared/tls/cert-issuer.js';
import { resumingTlsOptions } from '../shared/tls/client-sessions.js';
import { percentile } from './compare/stats.js';

const { values } = parseArgs({ options: { count: { type: 'string', default: '200' } } });
const count = Number(values.count);

async function measure(name: string, once: () => Promise<void>): Promise<void> {
  for (let i = 0; i < 5; i++) await once();
  const ms: number[] = [];
  const cpu = process.cpuUsage();
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await once();
    ms.push(performance.now() - t0);
  }
  const used = process.cpuUsage(cpu);
  console.log(
    `${name.padEnd(44)} p50 ${percentile(ms, 50).toFixed(2).padStart(6)} ms   CPU ${((used.user + used.system) / 1000 / count).toFixed(2)} ms per dial`,
  );
}

async function tlsDials(dir: string): Promise<void> {
  const ca = await ensureCa(dir);
  const serving = await issueServingCert(ca, 'server', { ipAddresses: ['127.0.0.1'] });
  const client = await issueClientCert(ca, 'kube-apiserver-kubelet-client', ['system:masters']);
  const read = (f: string): Buffer => fs.readFileSync(f);
  const server = https.createServer({
    ...{ cert: read(serving.certFile), key: read(serving.keyFile), ca: read(ca.certFile) },
    ...{ requestCert: true, rejectUnauthorized: false },
  });
  server.on('upgrade', (_req, socket: Duplex) =>
    socket.end('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: bench\r\n\r\n'),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const options: ConnectionOptions = {
    ca: read(ca.certFile),
    cert: read(client.certFile),
    key: read(client.keyFile),
  };
  const shared = tls.createSecureContext(options);
  const dial = (opts: ConnectionOptions, onSocket?: (s: tls.TLSSocket) => void): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = https.request({
        ...opts,
        ...{ host: '127.0.0.1', port, agent: false, headers: { Connection: 'Upgrade', Upgrade: 'bench' } },
      });
      if (onSocket) req.once('socket', (s) => onSocket(s as tls.TLSSocket));
      req.on('upgrade', (_res, socket: Duplex) => {
        socket.destroy();
        resolve();
      });
      req.on('error', reject);
      req.end();
    });
  try {
    await measure('TLS dial, new context each dial', () => dial(options));
    await measure('TLS dial, one shared context', () => dial({ ...options, secureContext: shared }));
    await measure('TLS dial, shared context + resumed session', () => {
      const t = resumingTlsOptions(options, '127.0.0.1', port);
      return dial(t.options, t.remember);
    });
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

async function spdyStreams(): Promise<void> {
  const server = net.createServer((s) => {
    const c = new SpdyConnection(s, { role: 'server' });
    c.on('stream', (stream) => {
      stream.accept();
      stream.resume();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  try {
    await measure('SPDY connection + 3 streams replied', async () => {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((resolve) => socket.once('connect', resolve));
      const c = new SpdyConnection(socket, { role: 'client' });
      const streams = ['error', 'stdout', 'stderr'].map((t) => c.createStream({ streamType: t }));
      await Promise.all(streams.map((s) => s.waitReply(5000)));
      socket.destroy();
    });
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-dial-costs-'));
  try {
    console.log(`${count} dials each, load ${os.loadavg()[0]!.toFixed(1)}`);
    await tlsDials(dir);
    await spdyStreams();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// A failure rejects the top-level await: Node prints it and exits 1.
await main();
// Nothing may keep the process up once the figures are out.
process.exit(0);
