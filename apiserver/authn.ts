/**
 * Authentication: who is asking. A bearer JWT signed with the lab key for the apiserver's audience
 * (docs/wiring.md); anything else is 401 `Unauthorized`, never saying which check failed.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/filters/authentication.go` (WithAuthentication: the
 * credential is removed from the request once checked, failures answer a bare 401 Status) with a
 * single token authenticator. A handful of paths are public, as upstream's
 * system:public-info-viewer role lets anyone read them.
 */
import type { IncomingMessage } from 'node:http';
import { APISERVER_AUDIENCE, bearerToken, verifyToken, type UserInfo } from '../shared/auth/tokens.js';

/** Readable without credentials (upstream grants these to system:unauthenticated). */
export const PUBLIC_PATHS = new Set(['/healthz', '/readyz', '/livez', '/version', '/version/']);

export class Authenticator {
  constructor(private readonly key: Buffer) {}

  /** The user, or undefined for a missing, malformed, forged, expired or foreign-audience token. */
  authenticate(req: IncomingMessage): UserInfo | undefined {
    const token = bearerToken(req.headers.authorization);
    if (!token) return undefined;
    return verifyToken(this.key, token, APISERVER_AUDIENCE);
  }
}

export function isPublicPath(path: string): boolean {
  return PUBLIC_PATHS.has(path) || /^\/(healthz|readyz|livez)\/[\w-]+$/.test(path);
}
