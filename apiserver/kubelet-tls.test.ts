/**
 * The apiserver → kubelet hop over https (`--kubelet-certificate-authority`,
 * `--kubelet-client-certificate`, `--kubelet-client-key`): the apiserver verifies the kubelet's
 * serving certificate against the CA and presents its own client certificate, on every path a
 * stream takes (spliced WebSocket, the StreamTranslator's SPDY, the port-forward tunnel, logs).
 * A kubelet whose certificate another CA issued — an impostor on the node's address — never sees a
 * request, so it never learns a command or gets the apiserver's credential.
 */
import fs from 'node:fs';
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { APISERVER_KUBELET_CLIENT, ADMIN_GROUP } from '../shared/auth/tokens.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { closeServer, listen } from '../shared/test-support/loopback.js';
import { issueClientCert, issueServingCert } from '../shared/tls/cert-issuer.js';
import { ensureCa, type CertificateAuthority } from '../shared/tls/certificate-authority.js';
import { kubeletTlsOptions } from './kubelet-client.js';
import type { ApiServer } from './server.js';
import { ADMIN, api, node, pod, serveEchoUntilKubelet, testServer } from './test-support/harness.js';

interface Seen {
  method: string;
  upgrade: string;
  /** CN of the verified client certificate ('' when none or unverified). */
  clientCert: string;
  authorization: boolean;
}

let dir = '';
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'apiserver-kubelet-tls-'));
  ca = await ensureCa(path.join(dir, 'pki'));
  otherCa = await ensureCa(path.join(dir, 'impostor'));
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/**
 * An https kubelet with a certificate from `issuer` that asks for client certificates from the lab
 * CA; its program echoes stdin and exits 3 once it has seen "kubelet".
 */
async function kubelet(issuer: CertificateAuthority): Promise<{ port: number; seen: Seen[] }> {
  const serving = await issueServingCert(issuer, 'kubelet', { ipAddresses: ['127.0.0.1'] });
  const seen: Seen[] = [];
  const record = (req: IncomingMessage): void => {
    const socket = req.socket as TLSSocket;
    seen.push({
      method: req.method!,
      upgrade: req.headers.upgrade ?? '',
      clientCert: socket.authorized ? String(socket.getPeerCertificate().subject?.CN ?? '') : '',
      authorization: req.headers.authorization !== undefined,
    });
  };
  const server = https.createServer({
    cert: fs.readFileSync(serving.certFile),
    key: fs.readFileSync(serving.keyFile),
    ca: fs.readFileSync(ca.certFile),
    requestCert: true,
    rejectUnauthorized: false,
  });
  server.on('request', (req: IncomingMessage, res) => {
    record(req);
    res.end('a log line\n');
  });
  server.on('upgrade', async (req: IncomingMessage, socket, head: Buffer) => {
    record(req);
    await serveEchoUntilKubelet(req, socket, head);
  });
  const port = await listen(server);
  cleanups.push(() => closeServer(server));
  return { port, seen };
}

/** An apiserver that dials kubelets over https with the lab CA and its client certificate. */
async function apiserverFor(kubeletPort: number): Promise<ApiServer> {
  const client = await issueClientCert(ca, APISERVER_KUBELET_CLIENT, [ADMIN_GROUP]);
  const server = await testServer({
    kubeletTls: {
      ca: fs.readFileSync(ca.certFile),
      cert: fs.readFileSync(client.certFile),
      key: fs.readFileSync(client.keyFile),
    },
  });
  cleanups.push(() => server.close());
  await api(server, 'POST', '/api/v1/nodes', { body: node('node-1', '127.0.0.1', kubeletPort) });
  await api(server, 'POST', '/api/v1/namespaces/default/pods', {
    body: pod('demo', { nodeName: 'node-1', containers: ['app'] }),
  });
  return server;
}

async function exec(server: ApiServer, protocols: string[]) {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const res = await runChannelClient({
    url: `${server.url}/api/v1/namespaces/default/pods/demo/exec?command=cat&stdin=true&stdout=true&stderr=true`,
    headers: { Authorization: `Bearer ${ADMIN}` },
    protocols,
    stdin: Readable.from([Buffer.from('hello '), Buffer.from('kubelet')]),
    stdout: out,
  });
  return { exitCode: res.exitCode, text, message: res.status?.message ?? '' };
}

const APISERVER_CERT = { clientCert: APISERVER_KUBELET_CLIENT, authorization: false };

describe('apiserver → kubelet over https', () => {
  it('translates a v5 exec to SPDY over TLS with its client certificate and no token', async () => {
    const k = await kubelet(ca);
    const server = await apiserverFor(k.port);
    const res = await exec(server, ['v5.channel.k8s.io']);
    expect(res).toEqual({ exitCode: 3, text: 'hello kubelet', message: expect.any(String) });
    expect(k.seen).toEqual([{ method: 'POST', upgrade: 'SPDY/3.1', ...APISERVER_CERT }]);
  });

  it('splices a v4 exec over TLS with its client certificate', async () => {
    const k = await kubelet(ca);
    const server = await apiserverFor(k.port);
    const res = await exec(server, ['v4.channel.k8s.io']);
    expect(res.exitCode).toBe(3);
    expect(res.text).toBe('hello kubelet');
    expect(k.seen).toEqual([{ method: 'GET', upgrade: 'websocket', ...APISERVER_CERT }]);
  });

  it('proxies logs over TLS with its client certificate', async () => {
    const k = await kubelet(ca);
    const server = await apiserverFor(k.port);
    const res = await api(server, 'GET', '/api/v1/namespaces/default/pods/demo/log');
    expect({ code: res.code, text: res.text }).toEqual({ code: 200, text: 'a log line\n' });
    expect(k.seen).toEqual([{ method: 'GET', upgrade: '', ...APISERVER_CERT }]);
  });

  describe('a kubelet whose certificate another CA issued', () => {
    it.each([
      ['v5 (translated)', 'v5.channel.k8s.io'],
      ['v4 (spliced)', 'v4.channel.k8s.io'],
    ])('refuses a %s exec before the kubelet sees a request', async (_name, protocol) => {
      const k = await kubelet(otherCa);
      const server = await apiserverFor(k.port);
      const res = await exec(server, [protocol]).catch((err: Error) => ({
        exitCode: undefined,
        text: '',
        message: err.message,
      }));
      expect(res.text).toBe('');
      expect(res.exitCode).not.toBe(3);
      expect(res.message).toMatch(/certificate/);
      expect(k.seen).toEqual([]);
    });

    it('refuses the log request with a Status', async () => {
      const k = await kubelet(otherCa);
      const server = await apiserverFor(k.port);
      const res = await api(server, 'GET', '/api/v1/namespaces/default/pods/demo/log');
      expect(res.code).toBeGreaterThanOrEqual(500);
      expect(res.body).toMatchObject({ kind: 'Status', status: 'Failure' });
      expect(String(res.body.message)).toMatch(/certificate/);
      expect(k.seen).toEqual([]);
    });
  });
});

describe('kubeletTlsOptions', () => {
  it('is plain http without any kubelet TLS flag', () => {
    expect(kubeletTlsOptions(undefined, () => {})).toBeUndefined();
    expect(kubeletTlsOptions({}, () => {})).toBeUndefined();
  });

  it('verifies with the CA; without one it warns and does not verify, as upstream', () => {
    const caPem = Buffer.from('ca');
    expect(kubeletTlsOptions({ ca: caPem }, () => {})).toEqual({ ca: caPem });
    const warnings: string[] = [];
    const cert = Buffer.from('c');
    const key = Buffer.from('k');
    expect(kubeletTlsOptions({ cert, key }, (l) => warnings.push(l))).toEqual({
      rejectUnauthorized: false,
      cert,
      key,
    });
    expect(warnings).toEqual([expect.stringMatching(/not verified/)]);
  });

  it('refuses a client certificate without its key', () => {
    expect(() => kubeletTlsOptions({ cert: Buffer.from('c') }, () => {})).toThrow(/go together/);
  });
});
