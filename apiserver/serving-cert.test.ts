import { X509Certificate } from 'node:crypto';
import https from 'node:https';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { generateSelfSignedCert } from './serving-cert.js';

describe('generateSelfSignedCert', () => {
  it('is a v3 CA certificate for the loopback names that a TLS client can trust as its CA', async () => {
    const { cert, key } = generateSelfSignedCert({ hosts: ['localhost', '127.0.0.1', '::1', '2001:db8::5'] });
    const x = new X509Certificate(cert);
    expect(x.subject).toBe('CN=kexec-lab-apiserver');
    expect(x.ca).toBe(true);
    expect(x.subjectAltName).toBe(
      'DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, IP Address:2001:DB8:0:0:0:0:0:5',
    );
    expect(x.checkIssued(x)).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkIP('127.0.0.1')).toBe('127.0.0.1');

    const server = https.createServer({ cert, key }, (_req, res) => res.end('ok'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      const port = (server.address() as AddressInfo).port;
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/', ca: cert }, (res) => {
            let text = '';
            res.on('data', (c) => (text += c));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      expect(body).toBe('ok');
    } finally {
      server.close();
    }
  });
});
