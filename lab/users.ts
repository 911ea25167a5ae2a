/**
 * Lab users: a kubeconfig for a named user, its bearer token signed with the lab's key, so a
 * student can try what another identity may do (the apiserver's `--authorization-policy-file`
 * grants it). `npm run lab:user -- --name alice --group devs` (setup-main.ts `user`).
 *
 * Plays the part of `kubeadm kubeconfig user --client-name NAME --token` and `kubectl create token
 * --duration`: a token for any name, with groups and a lifetime, in a kubeconfig for the same
 * cluster (server and CA) as the lab admin's. The lab replaces its signing key at every start, so
 * user kubeconfigs, like the admin's, last until the next start (or their lifetime) only.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import {
  APISERVER_AUDIENCE,
  MAX_LAB_TOKEN_LIFETIME_SEC,
  mintToken,
  readSigningKey,
} from '../shared/auth/tokens.js';
import { KUBECONFIG_FILE, SIGNING_KEY_FILE, kubeconfigYaml, writePrivate } from './credentials.js';

export const USERS_DIR = 'users';

/** Longest token lifetime handed out: the most the apiserver accepts for a lab token. */
export const MAX_TTL_SEC = MAX_LAB_TOKEN_LIFETIME_SEC;

export interface LabUserOptions {
  name: string;
  groups?: string[];
  /** Token lifetime in seconds; default one day. */
  ttlSec?: number;
  /** The context's namespace; default `default`. */
  namespace?: string;
  /** Where to write the kubeconfig; default `DIR/users/NAME.kubeconfig`. */
  output?: string;
}

export interface LabUser {
  kubeconfigPath: string;
  token: string;
  expiresAt: Date;
}

export class LabUserError extends Error {
  override name = 'LabUserError';
}

/** Checks a user or group name: printable, no spaces or commas, not one of the lab's own identities. */
function checkName(what: string, name: string): void {
  if (!/^[\x21-\x7e]{1,253}$/.test(name) || name.includes(',')) {
    throw new LabUserError(
      `${what} ${JSON.stringify(name)} must be 1-253 printable characters without spaces or commas`,
    );
  }
  // system: is Kubernetes' reserved prefix: system:masters is the admin group, system:nodes and
  // system:node:NAME the kubelets'; a lab user gets none of them (issue #11).
  if (name.startsWith('system:')) {
    throw new LabUserError(
      `${what} ${JSON.stringify(name)}: system: names are the cluster's own identities (admin, apiserver, nodes)`,
    );
  }
}

/** The lab admin's cluster entry (server and CA) from `DIR/kubeconfig`. */
function labCluster(dir: string): { server: string; caPem?: string } {
  const file = path.join(dir, KUBECONFIG_FILE);
  if (!fs.existsSync(file))
    throw new LabUserError(`no lab kubeconfig at ${file}: start the lab first (npm start)`);
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as {
    clusters?: { cluster?: { server?: string; 'certificate-authority-data'?: string } }[];
  };
  const cluster = doc.clusters?.[0]?.cluster;
  if (!cluster?.server) throw new LabUserError(`${file} names no cluster server`);
  const ca = cluster['certificate-authority-data'];
  return { server: cluster.server, ...(ca ? { caPem: Buffer.from(ca, 'base64').toString('utf8') } : {}) };
}

/** Mints a token for the user and writes its kubeconfig (mode 0600). */
export function mintLabUser(dir: string, o: LabUserOptions): LabUser {
  checkName('user', o.name);
  const groups = [...new Set(o.groups ?? [])];
  for (const g of groups) checkName('group', g);
  const ttlSec = o.ttlSec ?? 24 * 3600;
  if (!Number.isInteger(ttlSec) || ttlSec < 1 || ttlSec > MAX_TTL_SEC) {
    throw new LabUserError(`the lifetime must be 1 s to ${MAX_TTL_SEC / 3600} h`);
  }
  const keyFile = path.join(dir, SIGNING_KEY_FILE);
  if (!fs.existsSync(keyFile))
    throw new LabUserError(`no signing key at ${keyFile}: start the lab first (npm start)`);
  const { server, caPem } = labCluster(dir);
  const token = mintToken(
    readSigningKey(keyFile),
    { name: o.name, groups },
    { audience: APISERVER_AUDIENCE, expiresInSec: ttlSec },
  );
  const kubeconfigPath =
    o.output ?? path.join(dir, USERS_DIR, `${o.name.replace(/[^A-Za-z0-9._-]/g, '_')}.kubeconfig`);
  fs.mkdirSync(path.dirname(kubeconfigPath), { recursive: true, mode: 0o700 });
  writePrivate(
    kubeconfigPath,
    kubeconfigYaml(server, token, { caPem, namespace: o.namespace, userName: o.name }),
  );
  return { kubeconfigPath, token, expiresAt: new Date(Date.now() + ttlSec * 1000) };
}

/** A Go-style duration (`90s`, `30m`, `12h`, `1h30m`) in whole seconds. */
export function parseTtl(value: string): number {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(value);
  if (!value || !m)
    throw new LabUserError(
      `expected a duration such as 90s, 30m, 12h or 1h30m, got ${JSON.stringify(value)}`,
    );
  return Number(m[1] ?? 0) * 3600 + Number(m[2] ?? 0) * 60 + Number(m[3] ?? 0);
}
