import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureLabPki, trustEnv } from './pki.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-pki-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ensureLabPki', () => {
  it('makes DIR/pki: the CA and an apiserver certificate for loopback and the given hosts', async () => {
    const pki = await ensureLabPki(dir, ['apiserver', '[::1]']);
    expect(pki.dir).toBe(path.join(dir, 'pki'));
    expect(fs.readdirSync(pki.dir).sort()).toEqual(['apiserver.crt', 'apiserver.key', 'ca.crt', 'ca.key']);
    const ca = new X509Certificate(pki.caPem);
    const leaf = new X509Certificate(fs.readFileSync(pki.apiserverCertFile));
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe(
      'DNS:localhost, DNS:apiserver, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(trustEnv(pki)).toEqual({ NODE_EXTRA_CA_CERTS: path.join(dir, 'pki', 'ca.crt') });
  });

  it('keeps the CA across starts, so an old kubeconfig still trusts a reissued certificate', async () => {
    const first = await ensureLabPki(dir);
    const leaf1 = fs.readFileSync(first.apiserverCertFile, 'utf8');
    const second = await ensureLabPki(dir);
    expect(second.caPem).toBe(first.caPem);
    expect(fs.readFileSync(second.apiserverCertFile, 'utf8')).toBe(leaf1);
    const third = await ensureLabPki(dir, ['apiserver']);
    expect(third.caPem).toBe(first.caPem);
    expect(fs.readFileSync(third.apiserverCertFile, 'utf8')).not.toBe(leaf1);
  });
});
