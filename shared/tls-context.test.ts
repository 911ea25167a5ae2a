import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import { withSharedContext } from './tls-context.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-context-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A self-signed certificate for 127.0.0.1. */
function makeTestCert(): { cert: Buffer; key: Buffer } {
  const d = fs.mkdtempSync(path.join(dir, 'c-'));
  const [certFile, keyFile] = [path.join(d, 'c.crt'), path.join(d, 'c.key')];
  execFileSync(
    'openssl',
    [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=127.0.0.1'],
      ...['-addext', 'subjectAltName=IP:127.0.0.1'],
    ],
    { stdio: 'ignore' },
  );
  return { cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) };
}

describe('withSharedContext', () => {
  it('gives every dial with the same options one context, and each options object its own', () => {
    const opts = { ca: makeTestCert().cert, rejectUnauthorized: true };
    const a = withSharedContext(opts);
    const b = withSharedContext(opts);
    expect(a.secureContext).toBeDefined();
    expect(b.secureContext).toBe(a.secureContext);
    expect(b.rejectUnauthorized).toBe(true);
    expect(withSharedContext({ ...opts }).secureContext).not.toBe(a.secureContext);
    expect(withSharedContext(undefined).secureContext).toBe(withSharedContext(undefined).secureContext);
    const own = { secureContext: createSecureContext() };
    expect(withSharedContext(own)).toBe(own);
  });

  it('still verifies the server with the CA of its options', async () => {
    const good = makeTestCert();
    const other = makeTestCert();
    const server = https.createServer({ cert: good.cert, key: good.key }, (_req, res) => res.end('ok'));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const get = (ca: Buffer): Promise<string> =>
      new Promise((resolve, reject) => {
        const req = https.request(
          { ...withSharedContext({ ca }), host: '127.0.0.1', port, agent: false },
          (res) => {
            res.resume();
            res.on('end', () => resolve(String(res.statusCode)));
          },
        );
        req.on('error', reject);
        req.end();
      });
    try {
      await expect(get(good.cert)).resolves.toBe('200');
      await expect(get(other.cert)).rejects.toThrow(/self.signed|unable to verify|certificate/i);
    } finally {
      server.close();
    }
  });
});
