/**
 * The lab's PKI in `DIR/pki/` (kubeadm's `/etc/kubernetes/pki` layout): the lab CA (`ca.crt`,
 * `ca.key`, made at first start and kept), the apiserver's serving certificate (`apiserver.crt`,
 * `apiserver.key`) for the loopback names plus the host the clients dial (`apiserver` on the
 * compose network), the apiserver's client certificate for kubelets
 * (`apiserver-kubelet-client.crt`, CN kube-apiserver-kubelet-client in no group, as kubeadm issues
 * it since 1.37, kubernetes#138957: its rights on kubelets come from a grant of
 * system:kubelet-api-admin, kubelet-api-policy.ts, not from system:masters) and each kubelet's serving certificate (`kubelet-NODE.crt`, for the address the
 * apiserver dials; upstream a kubelet gets one through a CSR or signs its own). Certificates come
 * from shared/tls (the openssl CLI).
 *
 * Who trusts what: the kubeconfig carries `ca.crt` as `certificate-authority-data`; the
 * kubelet-sim gets it through `NODE_EXTRA_CA_CERTS` (Node adds it to the roots of every TLS
 * client in that process, global fetch included) to trust the apiserver, and as
 * `--client-ca-file` to authenticate the apiserver's client certificate; the apiserver verifies
 * kubelets with it (`--kubelet-certificate-authority`).
 */
import { isIP } from 'node:net';
import path from 'node:path';
import { APISERVER_KUBELET_CLIENT } from '../shared/auth/tokens.js';
import { issueClientCert, issueServingCert, type SubjectAltNames } from '../shared/tls/cert-issuer.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';
import type { EtcdTls } from './etcd.js';

export const PKI_DIR = 'pki';

export interface LabPki {
  dir: string;
  caFile: string;
  /** ca.crt, PEM. */
  caPem: string;
  apiserverCertFile: string;
  apiserverKeyFile: string;
  /** The apiserver's client certificate towards kubelets. */
  kubeletClientCertFile: string;
  kubeletClientKeyFile: string;
}

/** The file names of the apiserver's client certificate for kubelets (kubeadm's). */
export const KUBELET_CLIENT_CERT = 'apiserver-kubelet-client';

/** The loopback names every lab apiserver certificate carries. */
export const LOOPBACK_HOSTS = ['localhost', '127.0.0.1', '::1'];

/** Host names and IPs (IPv6 possibly in brackets) as a certificate's SANs, each once. */
function sansOf(hosts: string[]): SubjectAltNames {
  const all = [...new Set(hosts.map((h) => h.replace(/^\[(.*)\]$/, '$1')))];
  return { dnsNames: all.filter((h) => !isIP(h)), ipAddresses: all.filter((h) => isIP(h)) };
}

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
  const cert = await issueServingCert(ca, 'apiserver', sansOf([...LOOPBACK_HOSTS, ...hosts]));
  const client = await issueClientCert(ca, APISERVER_KUBELET_CLIENT, [], {
    name: KUBELET_CLIENT_CERT,
  });
  return {
    dir,
    caFile: ca.certFile,
    caPem: ca.certPem,
    apiserverCertFile: cert.certFile,
    apiserverKeyFile: cert.keyFile,
    kubeletClientCertFile: client.certFile,
    kubeletClientKeyFile: client.keyFile,
  };
}

/** The apiserver's flags that make its kubelet hop https, verified both ways. */
export function apiserverKubeletTlsArgs(pki: LabPki): string[] {
  return [
    '--kubelet-certificate-authority',
    pki.caFile,
    '--kubelet-client-certificate',
    pki.kubeletClientCertFile,
    '--kubelet-client-key',
    pki.kubeletClientKeyFile,
  ];
}

/**
 * Node `nodeName`'s kubelet serving certificate, `DIR/pki/kubelet-NODE.crt`, for the address it
 * registers (what the apiserver dials) and the loopback names; returns the kubelet-sim's TLS flags.
 */
export async function kubeletTlsArgs(labDir: string, nodeName: string, hosts: string[]): Promise<string[]> {
  const ca = await ensureCa(path.join(labDir, PKI_DIR));
  const cert = await issueServingCert(
    ca,
    `kubelet-${nodeName}`,
    sansOf([...LOOPBACK_HOSTS, nodeName, ...hosts]),
  );
  return [
    '--tls-cert-file',
    cert.certFile,
    '--tls-private-key-file',
    cert.keyFile,
    '--client-ca-file',
    ca.certFile,
  ];
}

/**
 * Node `nodeName`'s cri-shim streaming serving certificate, `DIR/pki/cri-shim-NODE.crt`, for the
 * loopback address the streaming server listens on (the kubelet-sim dials its URLs and trusts the
 * lab CA through NODE_EXTRA_CA_CERTS); returns the cri-shim's streaming TLS flags.
 */
export async function criShimStreamingTlsArgs(labDir: string, nodeName: string): Promise<string[]> {
  const cert = await runtimeStreamingCert(labDir, nodeName);
  return ['--streaming-tls-cert-file', cert.certFile, '--streaming-tls-private-key-file', cert.keyFile];
}

/** The certificate and key files of that streaming server (containerd takes them in its config). */
export async function runtimeStreamingCert(
  labDir: string,
  nodeName: string,
): Promise<{ certFile: string; keyFile: string }> {
  const ca = await ensureCa(path.join(labDir, PKI_DIR));
  return issueServingCert(ca, `cri-shim-${nodeName}`, {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
}

/** The apiserver's client certificate for etcd (kubeadm's `apiserver-etcd-client`). */
export const ETCD_CLIENT_CERT = 'apiserver-etcd-client';

/**
 * etcd's PKI, kubeadm's layout: a CA of its own in `DIR/pki/etcd/` (so nothing the lab CA issues,
 * a kubelet's or the apiserver's kubelet-client certificate, opens etcd), etcd's serving
 * certificate `etcd/server.crt` for the loopback names, and the apiserver's client certificate
 * `apiserver-etcd-client.crt` (CN kube-apiserver-etcd-client). Returns etcd's TLS settings and
 * the apiserver's `--etcd-cafile`/`--etcd-certfile`/`--etcd-keyfile` flags.
 */
export async function ensureEtcdPki(labDir: string): Promise<{ tls: EtcdTls; apiserverArgs: string[] }> {
  const ca = await ensureCa(path.join(labDir, PKI_DIR, 'etcd'));
  const server = await issueServingCert(ca, 'server', sansOf(LOOPBACK_HOSTS));
  const client = await issueClientCert(ca, 'kube-apiserver-etcd-client', [], {
    name: ETCD_CLIENT_CERT,
    dir: path.join(labDir, PKI_DIR),
  });
  return {
    tls: {
      caFile: ca.certFile,
      certFile: server.certFile,
      keyFile: server.keyFile,
      clientCertFile: client.certFile,
      clientKeyFile: client.keyFile,
    },
    apiserverArgs: [
      '--etcd-cafile',
      ca.certFile,
      '--etcd-certfile',
      client.certFile,
      '--etcd-keyfile',
      client.keyFile,
    ],
  };
}
