/**
 * Authentication: who is asking. A bearer token from the static token file (`--token-auth-file`),
 * else a JWT for the apiserver's audience: HS256 signed with the lab key, or RS256 signed by a key
 * whose public half was given with `--service-account-key-file` (docs/wiring.md); anything else is
 * 401 `Unauthorized`, never saying which check failed.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/filters/authentication.go` (WithAuthentication: the
 * credential is removed from the request once checked, failures answer a bare 401 Status) with a
 * union of token authenticators, the token file first as upstream orders it. A handful of paths are public, as upstream's
 * system:public-info-viewer role lets anyone read them.
 */
import type { IncomingMessage } from 'node:http';
import type { KeyObject } from 'node:crypto';
import { StaticTokenAuthenticator, type StaticTokenEntry } from '../shared/auth/token-file.js';
import {
  APISERVER_AUDIENCE,
  bearerToken,
  verifyTokenWithKeys,
  type UserInfo,
} from '../shared/auth/tokens.js';

/** Readable without credentials (upstream grants these to system:unauthenticated). */
export const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/livez', '/version', '/version/']);

export interface AuthenticatorOptions {
  /** Entries of `--token-auth-file`, tried before JWTs. */
  staticTokens?: StaticTokenEntry[];
  /** RSA public keys of `--service-account-key-file`: RS256 tokens are checked against these. */
  serviceAccountKeys?: KeyObject[];
}

export class Authenticator {
  private readonly staticTokens?: StaticTokenAuthenticator;
  private readonly rs256: KeyObject[];

  constructor(
    private readonly key: Buffer,
    opts: AuthenticatorOptions = {},
  ) {
    if (opts.staticTokens?.length) this.staticTokens = new StaticTokenAuthenticator(opts.staticTokens);
    this.rs256 = [...(opts.serviceAccountKeys ?? [])];
  }

  /** The user, or undefined for a missing, malformed, forged, expired or foreign-audience token. */
  authenticate(req: IncomingMessage): UserInfo | undefined {
    const token = bearerToken(req.headers.authorization);
    if (!token) return undefined;
    return (
      this.staticTokens?.authenticate(token) ??
      verifyTokenWithKeys({ hs256: this.key, rs256: this.rs256 }, token, APISERVER_AUDIENCE)
    );
  }
}

export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.has(path) || /^\/(healthz|readyz|livez)\/[\w-]+$/.test(path);
}
