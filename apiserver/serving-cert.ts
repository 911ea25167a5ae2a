/**
 * The apiserver's serving certificate, from its flags: `--tls-cert-file` / `--tls-private-key-file`
 * as given (the lab issues them from its CA), or, with only `--cert-dir`, a CA and an
 * `apiserver.crt` for the loopback names created there through shared/tls (and reused on the next
 * start).
 *
 * Why the apiserver serves TLS at all: kubectl never sends a bearer token (or runs an auth plugin)
 * over plain http (kubernetes/kubectl#744), so against an http:// apiserver every kubectl request
 * is anonymous and fails with "You must be logged in to the server".
 *
 * Mirrors k8s.io/apiserver `pkg/server/options/serving.go` MaybeDefaultWithSelfSignedCerts, which
 * also makes a throw-away CA plus a leaf (client-go `util/cert` GenerateSelfSignedCertKey) into
 * `--cert-dir`. Difference: the CA is kept as `ca.crt` beside it, so a client can trust it through
 * `certificate-authority-data` (main.ts names it as `caFile` on the READY line).
 */
import os from 'node:os';
import { issueServingCert } from '../shared/tls/cert-issuer.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';

export interface ServingCertFlags {
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  certDir?: string;
  bindAddress: string;
}

export interface ServingCertFiles {
  certFile: string;
  keyFile: string;
  /** The CA that issued certFile, when it was made here (`--cert-dir`). */
  caFile?: string;
}

/** Loopback names, the host name and a specific bind address: what a client may dial. */
export function selfSignedHosts(bindAddress: string): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames = ['localhost'];
  const host = os.hostname().toLowerCase();
  if (/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(host) && host !== 'localhost')
    dnsNames.push(host);
  const ipAddresses = ['127.0.0.1', '::1'];
  if (!['0.0.0.0', '::', ...ipAddresses].includes(bindAddress)) ipAddresses.push(bindAddress);
  return { dnsNames, ipAddresses };
}

/** The certificate files to serve, or undefined for plain http (no TLS flag at all). */
export async function servingCertFiles(flags: ServingCertFlags): Promise<ServingCertFiles | undefined> {
  if (flags.tlsCertFile || flags.tlsPrivateKeyFile) {
    if (!flags.tlsCertFile || !flags.tlsPrivateKeyFile)
      throw new Error('--tls-cert-file and --tls-private-key-file go together');
    return { certFile: flags.tlsCertFile, keyFile: flags.tlsPrivateKeyFile };
  }
  if (!flags.certDir) return undefined;
  const ca = await ensureCa(flags.certDir);
  const cert = await issueServingCert(ca, 'apiserver', selfSignedHosts(flags.bindAddress));
  return { certFile: cert.certFile, keyFile: cert.keyFile, caFile: ca.certFile };
}
