/**
 * Certificates issued by the lab CA: serving certificates (serverAuth, DNS and IP SANs) and client
 * certificates (clientAuth, CN = user, O = groups, the way the apiserver's x509 authenticator
 * reads them). EC P-256 keys, one year, written as `NAME.crt` / `NAME.key` (key 0600).
 *
 * A certificate already on disk is reused while it is issued by this CA, matches its key, names
 * the same subject, usages and SANs, and has more than a third of its lifetime left; otherwise it
 * is replaced. Mirrors kubeadm `phases/certs` (createCertAndKeyFilesWithCA, which reuses
 * matching files) and client-go `util/cert`; the kubelet renews at a similar point of the lifetime.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import { isIP } from 'node:net';
import path from 'node:path';
import type { CertificateAuthority } from './certificate-authority.js';
import { TlsError, generateKey, install, openssl, randomSerial, scratchDir, subject } from './openssl.js';

export const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
export const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

export interface SubjectAltNames {
  dnsNames?: string[];
  ipAddresses?: string[];
}

export interface IssueOptions {
  /** Where NAME.crt / NAME.key go; default the CA's directory. */
  dir?: string;
  /** Validity in days; default 365. */
  days?: number;
}

export interface IssuedCert {
  certFile: string;
  keyFile: string;
  certPem: string;
  cert: X509Certificate;
  /** True when an existing certificate was kept. */
  reused: boolean;
}

/** A serverAuth certificate named `name` (CN and file names) for these host names and addresses. */
export async function issueServingCert(
  ca: CertificateAuthority,
  name: string,
  sans: SubjectAltNames,
  opts: IssueOptions = {},
): Promise<IssuedCert> {
  const dnsNames = unique(sans.dnsNames ?? []);
  const ipAddresses = unique((sans.ipAddresses ?? []).map(canonicalIp));
  for (const d of dnsNames) {
    if (!/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$/.test(d)) {
      throw new TlsError('INVALID_NAME', `${JSON.stringify(d)} is not a DNS name`);
    }
  }
  if (dnsNames.length + ipAddresses.length === 0) {
    throw new TlsError('INVALID_NAME', `serving certificate ${name} needs at least one DNS name or IP`);
  }
  return issue(ca, {
    fileName: name,
    subject: subject(name),
    eku: SERVER_AUTH,
    extensions: [
      'extendedKeyUsage = serverAuth',
      'subjectAltName = @alt',
      '[alt]',
      ...dnsNames.map((d, i) => `DNS.${i + 1} = ${d}`),
      ...ipAddresses.map((ip, i) => `IP.${i + 1} = ${ip}`),
    ],
    sans: [...dnsNames.map((d) => `DNS:${d.toLowerCase()}`), ...ipAddresses.map((ip) => `IP:${ip}`)],
    opts,
  });
}

/**
 * A clientAuth certificate for user `commonName` in groups `organizations` (e.g.
 * `system:node:node-1` in `system:nodes`). Files are named after the CN with `:` as `-` unless
 * `opts.name` says otherwise.
 */
export async function issueClientCert(
  ca: CertificateAuthority,
  commonName: string,
  organizations: string[] = [],
  opts: IssueOptions & { name?: string } = {},
): Promise<IssuedCert> {
  return issue(ca, {
    fileName: opts.name ?? commonName.replace(/:/g, '-'),
    subject: subject(commonName, organizations),
    eku: CLIENT_AUTH,
    extensions: ['extendedKeyUsage = clientAuth'],
    sans: [],
    opts,
  });
}

interface Request {
  fileName: string;
  subject: string;
  eku: string;
  /** Lines appended to the `[ext]` section (and any sections they refer to). */
  extensions: string[];
  /** The SANs as `DNS:name` / `IP:canonical`, for comparing with a certificate on disk. */
  sans: string[];
  opts: IssueOptions;
}

async function issue(ca: CertificateAuthority, req: Request): Promise<IssuedCert> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(req.fileName)) {
    throw new TlsError('INVALID_NAME', `${JSON.stringify(req.fileName)} is not a usable file name`);
  }
  const dir = req.opts.dir ?? ca.dir;
  const certFile = path.join(dir, `${req.fileName}.crt`);
  const keyFile = path.join(dir, `${req.fileName}.key`);
  const existing = reusable(ca, certFile, keyFile, req);
  if (existing) return { certFile, keyFile, ...existing, reused: true };

  const tmp = scratchDir(dir);
  try {
    const cnf = [
      '[req]',
      'distinguished_name = dn',
      '[dn]',
      '[ext]',
      'basicConstraints = critical,CA:FALSE',
      'keyUsage = critical,digitalSignature',
      'subjectKeyIdentifier = hash',
      'authorityKeyIdentifier = keyid',
      ...req.extensions,
      '',
    ].join('\n');
    fs.writeFileSync(path.join(tmp, 'openssl.cnf'), cnf);
    await generateKey('leaf.key', tmp);
    await openssl(
      ['req', '-new', '-config', 'openssl.cnf', '-key', 'leaf.key', '-subj', req.subject, '-out', 'leaf.csr'],
      tmp,
    );
    await openssl(
      [
        'x509',
        '-req',
        '-in',
        'leaf.csr',
        '-CA',
        ca.certFile,
        '-CAkey',
        ca.keyFile,
        '-set_serial',
        randomSerial(),
        '-days',
        String(req.opts.days ?? 365),
        '-sha256',
        '-extfile',
        'openssl.cnf',
        '-extensions',
        'ext',
        '-out',
        'leaf.crt',
      ],
      tmp,
    );
    install(path.join(tmp, 'leaf.key'), keyFile, 0o600);
    install(path.join(tmp, 'leaf.crt'), certFile, 0o644);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  const certPem = fs.readFileSync(certFile, 'utf8');
  return { certFile, keyFile, certPem, cert: new X509Certificate(certPem), reused: false };
}

/** The certificate on disk, when it may be kept (see the top of this file). */
function reusable(
  ca: CertificateAuthority,
  certFile: string,
  keyFile: string,
  req: Request,
): { certPem: string; cert: X509Certificate } | undefined {
  try {
    const certPem = fs.readFileSync(certFile, 'utf8');
    const cert = new X509Certificate(certPem);
    if (!cert.checkIssued(ca.cert) || !cert.verify(ca.cert.publicKey)) return undefined;
    if (!cert.checkPrivateKey(createPrivateKey(fs.readFileSync(keyFile)))) return undefined;
    const from = new Date(cert.validFrom).getTime();
    const to = new Date(cert.validTo).getTime();
    if (Date.now() < from || to - Date.now() < (to - from) / 3) return undefined;
    if (
      !sameSet(subjectLines(cert.subject), subjectLines(req.subject.replace(/^\//, '').split('/').join('\n')))
    )
      return undefined;
    if (!sameSet(cert.keyUsage ?? [], [req.eku])) return undefined;
    if (!sameSet(certSans(cert), req.sans)) return undefined;
    return { certPem, cert };
  } catch {
    return undefined; // missing or unreadable: issue a new one
  }
}

/** `IP:x` in the canonical (compressed, lower-case) form, whatever form the input had. */
function canonicalIp(ip: string): string {
  if (!isIP(ip)) throw new TlsError('INVALID_NAME', `${JSON.stringify(ip)} is not an IP address`);
  const host = new URL(`http://${isIP(ip) === 6 ? `[${ip}]` : ip}/`).hostname;
  return host.replace(/^\[|\]$/g, '');
}

/** The SANs of a certificate as `DNS:name` / `IP:canonical`. */
function certSans(cert: X509Certificate): string[] {
  if (!cert.subjectAltName) return [];
  return cert.subjectAltName.split(', ').map((entry) => {
    if (entry.startsWith('DNS:')) return `DNS:${entry.slice(4).toLowerCase()}`;
    if (entry.startsWith('IP Address:')) return `IP:${canonicalIp(entry.slice('IP Address:'.length))}`;
    return entry;
  });
}

function subjectLines(s: string): string[] {
  return s.split('\n').filter(Boolean);
}

function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a);
  return x.size === new Set(b).size && b.every((v) => x.has(v));
}

function unique(xs: string[]): string[] {
  return [...new Set(xs)];
}
