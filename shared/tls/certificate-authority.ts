/**
 * The lab's certificate authority: `ca.crt` / `ca.key` (EC P-256, ten years), created at first
 * start and reused after, so a kubeconfig written once keeps trusting the apiserver across
 * restarts. Every serving and client certificate of the lab is issued by it (cert-issuer.ts).
 *
 * Mirrors kubeadm `phases/certs` CreateCACertAndKeyFiles and `pkiutil` NewCertificateAuthority /
 * TryLoadCertAndKeyFromDisk (`/etc/kubernetes/pki/ca.{crt,key}`). Differences: the certificate is
 * made by the openssl CLI; an expired CA is replaced, a half-present or mismatched one is refused
 * rather than overwritten (something may still trust it).
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { TlsError, generateKey, install, openssl, randomSerial, scratchDir, subject } from './openssl.js';
import { errorMessage } from '../logging.js';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export interface CertificateAuthority {
  dir: string;
  certFile: string;
  keyFile: string;
  /** The CA certificate, PEM: what a client puts in `certificate-authority-data`. */
  certPem: string;
  cert: X509Certificate;
  /** True when this call created it. */
  created: boolean;
}

export interface CaOptions {
  /** Subject CN of a new CA; default `kexec-lab-ca`. */
  commonName?: string;
  /** Validity of a new CA in days; default 3650 (kubeadm's ten years). */
  days?: number;
}

const CA_EXTENSIONS = `[req]
distinguished_name = dn
[dn]
[ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,digitalSignature,keyCertSign
subjectKeyIdentifier = hash
`;

/** The CA in `dir` (created 0700 if missing): loaded when present and valid, created otherwise. */
export async function ensureCa(dir: string, opts: CaOptions = {}): Promise<CertificateAuthority> {
  const certFile = path.join(dir, CA_CERT_FILE);
  const keyFile = path.join(dir, CA_KEY_FILE);
  const existing = loadCa(dir);
  if (existing && new Date(existing.cert.validTo).getTime() > Date.now()) return existing;

  const tmp = scratchDir(dir);
  try {
    fs.writeFileSync(path.join(tmp, 'openssl.cnf'), CA_EXTENSIONS);
    await generateKey('ca.key', tmp);
    await openssl(
      [
        'req',
        '-new',
        '-x509',
        '-config',
        'openssl.cnf',
        '-extensions',
        'ext',
        '-key',
        'ca.key',
        '-subj',
        subject(opts.commonName ?? 'kexec-lab-ca'),
        '-days',
        String(opts.days ?? 3650),
        '-sha256',
        '-set_serial',
        randomSerial(),
        '-out',
        'ca.crt',
      ],
      tmp,
    );
    // Key first: a crash in between leaves a key without a certificate, which loadCa refuses
    // loudly, never a certificate whose key is lost.
    install(path.join(tmp, 'ca.key'), keyFile, 0o600);
    install(path.join(tmp, 'ca.crt'), certFile, 0o644);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { ...loadCa(dir)!, created: true };
}

/**
 * The CA in `dir`, or undefined when neither file exists. A lone file, an unreadable one, a
 * certificate that is no CA or a key that does not match it is a TlsError (BROKEN_CA).
 */
export function loadCa(dir: string): CertificateAuthority | undefined {
  const certFile = path.join(dir, CA_CERT_FILE);
  const keyFile = path.join(dir, CA_KEY_FILE);
  const haveCert = fs.existsSync(certFile);
  const haveKey = fs.existsSync(keyFile);
  if (!haveCert && !haveKey) return undefined;
  const broken = (why: string) =>
    new TlsError(
      'BROKEN_CA',
      `the CA in ${dir} is unusable (${why}); remove ca.crt and ca.key to start over`,
    );
  if (!haveCert || !haveKey) throw broken(`${haveCert ? CA_KEY_FILE : CA_CERT_FILE} is missing`);
  let cert: X509Certificate;
  let certPem: string;
  try {
    certPem = fs.readFileSync(certFile, 'utf8');
    cert = new X509Certificate(certPem);
    if (!cert.checkPrivateKey(createPrivateKey(fs.readFileSync(keyFile)))) throw new Error('key mismatch');
  } catch (err) {
    throw broken(errorMessage(err));
  }
  if (!cert.ca) throw broken('ca.crt is not a CA certificate');
  return { dir, certFile, keyFile, certPem, cert, created: false };
}
