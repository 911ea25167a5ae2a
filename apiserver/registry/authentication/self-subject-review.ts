/**
 * `authentication.k8s.io/v1` SelfSubjectReview: "who am I?", the user this request was
 * authenticated as. What `kubectl auth whoami` creates.
 *
 * Mirrors kubernetes `pkg/registry/authentication/selfsubjectreview/rest.go` (Create: the status
 * carries the requester's userInfo; nothing is stored). Like upstream's authenticator, every
 * authenticated user is also in `system:authenticated`.
 */
import type { KubeObject } from '../../../shared/api/core-v1.js';
import type { Context, Creater } from '../rest.js';

export const AUTHENTICATION_GROUP = 'authentication.k8s.io';
export const AUTHENTICATED_GROUP = 'system:authenticated';

export class SelfSubjectReviewREST implements Creater {
  readonly kind = 'SelfSubjectReview';
  readonly namespaced = false;
  readonly singularName = 'selfsubjectreview';

  async create(ctx: Context): Promise<KubeObject> {
    const groups = ctx.user.groups.includes(AUTHENTICATED_GROUP)
      ? ctx.user.groups
      : [...ctx.user.groups, AUTHENTICATED_GROUP];
    const userInfo: Record<string, unknown> = { username: ctx.user.name, groups };
    if (ctx.user.uid) userInfo.uid = ctx.user.uid;
    return {
      kind: this.kind,
      apiVersion: `${AUTHENTICATION_GROUP}/v1`,
      metadata: {},
      status: { userInfo },
    };
  }
}
