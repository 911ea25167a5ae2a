/**
 * `authorization.k8s.io/v1` SubjectAccessReview: "may THIS user do this?", asked by a component
 * that authorizes its own requests through the apiserver. A kubelet with `--authorization-mode
 * Webhook` asks it for every request to its API (`nodes/proxy` for exec, attach, port-forward,
 * logs), which is how a missing RBAC grant for the apiserver's kubelet client turns into the
 * kubelet's `Forbidden (user=…, verb=create, resource=nodes, subresource(s)=[proxy])`.
 *
 * Mirrors kubernetes `pkg/registry/authorization/subjectaccessreview/rest.go` (Create) and
 * `pkg/apis/authorization/validation` (ValidateSubjectAccessReviewSpec: a user or a group is
 * required); answered by the same authorizer as every request. Nothing is stored. Creating one
 * needs `create` on it (the kubelet's system:nodes have it, as upstream's NodeRules give).
 */
import type { KubeObject } from '../../../shared/api/core-v1.js';
import { isRecord } from '../../api/json-values.js';
import { badRequest, invalid } from '../../api/errors.js';
import type { Authorizer } from '../../authz.js';
import type { Context, Creater } from '../rest.js';
import { accessReview } from './self-subject-access-review.js';

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((s) => typeof s === 'string') : []);

export class SubjectAccessReviewREST implements Creater {
  readonly kind = 'SubjectAccessReview';
  readonly namespaced = false;
  readonly singularName = 'subjectaccessreview';

  constructor(private readonly authorize: Authorizer) {}

  async create(_ctx: Context, obj: KubeObject): Promise<KubeObject> {
    const spec = obj.spec;
    if (!isRecord(spec)) throw badRequest(`${this.kind}: spec is required`);
    const name = typeof spec.user === 'string' ? spec.user : '';
    const groups = strings(spec.groups);
    if (!name && groups.length === 0) {
      throw invalid(this.kind, '', [
        {
          type: 'FieldValueRequired',
          field: 'spec.user',
          detail: 'at least one of user or group must be specified',
        },
      ]);
    }
    return accessReview(this.kind, spec, { name, groups }, this.authorize);
  }
}
