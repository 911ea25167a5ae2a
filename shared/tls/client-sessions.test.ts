import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import { UpgradeAwareHandler } from '../proxy/upgrade-aware-handler.js';
import { dialSpdy } from '../spdy/dial.js';
import { resumingTlsOptions } from './client-sessions.js';
import { ensureCa } from './certificate-authority.js';
import { issueClientCert, issueServingCert } from './cert-issuer.js';

/** What the backend saw of one TLS connection. */
interface Seen {
  reused: boolean;
  authorized: boolean;
  cn: string | undefined;
}

let dir = '';
let backend: https.Server;
let backendUrl: URL;
let proxy: http.Server;
let clientTls: ConnectionOptions;
const seen: Seen[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-sessions-'));
  const ca = await ensureCa(dir);
  const serving = await issueServingCert(ca, 'backend', { ipAddresses: ['127.0.0.1'] });
  const client = await issueClientCert(ca, 'kube-apiserver-kubelet-client', ['system:masters']);
  const read = (f: string): Buffer => fs.readFileSync(f);
  // A kubelet-like backend: verifies client certificates, answers every upgrade with 101.
  backend = https.createServer({
    cert: read(serving.certFile),
    key: read(serving.keyFile),
    ca: read(ca.certFile),
    requestCert: true,
    rejectUnauthorized: false,
  });
  backend.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
    const s = req.socket as TLSSocket;
    seen.push({
      reused: s.isSessionReused(),
      authorized: s.authorized,
      cn: [s.getPeerCertificate().subject?.CN ?? []].flat()[0],
    });
    socket.end(
      `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: ${req.headers.upgrade}\r\n\r\n`,
    );
  });
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendUrl = new URL(`https://127.0.0.1:${(backend.address() as net.AddressInfo).port}/exec`);
  // The same options object on every dial, as the apiserver's kubelet TLS settings are.
  clientTls = { ca: read(ca.certFile), cert: read(client.certFile), key: read(client.keyFile) };
  proxy = http.createServer();
  proxy.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
    new UpgradeAwareHandler({ location: backendUrl, tls: clientTls, upgradeRequired: true }).handleUpgrade(
      req,
      socket,
      head,
    ),
  );
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  backend.closeAllConnections();
  proxy.closeAllConnections();
  await Promise.all([
    new Promise((resolve) => backend.close(resolve)),
    new Promise((resolve) => proxy.close(resolve)),
  ]);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** One upgrade through the proxy; resolves once the 101 is back. */
function upgradeThroughProxy(): Promise<void> {
  return new Promise((resolve, reject) => {
    const port = (proxy.address() as net.AddressInfo).port;
    const req = http.request({
      host: '127.0.0.1',
      port,
      path: '/exec',
      headers: { Connection: 'Upgrade', Upgrade: 'SPDY/3.1' },
    });
    req.on('upgrade', (_res, socket: Duplex) => {
      socket.destroy();
      resolve();
    });
    req.on('response', (res) => reject(new Error(`status ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('per-dial TLS sessions are resumed', () => {
  it('the UpgradeAwareHandler resumes its session with the backend, whose client certificate still counts', async () => {
    seen.length = 0;
    for (let i = 0; i < 3; i++) await upgradeThroughProxy();
    expect(seen.map((s) => s.reused)).toEqual([false, true, true]);
    for (const s of seen) {
      expect(s.authorized).toBe(true);
      expect(s.cn).toBe('kube-apiserver-kubelet-client');
    }
  });

  it('a SPDY dial resumes too, and other client options do not share the session', async () => {
    seen.length = 0;
    const dial = async (tls: ConnectionOptions): Promise<void> => {
      const d = await dialSpdy({ url: backendUrl.href, tls }, ['v4.channel.k8s.io']);
      d.socket.destroy();
    };
    await dial(clientTls);
    await dial(clientTls);
    // Other options (no client certificate): their own context, so a full handshake, anonymous.
    await dial({ ca: clientTls.ca });
    expect(seen.map((s) => [s.reused, s.cn])).toEqual([
      [true, 'kube-apiserver-kubelet-client'],
      [true, 'kube-apiserver-kubelet-client'],
      [false, undefined],
    ]);
  });
});

describe('the session cache key', () => {
  it('holds the name the certificate was checked against: a session is never resumed for another name', () => {
    const options: ConnectionOptions = {};
    const first = resumingTlsOptions(options, '127.0.0.1', 443, 'kubelet-a');
    const socket = new EventEmitter() as unknown as TLSSocket;
    first.remember(socket);
    socket.emit('session', Buffer.from('ticket'));
    expect(resumingTlsOptions(options, '127.0.0.1', 443, 'kubelet-a').options.session).toEqual(
      Buffer.from('ticket'),
    );
    expect(resumingTlsOptions(options, '127.0.0.1', 443, 'kubelet-b').options.session).toBeUndefined();
    expect(resumingTlsOptions(options, '127.0.0.1', 443).options.session).toBeUndefined();
  });
});
