import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { CLIENT_AUTH, SERVER_AUTH, issueClientCert, issueServingCert } from './cert-issuer.js';
import { ensureCa, type CertificateAuthority } from './certificate-authority.js';

let dir = '';
let ca: CertificateAuthority;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-issue-'));
  ca = await ensureCa(path.join(dir, 'pki'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (f: string) => fs.statSync(f).mode & 0o777;
const LOOPBACK = { dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] };

function get(port: number, opts: https.RequestOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port, path: '/', ...opts }, (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve(text));
      })
      .on('error', reject);
  });
}

describe('issueServingCert', () => {
  it('issues a serverAuth leaf for the SANs, signed by the CA', async () => {
    const sans = { dnsNames: ['localhost', 'apiserver'], ipAddresses: ['127.0.0.1', '::1', '2001:db8::5'] };
    const c = await issueServingCert(ca, 'apiserver', sans);
    expect(c.reused).toBe(false);
    expect(c.certFile).toBe(path.join(ca.dir, 'apiserver.crt'));
    expect(mode(c.keyFile)).toBe(0o600);
    const x = new X509Certificate(fs.readFileSync(c.certFile));
    expect(x.subject).toBe('CN=apiserver');
    expect(x.ca).toBe(false);
    expect(x.checkIssued(ca.cert)).toBe(true);
    expect(x.verify(ca.cert.publicKey)).toBe(true);
    expect(x.keyUsage).toEqual([SERVER_AUTH]);
    expect(x.subjectAltName).toBe(
      'DNS:localhost, DNS:apiserver, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:5',
    );
    expect(x.checkHost('apiserver')).toBe('apiserver');
    expect(x.checkIP('::1')).toBe('::1');
    expect(x.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    const days = (new Date(x.validTo).getTime() - Date.now()) / (24 * 3600 * 1000);
    expect(days).toBeGreaterThan(364);
    expect(days).toBeLessThan(366);
  });

  it('keeps a valid certificate with the same SANs, replaces one with other SANs', async () => {
    const a = await issueServingCert(ca, 'kept', LOOPBACK);
    const b = await issueServingCert(ca, 'kept', {
      dnsNames: ['LOCALHOST'],
      ipAddresses: ['0:0:0:0:0:0:0:1', '127.0.0.1'],
    });
    expect(b.reused).toBe(true);
    expect(b.cert.fingerprint256).toBe(a.cert.fingerprint256);
    const c = await issueServingCert(ca, 'kept', { ...LOOPBACK, dnsNames: ['localhost', 'apiserver'] });
    expect(c.reused).toBe(false);
    expect(c.cert.subjectAltName).toContain('DNS:apiserver');
  });

  it('replaces a certificate from another CA', async () => {
    const other = await ensureCa(path.join(dir, 'other-ca'));
    await issueServingCert(other, 'moved', LOOPBACK, { dir: ca.dir });
    const c = await issueServingCert(ca, 'moved', LOOPBACK);
    expect(c.reused).toBe(false);
    expect(c.cert.checkIssued(ca.cert)).toBe(true);
  });

  it('refuses names that are not DNS names, IPs or file names', async () => {
    await expect(issueServingCert(ca, 'x', { dnsNames: ['a b'] })).rejects.toThrow(/not a DNS name/);
    await expect(issueServingCert(ca, 'x', { ipAddresses: ['300.1.1.1'] })).rejects.toThrow(/not an IP/);
    await expect(issueServingCert(ca, '../x', LOOPBACK)).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(issueServingCert(ca, 'x', {})).rejects.toThrow(/at least one/);
  });

  it('serves https that a client trusts with only the CA, and that others refuse', async () => {
    const c = await issueServingCert(ca, 'https-test', LOOPBACK);
    const server = https.createServer(
      { cert: fs.readFileSync(c.certFile), key: fs.readFileSync(c.keyFile) },
      (_req, res) => res.end('ok'),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      expect(await get(port, { ca: ca.certPem })).toBe('ok');
      expect(await get(port, { ca: ca.certPem, servername: 'localhost' })).toBe('ok');
      await expect(get(port, {})).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
      await expect(get(port, { ca: ca.certPem, servername: 'apiserver' })).rejects.toMatchObject({
        code: 'ERR_TLS_CERT_ALTNAME_INVALID',
      });
    } finally {
      server.close();
    }
  });
});

describe('issueClientCert', () => {
  it('issues a clientAuth certificate with CN = user and O = groups', async () => {
    const c = await issueClientCert(ca, 'system:node:node-1', ['system:nodes']);
    expect(path.basename(c.certFile)).toBe('system-node-node-1.crt');
    expect(mode(c.keyFile)).toBe(0o600);
    const x = c.cert;
    expect(x.subject.split('\n').sort()).toEqual(['CN=system:node:node-1', 'O=system:nodes']);
    expect(x.keyUsage).toEqual([CLIENT_AUTH]);
    expect(x.subjectAltName).toBeUndefined();
    expect(x.checkIssued(ca.cert)).toBe(true);
    expect(x.verify(ca.cert.publicKey)).toBe(true);
    expect((await issueClientCert(ca, 'system:node:node-1', ['system:nodes'])).reused).toBe(true);
    expect((await issueClientCert(ca, 'system:node:node-1', ['system:masters'])).reused).toBe(false);
  });

  it('is accepted by a TLS server that asks for client certificates from the CA', async () => {
    const s = await issueServingCert(ca, 'mtls', LOOPBACK);
    const c = await issueClientCert(ca, 'admin', ['system:masters']);
    const server = https.createServer(
      {
        cert: s.certPem,
        key: fs.readFileSync(s.keyFile),
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
      },
      (req, res) => res.end((req.socket as tls.TLSSocket).getPeerCertificate().subject.CN),
    );
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      expect(await get(port, { ca: ca.certPem, cert: c.certPem, key: fs.readFileSync(c.keyFile) })).toBe(
        'admin',
      );
    } finally {
      server.close();
    }
  });

  it('refuses subject names with -subj syntax in them', async () => {
    await expect(issueClientCert(ca, 'a/CN=b')).rejects.toMatchObject({ code: 'INVALID_NAME' });
    await expect(issueClientCert(ca, 'ok', ['x+y'])).rejects.toMatchObject({ code: 'INVALID_NAME' });
  });
});
