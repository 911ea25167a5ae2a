import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { selfSignedHosts, servingCertFiles } from './serving-cert.js';
import { startApiServer } from './server.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'serving-cert-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function getStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
      .on('error', reject);
  });
}

describe('servingCertFiles', () => {
  it('is plain http without TLS flags, and takes --tls-cert-file / --tls-private-key-file as given', async () => {
    expect(await servingCertFiles({ bindAddress: '127.0.0.1' })).toBeUndefined();
    expect(
      await servingCertFiles({ bindAddress: '127.0.0.1', tlsCertFile: 'a.crt', tlsPrivateKeyFile: 'a.key' }),
    ).toEqual({ certFile: 'a.crt', keyFile: 'a.key' });
    await expect(servingCertFiles({ bindAddress: '127.0.0.1', tlsCertFile: 'a.crt' })).rejects.toThrow(
      /go together/,
    );
  });

  it('--cert-dir: a CA and an apiserver certificate it issued for the loopback names, reused next time', async () => {
    const certDir = path.join(dir, 'certs');
    const files = await servingCertFiles({ bindAddress: '10.1.2.3', certDir });
    expect(files).toEqual({
      certFile: path.join(certDir, 'apiserver.crt'),
      keyFile: path.join(certDir, 'apiserver.key'),
      caFile: path.join(certDir, 'ca.crt'),
    });
    const ca = new X509Certificate(fs.readFileSync(files!.caFile!));
    const leaf = new X509Certificate(fs.readFileSync(files!.certFile));
    expect(ca.ca).toBe(true);
    expect(leaf.ca).toBe(false);
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    for (const ip of ['127.0.0.1', '::1', '10.1.2.3']) expect(leaf.checkIP(ip)).toBe(ip);
    expect(leaf.checkHost('localhost')).toBe('localhost');
    expect(fs.statSync(files!.keyFile).mode & 0o777).toBe(0o600);

    const again = await servingCertFiles({ bindAddress: '10.1.2.3', certDir });
    expect(new X509Certificate(fs.readFileSync(again!.certFile)).fingerprint256).toBe(leaf.fingerprint256);
  });

  it('serves https that a client trusts through the CA file alone', async () => {
    const files = (await servingCertFiles({ bindAddress: '127.0.0.1', certDir: dir }))!;
    const server = await startApiServer({
      port: 0,
      signingKey: Buffer.alloc(32, 1),
      log: () => {},
      scheduler: false,
      tls: { cert: fs.readFileSync(files.certFile), key: fs.readFileSync(files.keyFile) },
    });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      expect(await getStatus(`${server.url}/healthz`, fs.readFileSync(files.caFile!, 'utf8'))).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('names only specific bind addresses', () => {
    expect(selfSignedHosts('0.0.0.0').ipAddresses).toEqual(['127.0.0.1', '::1']);
    expect(selfSignedHosts('::').ipAddresses).toEqual(['127.0.0.1', '::1']);
    expect(selfSignedHosts('192.0.2.7').ipAddresses).toEqual(['127.0.0.1', '::1', '192.0.2.7']);
    expect(selfSignedHosts('127.0.0.1').dnsNames[0]).toBe('localhost');
  });
});
