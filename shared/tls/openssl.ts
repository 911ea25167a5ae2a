/**
 * The `openssl` command line as the lab's only certificate tool: every certificate and key is made
 * by openssl (execFile with an argv, never a shell string), none by hand-written DER. Also the
 * small file helpers the PKI needs: a private scratch directory next to the final files, atomic
 * renames into place, keys mode 0600.
 *
 * Mirrors what kubeadm's `pkiutil` gets from Go's crypto/x509; Node's crypto verifies and signs
 * but cannot build an X.509 certificate, so the CLI does that part.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export type TlsErrorCode = 'OPENSSL_NOT_FOUND' | 'OPENSSL_FAILED' | 'INVALID_NAME' | 'BROKEN_CA';

/** A PKI failure with a stable code. */
export class TlsError extends Error {
  constructor(
    readonly code: TlsErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'TlsError';
  }
}

const OPENSSL_TIMEOUT_MS = 30_000;

/** Runs `openssl ARGS…` in `cwd`; rejects with a TlsError carrying openssl's stderr. */
export function openssl(args: string[], cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('openssl', args, { cwd, timeout: OPENSSL_TIMEOUT_MS }, (err, _stdout, stderr) => {
      if (!err) return resolve();
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        return reject(
          new TlsError(
            'OPENSSL_NOT_FOUND',
            'the openssl command is missing: install it (Debian/Ubuntu: apt-get install openssl)',
          ),
        );
      }
      const detail = String(stderr).trim().split('\n').slice(-3).join('; ');
      reject(new TlsError('OPENSSL_FAILED', `openssl ${args[0]} failed: ${detail || err.message}`));
    });
  });
}

/** A fresh EC P-256 private key (PKCS#8 PEM) at `file`, relative to `cwd`. */
export function generateKey(file: string, cwd: string): Promise<void> {
  return openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file], cwd);
}

/** A random positive 128-bit serial number, as openssl's `-set_serial` takes it. */
export function randomSerial(): string {
  const b = randomBytes(16);
  b[0]! &= 0x7f;
  b[0]! |= 0x01; // never a leading zero byte
  return `0x${b.toString('hex')}`;
}

/**
 * Subject attribute values go into `-subj /CN=…/O=…`, where `/`, `+`, `=`, `\` and `,` are syntax:
 * accept the names a lab uses (user, group, node and service names) and refuse the rest.
 */
const SUBJECT_VALUE = /^[A-Za-z0-9][A-Za-z0-9 :._@-]{0,63}$/;

export function subject(commonName: string, organizations: string[] = []): string {
  for (const v of [commonName, ...organizations]) {
    if (!SUBJECT_VALUE.test(v)) {
      throw new TlsError('INVALID_NAME', `${JSON.stringify(v)} is not a usable certificate subject name`);
    }
  }
  // Kubernetes' order: organizations first, then the common name.
  return [...organizations.map((o) => `/O=${o}`), `/CN=${commonName}`].join('');
}

/** Creates `dir` (0700 when new) and a private scratch directory inside it (same filesystem). */
export function scratchDir(dir: string): string {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  return fs.mkdtempSync(path.join(dir, '.tls-'));
}

/** Moves a finished file from the scratch dir into place: keys end up 0600, certificates 0644. */
export function install(from: string, to: string, mode: 0o600 | 0o644): void {
  fs.chmodSync(from, mode);
  fs.renameSync(from, to);
}
