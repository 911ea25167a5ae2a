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
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import jwt from 'jsonwebtoken';
import { errorMessage } from '../logging.js';

export const LAB_ISSUER = 'kexec-lab';
/** Audience of tokens the apiserver accepts (`--api-audiences`). */
export const APISERVER_AUDIENCE = 'kexec-lab-apiserver';
/** Audience of tokens a kubelet accepts: only the apiserver holds one. */
export const KUBELET_AUDIENCE = 'kubelet';
/** The identity the apiserver presents to kubelets. */
export const APISERVER_USER = 'system:apiserver';
/**
 * The CN of the client certificate the apiserver presents to kubelets (kubeadm's
 * `apiserver-kubelet-client.crt`, `--kubelet-client-certificate`).
 */
export const APISERVER_KUBELET_CLIENT = 'kube-apiserver-kubelet-client';
export const ADMIN_GROUP = 'system:masters';
export const NODES_GROUP = 'system:nodes';

export interface UserInfo {
  name: string;
  groups: string[];
  /** Set for users from a token auth file (its third column). */
  uid?: string;
}

export interface MintOptions {
  audience: string;
  issuer?: string;
  /** Lifetime in seconds; default one day. */
  expiresInSec?: number;
}

const CLOCK_SKEW_SEC = 30;

/**
 * The longest lifetime of a token signed with the lab's key (HS256): users (lab/users.ts), nodes
 * and the admin get at most this, and the apiserver and kubelets refuse a longer one, so a leaked
 * token is never good for longer than a week (as `--service-account-max-token-expiration` bounds
 * what kube-apiserver issues).
 */
export const MAX_LAB_TOKEN_LIFETIME_SEC = 7 * 24 * 3600;

export function readSigningKey(file: string): Buffer {
  const key = readFileSync(file);
  if (key.length < 32) throw new Error(`signing key ${file} is shorter than 32 bytes`);
  return key;
}

export function mintToken(key: Buffer, user: UserInfo, opts: MintOptions): string {
  const lifetime = opts.expiresInSec ?? 24 * 3600;
  if (lifetime > MAX_LAB_TOKEN_LIFETIME_SEC) {
    throw new Error(`a lab token lives at most ${MAX_LAB_TOKEN_LIFETIME_SEC} s, not ${lifetime} s`);
  }
  return jwt.sign({ groups: user.groups }, key, {
    algorithm: 'HS256',
    subject: user.name,
    audience: opts.audience,
    issuer: opts.issuer ?? LAB_ISSUER,
    expiresIn: lifetime,
  });
}

/** An RS256 token, as a service-account token issuer signs them (tests and lab tooling). */
export function mintRS256Token(
  privateKey: KeyObject | string | Buffer,
  user: UserInfo,
  opts: MintOptions,
): string {
  return jwt.sign({ groups: user.groups }, privateKey, {
    algorithm: 'RS256',
    subject: user.name,
    audience: opts.audience,
    issuer: opts.issuer ?? LAB_ISSUER,
    expiresIn: opts.expiresInSec ?? 24 * 3600,
  });
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g;

/**
 * The RSA public keys of PEM text (`--service-account-key-file`): PUBLIC KEY, RSA PUBLIC KEY,
 * CERTIFICATE, or a private key whose public half is taken, as upstream's keyutil accepts. Throws
 * when the text holds no key or a key that is not RSA.
 */
export function parsePublicKeys(pem: string | Buffer, source = 'key file'): KeyObject[] {
  const blocks = pem.toString('utf8').match(PEM_BLOCK) ?? [];
  if (blocks.length === 0) throw new Error(`${source}: no PEM block found`);
  return blocks.map((block, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(block);
    } catch (err) {
      throw new Error(`${source}: PEM block ${i + 1}: ${errorMessage(err)}`);
    }
    if (key.asymmetricKeyType !== 'rsa')
      throw new Error(`${source}: PEM block ${i + 1} is a ${key.asymmetricKeyType} key, not RSA`);
    return key;
  });
}

export function readPublicKeys(file: string): KeyObject[] {
  return parsePublicKeys(readFileSync(file), file);
}

/** Keys a JWT may be verified with, by algorithm: an HMAC secret and RSA public keys. */
export interface VerificationKeys {
  hs256?: Buffer;
  rs256?: readonly KeyObject[];
}

/** The token header's `alg`, undefined when the token is not a decodable JWT. */
function tokenAlgorithm(token: string): string | undefined {
  const decoded = jwt.decode(token, { complete: true });
  const alg: unknown = decoded?.header.alg;
  return typeof alg === 'string' ? alg : undefined;
}

/**
 * Checks an HS256 or RS256 token. The key set is picked by the header's `alg` and only that
 * algorithm is allowed, so an HS256 token is never checked against a public key (algorithm
 * confusion: a public key's PEM used as an HMAC secret). Undefined for any failure.
 */
export function verifyTokenWithKeys(
  keys: VerificationKeys,
  token: string,
  audience: string,
  issuer = LAB_ISSUER,
): UserInfo | undefined {
  const alg = tokenAlgorithm(token);
  if (alg === 'HS256') return keys.hs256 && verifyToken(keys.hs256, token, audience, issuer);
  if (alg === 'RS256') {
    for (const key of keys.rs256 ?? []) {
      const user = verifyWith(key, 'RS256', token, audience, issuer);
      if (user) return user;
    }
  }
  return undefined;
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
  return verifyWith(key, 'HS256', token, audience, issuer, MAX_LAB_TOKEN_LIFETIME_SEC);
}

function verifyWith(
  key: Buffer | KeyObject,
  algorithm: 'HS256' | 'RS256',
  token: string,
  audience: string,
  issuer: string,
  maxLifetimeSec?: number,
): UserInfo | undefined {
  try {
    const claims = jwt.verify(token, key, {
      algorithms: [algorithm],
      audience,
      issuer,
      clockTolerance: CLOCK_SKEW_SEC,
    });
    if (typeof claims === 'string' || typeof claims.sub !== 'string' || !claims.sub) return undefined;
    // jsonwebtoken checks `exp` only when present: a token without one would be good forever.
    if (typeof claims.exp !== 'number') return undefined;
    if (maxLifetimeSec !== undefined && claims.exp - Date.now() / 1000 > maxLifetimeSec + CLOCK_SKEW_SEC) {
      return undefined;
    }
    const groups = Array.isArray(claims.groups)
      ? claims.groups.filter((g): g is string => typeof g === 'string')
      : [];
    return { name: claims.sub, groups };
  } catch {
    return undefined;
  }
}
