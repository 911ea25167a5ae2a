/**
 * Bearer tokens for every hop of the lab: users and nodes towards the apiserver, the apiserver
 * towards kubelets. One HS256 signing key (the lab's `token-signing.key`) signs them all; the
 * audience tells the hops apart, so a user's apiserver token is refused by a kubelet.
 *
 * Mirrors the role of kube-apiserver's JWT authenticators (`--service-account-issuer`,
 * `--api-audiences`, k8s.io/apiserver `pkg/authentication/token/...`): signature, expiry,
 * not-before, issuer and audience are all checked; the username is `sub`, the groups a `groups`
 * claim. Signing and checking is jsonwebtoken's, never ours.
 */
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';

export const LAB_ISSUER = 'kexec-lab';
/** Audience of tokens the apiserver accepts (`--api-audiences`). */
export const APISERVER_AUDIENCE = 'kexec-lab-apiserver';
/** Audience of tokens a kubelet accepts: only the apiserver holds one. */
export const KUBELET_AUDIENCE = 'kubelet';
/** The identity the apiserver presents to kubelets. */
export const APISERVER_USER = 'system:apiserver';
export const ADMIN_GROUP = 'system:masters';
export const NODES_GROUP = 'system:nodes';

export interface UserInfo {
  name: string;
  groups: string[];
}

export interface MintOptions {
  audience: string;
  issuer?: string;
  /** Lifetime in seconds; default one day. */
  expiresInSec?: number;
}

const CLOCK_SKEW_SEC = 30;

export function readSigningKey(file: string): Buffer {
  const key = readFileSync(file);
  if (key.length < 32) throw new Error(`signing key ${file} is shorter than 32 bytes`);
  return key;
}

export function mintToken(key: Buffer, user: UserInfo, opts: MintOptions): string {
  return jwt.sign({ groups: user.groups }, key, {
    algorithm: 'HS256',
    subject: user.name,
    audience: opts.audience,
    issuer: opts.issuer ?? LAB_ISSUER,
    expiresIn: opts.expiresInSec ?? 24 * 3600,
  });
}

/** The `Authorization` value's token, or undefined when there is no bearer token. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}

/** Checks a token; undefined for any failure (the caller answers 401 without saying why). */
export function verifyToken(
  key: Buffer,
  token: string,
  audience: string,
  issuer = LAB_ISSUER,
): UserInfo | undefined {
  try {
    const claims = jwt.verify(token, key, {
      algorithms: ['HS256'],
      audience,
      issuer,
      clockTolerance: CLOCK_SKEW_SEC,
    });
    if (typeof claims === 'string' || typeof claims.sub !== 'string' || !claims.sub) return undefined;
    const groups = Array.isArray(claims.groups)
      ? claims.groups.filter((g): g is string => typeof g === 'string')
      : [];
    return { name: claims.sub, groups };
  } catch {
    return undefined;
  }
}
