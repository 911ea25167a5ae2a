/**
 * The lab's PKI in `DIR/pki/` (kubeadm's `/etc/kubernetes/pki` layout): the lab CA (`ca.crt`,
 * `ca.key`, made at first start and kept) and the apiserver's serving certificate
 * (`apiserver.crt`, `apiserver.key`) for the loopback names plus the host the clients dial
 * (`apiserver` on the compose network). Certificates come from shared/tls (the openssl CLI).
 *
 * Who trusts what: the kubeconfig carries `ca.crt` as `certificate-authority-data`; the
 * kubelet-sim gets it through `NODE_EXTRA_CA_CERTS` (Node adds it to the roots of every TLS
 * client in that process, global fetch included), so it needs no flag of its own.
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { issueServingCert } from '../shared/tls/cert-issuer.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';

export const PKI_DIR = 'pki';

export interface LabPki {
  dir: string;
  caFile: string;
  /** ca.crt, PEM. */
  caPem: string;
  apiserverCertFile: string;
  apiserverKeyFile: string;
}

/** The loopback names every lab apiserver certificate carries. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];

/** The environment that makes a Node.js child process trust the lab CA. */
export function trustEnv(pki: Pick<LabPki, 'caFile'>): NodeJS.ProcessEnv {
  return { NODE_EXTRA_CA_CERTS: pki.caFile };
}

/**
 * Ensures `labDir/pki`: the CA and an apiserver certificate for LOOPBACK_HOSTS and `hosts` (DNS
 * names or IPs, e.g. the host of the apiserver URL). Existing files are reused while valid.
 */
export async function ensureLabPki(labDir: string, hosts: string[] = []): Promise<LabPki> {
  const dir = path.join(labDir, PKI_DIR);
  const ca = await ensureCa(dir);
  const all = [...new Set([...LOOPBACK_HOSTS, ...hosts.map((h) => h.replace(/^\[(.*)\]$/, '$1'))])];
  const cert = await issueServingCert(ca, 'apiserver', {
    dnsNames: all.filter((h) => !isIP(h)),
    ipAddresses: all.filter((h) => isIP(h)),
  });
  return {
    dir,
    caFile: ca.certFile,
    caPem: ca.certPem,
    apiserverCertFile: cert.certFile,
    apiserverKeyFile: cert.keyFile,
  };
}
