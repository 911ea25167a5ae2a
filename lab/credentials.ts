/**
 * The lab's credentials (docs/wiring.md "Credentials"): one HS256 signing key, the admin's token
 * for the kubeconfig and each node's token for its kubelet, all files mode 0600; and the
 * kubeconfig that points kexec / kubectl at the apiserver and trusts the lab CA (pki.ts).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  ADMIN_GROUP,
  APISERVER_AUDIENCE,
  NODES_GROUP,
  mintToken,
  readSigningKey,
} from '../shared/auth/tokens.js';

export const SIGNING_KEY_FILE = 'token-signing.key';
export const ADMIN_TOKEN_FILE = 'admin.token';
export const KUBECONFIG_FILE = 'kubeconfig';

/** The apiserver's RSA key for its token towards kubelets (private: the apiserver's only). */
export const KUBELET_TOKEN_KEY_FILE = 'kubelet-token.key';
/** Its public half: what each kubelet-sim verifies that token with. */
export const KUBELET_TOKEN_PUBLIC_KEY_FILE = 'kubelet-token.pub';

export function nodeTokenFile(node: string): string {
  return `${node}.token`;
}

export interface LabCredentials {
  dir: string;
  keyFile: string;
  adminToken: string;
  adminTokenFile: string;
  /** Node name → token file. */
  nodeTokenFiles: Record<string, string>;
  /** The apiserver's kubelet token key pair (writeKubeletTokenKeys), on a plain-http lab. */
  kubeletTokenKeys?: { keyFile: string; publicKeyFile: string };
}

/** Writes a file with mode 0600 (also when it already existed with a wider mode). */
export function writePrivate(file: string, data: string | Buffer): void {
  fs.writeFileSync(file, data, { mode: 0o600 });
  fs.chmodSync(file, 0o600);
}

/**
 * A signing key and tokens in `dir` (created 0700 if missing). By default every start gets a new
 * key, so tokens from an earlier run stop working; `reuseKey` keeps an existing key (the compose
 * setup, which may run again while the apiserver keeps the key it read).
 */
export function writeCredentials(
  dir: string,
  nodes: string[],
  opts: { expiresInSec?: number; reuseKey?: boolean } = {},
): LabCredentials {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(dir, SIGNING_KEY_FILE);
  let key: Buffer | undefined;
  if (opts.reuseKey && fs.existsSync(keyFile)) {
    key = readSigningKey(keyFile);
  } else {
    key = randomBytes(32);
    writePrivate(keyFile, key);
  }
  const mint = { audience: APISERVER_AUDIENCE, expiresInSec: opts.expiresInSec ?? 7 * 24 * 3600 };
  const adminToken = mintToken(key, { name: 'admin', groups: [ADMIN_GROUP] }, mint);
  const adminTokenFile = path.join(dir, ADMIN_TOKEN_FILE);
  writePrivate(adminTokenFile, `${adminToken}\n`);
  const nodeTokenFiles: Record<string, string> = {};
  for (const node of nodes) {
    const file = path.join(dir, nodeTokenFile(node));
    writePrivate(file, `${mintToken(key, { name: `system:node:${node}`, groups: [NODES_GROUP] }, mint)}\n`);
    nodeTokenFiles[node] = file;
  }
  return { dir, keyFile, adminToken, adminTokenFile, nodeTokenFiles };
}

/**
 * A new RSA key pair for the apiserver's token towards kubelets, where no client certificate
 * carries its identity (plain http): the apiserver signs with the private key, kubelets verify
 * with the public one, so a node can check the apiserver but never mint a token (issue #11).
 */
export function writeKubeletTokenKeys(dir: string): { keyFile: string; publicKeyFile: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const keyFile = path.join(dir, KUBELET_TOKEN_KEY_FILE);
  const publicKeyFile = path.join(dir, KUBELET_TOKEN_PUBLIC_KEY_FILE);
  writePrivate(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }));
  fs.writeFileSync(publicKeyFile, publicKey.export({ type: 'spki', format: 'pem' }), { mode: 0o644 });
  return { keyFile, publicKeyFile };
}

export interface KubeconfigOptions {
  namespace?: string;
  /** PEM of the CA that issued the apiserver's certificate: `certificate-authority-data`. */
  caPem?: string;
  /** Whose token it is; names the user and context entries. Default: the lab admin. */
  userName?: string;
}

/**
 * The kubeconfig (YAML text) for the lab admin (or `opts.userName`, users.ts): one cluster, one
 * user, one context. Over https
 * the cluster carries the lab CA (never insecure-skip-tls-verify).
 */
export function kubeconfigYaml(server: string, token: string, opts: KubeconfigOptions = {}): string {
  const cluster: Record<string, unknown> = { server };
  if (opts.caPem) cluster['certificate-authority-data'] = Buffer.from(opts.caPem).toString('base64');
  // Meaningless over plain http (kubectl ignores it there), but @kubernetes/client-node refuses an
  // http:// server without it.
  if (server.startsWith('http:')) cluster['insecure-skip-tls-verify'] = true;
  const user = opts.userName ? `kexec-lab-${opts.userName}` : 'kexec-lab-admin';
  const context = opts.userName ? user : 'kexec-lab';
  const doc = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'kexec-lab', cluster }],
    users: [{ name: user, user: { token } }],
    contexts: [
      {
        name: context,
        context: { cluster: 'kexec-lab', user, namespace: opts.namespace ?? 'default' },
      },
    ],
    'current-context': context,
    preferences: {},
  };
  return YAML.stringify(doc);
}

export function writeKubeconfig(
  file: string,
  server: string,
  token: string,
  opts: KubeconfigOptions = {},
): string {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  writePrivate(file, kubeconfigYaml(server, token, opts));
  return file;
}
