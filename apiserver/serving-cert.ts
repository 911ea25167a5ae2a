/**
 * The apiserver's serving certificate: a self-signed ECDSA P-256 certificate for the loopback
 * names, generated when no `--tls-cert-file` is given.
 *
 * Why the apiserver serves TLS at all: kubectl never sends a bearer token (or runs an auth plugin)
 * over plain http (kubernetes/kubectl#744), so against an http:// apiserver every kubectl request
 * is anonymous and fails with "You must be logged in to the server".
 *
 * Mirrors client-go `util/cert` GenerateSelfSignedCertKey and k8s.io/apiserver
 * `pkg/server/options/serving.go` MaybeDefaultWithSelfSignedCerts (`--cert-dir` gets
 * `apiserver.crt` / `apiserver.key` when no files are given). Node's crypto signs but cannot build
 * an X.509 certificate, so the DER below is written by hand: one certificate shape, no parser.
 * The certificate is its own CA (basicConstraints CA:TRUE), so a client can trust it through
 * `certificate-authority-data`.
 */
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { isIP } from 'node:net';

export interface ServingCert {
  /** PEM certificate; also the CA bundle a client trusts. */
  cert: string;
  /** PEM PKCS#8 private key. */
  key: string;
}

export interface SelfSignedOptions {
  /** Subject common name; default `kexec-lab-apiserver`. */
  commonName?: string;
  /** DNS names and IP addresses for subjectAltName; default localhost, 127.0.0.1, ::1. */
  hosts?: string[];
  /** Validity in days from now; default one year. */
  days?: number;
}

const OID = {
  commonName: '2.5.4.3',
  ecPublicKey: '1.2.840.10045.2.1',
  ecdsaWithSHA256: '1.2.840.10045.4.3.2',
  subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
};

export function generateSelfSignedCert(opts: SelfSignedOptions = {}): ServingCert {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const hosts = opts.hosts ?? ['localhost', '127.0.0.1', '::1'];
  const notBefore = new Date(Date.now() - 60 * 60 * 1000);
  const notAfter = new Date(Date.now() + (opts.days ?? 365) * 24 * 60 * 60 * 1000);
  const name = seq(set(seq(oid(OID.commonName), utf8(opts.commonName ?? 'kexec-lab-apiserver'))));
  const sigAlg = seq(oid(OID.ecdsaWithSHA256));
  const serial = randomBytes(16);
  serial[0]! &= 0x7f; // positive
  const sans = hosts.map((h) => (isIP(h) ? tlv(0x87, ipBytes(h)) : tlv(0x82, Buffer.from(h, 'ascii'))));
  const extensions = seq(
    extension(OID.basicConstraints, true, seq(tlv(0x01, Buffer.from([0xff])))),
    // digitalSignature | keyCertSign
    extension(OID.keyUsage, true, tlv(0x03, Buffer.from([0x02, 0x84]))),
    extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))),
    extension(OID.subjectAltName, false, seq(...sans)),
  );
  const tbs = seq(
    tlv(0xa0, integer(Buffer.from([2]))), // v3
    integer(serial),
    sigAlg,
    name,
    seq(utcTime(notBefore), utcTime(notAfter)),
    name,
    publicKey.export({ type: 'spki', format: 'der' }),
    tlv(0xa3, extensions),
  );
  const signature = sign('sha256', tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, sigAlg, bitString(signature));
  return {
    cert: pem('CERTIFICATE', der),
    key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  };
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64.replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

function tlv(tag: number, body: Buffer): Buffer {
  const n = body.length;
  let len: Buffer;
  if (n < 0x80) len = Buffer.from([n]);
  else if (n < 0x100) len = Buffer.from([0x81, n]);
  else len = Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), len, body]);
}

function seq(...items: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(items));
}

function set(...items: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat(items));
}

function integer(bytes: Buffer): Buffer {
  return tlv(0x02, bytes[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
}

function utf8(s: string): Buffer {
  return tlv(0x0c, Buffer.from(s, 'utf8'));
}

function bitString(bytes: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.from([0]), bytes]));
}

function utcTime(d: Date): Buffer {
  const s = d.toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z';
  return tlv(0x17, Buffer.from(s, 'ascii'));
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number);
  const out = [a! * 40 + b!];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  const parts = [oid(id)];
  if (critical) parts.push(tlv(0x01, Buffer.from([0xff])));
  parts.push(tlv(0x04, value));
  return seq(...parts);
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const words = (s: string): number[] => (s ? s.split(':').map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = ip.includes('::') ? words(tail) : [];
  const all = [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return Buffer.from(all.flatMap((w) => [w >> 8, w & 0xff]));
}
