import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureCa, loadCa } from './certificate-authority.js';
import { TlsError } from './openssl.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-ca-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe('ensureCa', () => {
  it('creates a self-signed EC P-256 CA, key 0600, in a new 0700 directory', async () => {
    const pki = path.join(dir, 'pki');
    const ca = await ensureCa(pki);
    expect(ca.created).toBe(true);
    expect(mode(pki)).toBe(0o700);
    expect(mode(ca.keyFile)).toBe(0o600);
    expect(mode(ca.certFile)).toBe(0o644);
    expect(fs.readdirSync(pki).sort()).toEqual(['ca.crt', 'ca.key']); // no scratch left behind
    const x = new X509Certificate(fs.readFileSync(ca.certFile));
    expect(x.ca).toBe(true);
    expect(x.subject).toBe('CN=kexec-lab-ca');
    expect(x.checkIssued(x)).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.publicKey.asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
    expect(new Date(x.validTo).getTime() - Date.now()).toBeGreaterThan(9 * 365 * 24 * 3600 * 1000);
  });

  it('reuses the CA on the next start', async () => {
    const first = await ensureCa(dir);
    const second = await ensureCa(dir);
    expect(second.created).toBe(false);
    expect(second.certPem).toBe(first.certPem);
    expect(second.cert.fingerprint256).toBe(first.cert.fingerprint256);
  });

  it('refuses a half-present or mismatched CA instead of overwriting it', async () => {
    const ca = await ensureCa(dir);
    const key = fs.readFileSync(ca.keyFile);
    fs.rmSync(ca.keyFile);
    await expect(ensureCa(dir)).rejects.toMatchObject({ code: 'BROKEN_CA' });
    expect(() => loadCa(dir)).toThrow(/ca\.key is missing/);

    const other = await ensureCa(path.join(dir, 'other'));
    fs.writeFileSync(ca.keyFile, fs.readFileSync(other.keyFile));
    expect(() => loadCa(dir)).toThrow(TlsError);
    expect(() => loadCa(dir)).toThrow(/key mismatch/);
    fs.writeFileSync(ca.keyFile, key);
    expect(loadCa(dir)?.cert.fingerprint256).toBe(ca.cert.fingerprint256);
  });
});
