/**
 * `authorization.k8s.io/v1` SelfSubjectAccessReview: "may I do this?", answered by the same
 * authorizer that guards every request (the built-in rules and `--authorization-policy-file`).
 * What `kubectl auth can-i VERB RESOURCE` creates; it prints `yes` (exit 0) or `no` (exit 1).
 *
 * Mirrors kubernetes `pkg/registry/authorization/selfsubjectaccessreview/rest.go` (Create: the
 * user is the requester's own; exactly one of resourceAttributes and nonResourceAttributes; the
 * status carries allowed, denied and reason) and `pkg/registry/authorization/util`
 * (ResourceAttributesFrom, NonResourceAttributesFrom). Nothing is stored.
 */
import type { KubeObject } from '../../../shared/api/core-v1.js';
import { isRecord } from '../../api/json-values.js';
import { badRequest, invalid } from '../../api/errors.js';
import type { Attributes, Authorizer } from '../../authz.js';
import type { Context, Creater } from '../rest.js';
import type { UserInfo } from '../../../shared/auth/tokens.js';

export const AUTHORIZATION_GROUP = 'authorization.k8s.io';

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

export class SelfSubjectAccessReviewREST implements Creater {
  readonly kind = 'SelfSubjectAccessReview';
  readonly namespaced = false;
  readonly singularName = 'selfsubjectaccessreview';

  /** `authorize` is the apiserver's own decision function (authz.ts authorize with its policy). */
  constructor(private readonly authorize: Authorizer) {}

  async create(ctx: Context, obj: KubeObject): Promise<KubeObject> {
    if (!isRecord(obj.spec)) throw badRequest(`${this.kind}: spec is required`);
    return accessReview(this.kind, obj.spec, ctx.user, this.authorize);
  }
}

/**
 * The review both kinds share: the attributes from `spec` (exactly one of resourceAttributes and
 * nonResourceAttributes) for `user`, the decision, and the object with its status.
 */
export function accessReview(
  kind: string,
  spec: Record<string, unknown>,
  user: UserInfo,
  authorize: Authorizer,
): KubeObject {
  const ra = spec.resourceAttributes;
  const nra = spec.nonResourceAttributes;
  if (isRecord(ra) === isRecord(nra)) {
    throw invalid(kind, '', [
      {
        type: 'FieldValueRequired',
        field: 'spec.resourceAttributes',
        detail: 'exactly one of nonResourceAttributes or resourceAttributes must be specified',
      },
    ]);
  }
  const a: Attributes = isRecord(ra)
    ? {
        user,
        isResourceRequest: true,
        verb: str(ra.verb),
        namespace: str(ra.namespace),
        apiGroup: str(ra.group),
        resource: str(ra.resource),
        subresource: str(ra.subresource),
        name: str(ra.name),
        path: '',
      }
    : {
        user,
        isResourceRequest: false,
        verb: str((nra as Record<string, unknown>).verb),
        path: str((nra as Record<string, unknown>).path),
        namespace: '',
        apiGroup: '',
        resource: '',
        subresource: '',
        name: '',
      };
  const decision = authorize(a);
  const status: Record<string, unknown> = { allowed: decision.allowed };
  if (!decision.allowed && decision.reason) status.reason = decision.reason;
  return { kind, apiVersion: `${AUTHORIZATION_GROUP}/v1`, metadata: {}, spec, status };
}
