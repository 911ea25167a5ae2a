/**
 * The kubelet server over https: its serving certificate verifies against the lab CA, and the
 * apiserver may authenticate with its client certificate (CN kube-apiserver-kubelet-client, as
 * kubeadm issues it) instead of a token. Anyone else's certificate is a user the kubelet refuses
 * (403), and a certificate from another CA authenticates nobody (401).
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import {
  APISERVER_KUBELET_CLIENT,
  APISERVER_USER,
  KUBELET_AUDIENCE,
  mintToken,
} from '../shared/auth/tokens.js';
import { issueClientCert, issueServingCert, type IssuedCert } from '../shared/tls/cert-issuer.js';
import { ensureCa, type CertificateAuthority } from '../shared/tls/certificate-authority.js';
import { KubeletServer } from './server.js';
import { FakeRuntime } from './test-support/fake-runtime.js';

const key = randomBytes(32);
let dir = '';
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let apiserverCert: IssuedCert;
let userCert: IssuedCert;
let foreignApiserverCert: IssuedCert;
let server: KubeletServer;
let port = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-tls-'));
  ca = await ensureCa(path.join(dir, 'pki'));
  otherCa = await ensureCa(path.join(dir, 'other'));
  const serving = await issueServingCert(ca, 'kubelet', { ipAddresses: ['127.0.0.1'] });
  apiserverCert = await issueClientCert(ca, APISERVER_KUBELET_CLIENT, ['system:masters']);
  userCert = await issueClientCert(ca, 'alice', ['system:masters']);
  foreignApiserverCert = await issueClientCert(otherCa, APISERVER_KUBELET_CLIENT, ['system:masters']);
  server = new KubeletServer({
    apiserverTokenKeys: { hs256: key },
    runtime: new FakeRuntime(),
    log: () => {},
    tls: {
      cert: fs.readFileSync(serving.certFile),
      key: fs.readFileSync(serving.keyFile),
      clientCa: fs.readFileSync(ca.certFile),
    },
  });
  port = await server.listen(0, '127.0.0.1');
});

afterAll(async () => {
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  message: string;
}

/** A GET over https that trusts `trust` and presents `cert` (if any). */
function get(
  urlPath: string,
  opts: { cert?: IssuedCert; trust?: string; token?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      {
        host: '127.0.0.1',
        port,
        path: urlPath,
        agent: false,
        ca: fs.readFileSync(opts.trust ?? ca.certFile),
        ...(opts.cert
          ? { cert: fs.readFileSync(opts.cert.certFile), key: fs.readFileSync(opts.cert.keyFile) }
          : {}),
        headers: opts.token ? { Authorization: `Bearer ${opts.token}` } : {},
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          let message = body;
          try {
            message = (JSON.parse(body) as { message?: string }).message ?? body;
          } catch {
            // /healthz is plain text
          }
          resolve({ status: res.statusCode ?? 0, message });
        });
      },
    );
    req.on('error', reject);
  });
}

// A stream path that is authenticated first, then refused for not being an upgrade: a 400 here
// proves the caller got past authentication and authorisation.
const EXEC = '/exec/default/demo/c?command=ls&output=1';
const PAST_AUTH = { status: 400, message: 'Upgrade request required' };

describe('kubelet server over https', () => {
  it('serves a certificate the lab CA verifies for the address the apiserver dials', async () => {
    expect(await get('/healthz')).toEqual({ status: 200, message: 'ok' });
  });

  it('is not verified by a client that trusts another CA', async () => {
    await expect(get('/healthz', { trust: otherCa.certFile })).rejects.toThrow(
      /self-signed|unable to verify/,
    );
  });

  it('does not answer plain http on its port', async () => {
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it("takes the apiserver's client certificate alone as the apiserver", async () => {
    expect(await get(EXEC, { cert: apiserverCert })).toEqual(PAST_AUTH);
  });

  it('refuses no credentials with 401', async () => {
    expect(await get(EXEC)).toEqual({ status: 401, message: 'Unauthorized' });
  });

  it("refuses another user's certificate from the same CA with 403 naming the user", async () => {
    expect(await get(EXEC, { cert: userCert })).toEqual({
      status: 403,
      message: 'Forbidden (user=alice, verb=get, resource=nodes, subresource(s)=[proxy])',
    });
  });

  it("refuses a certificate from another CA even with the apiserver's CN", async () => {
    expect(await get(EXEC, { cert: foreignApiserverCert })).toEqual({ status: 401, message: 'Unauthorized' });
  });

  it("still takes the apiserver's kubelet token over TLS", async () => {
    const token = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
    expect(await get(EXEC, { token })).toEqual(PAST_AUTH);
    expect(await get(EXEC, { token, cert: foreignApiserverCert })).toEqual(PAST_AUTH);
  });
});
