/**
 * Authorisation: may this user perform this verb on this resource? The decision reads only the
 * request attributes (user, verb, namespace, resource, subresource, name), as upstream's
 * authorizers do; the denial is a 403 Forbidden Status worded like upstream's.
 *
 * Mirrors k8s.io/apiserver `pkg/authorization/authorizer/interfaces.go` (Attributes, Decision),
 * `pkg/endpoints/filters/authorization.go` and `pkg/endpoints/handlers/responsewriters/errors.go`
 * (ForbiddenStatusError's message). The policy is a fixed stand-in for RBAC plus the Node
 * authorizer: `system:masters` may do anything; `system:nodes` may read pods and nodes, write
 * nodes and node status, write pod status, and renew leases in `kube-node-lease`; every
 * authenticated user may read discovery and OpenAPI and ask about itself (SelfSubjectAccessReview,
 * SelfSubjectReview: upstream's system:basic-user). Which node and which pod a node may touch is
 * checked after the object is known (node-restriction.ts), as upstream's NodeRestriction
 * admission does.
 *
 * `--authorization-policy-file` (authz-policy.ts) adds rules on top of these, as upstream's
 * authorizers are chained (Node, then RBAC): a request is allowed if any of them allows it; each
 * server passes its own policy's authorizer to `authorize`.
 */
import { ADMIN_GROUP, NODES_GROUP, type UserInfo } from '../shared/auth/tokens.js';
import { StatusError } from '../shared/status.js';
import type { RequestInfo } from './endpoints/request-info.js';

export interface Attributes {
  user: UserInfo;
  verb: string;
  isResourceRequest: boolean;
  path: string;
  apiGroup: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
}

export type Decision = { allowed: true } | { allowed: false; reason: string };

export type Authorizer = (a: Attributes) => Decision;

export function attributesFrom(user: UserInfo, info: RequestInfo): Attributes {
  return {
    user,
    verb: info.verb,
    isResourceRequest: info.isResourceRequest,
    path: info.path,
    apiGroup: info.apiGroup,
    namespace: info.namespace,
    resource: info.resource,
    subresource: info.subresource,
    name: info.name,
  };
}

const READ = new Set(['get', 'list', 'watch']);
const WRITE = new Set(['create', 'update', 'patch']);

/** What nodes may do, by resource path (the Node authorizer's rules, reduced to pods and nodes). */
const NODE_RULES: Record<string, Set<string>> = {
  pods: READ,
  nodes: new Set([...READ, ...WRITE]),
  'nodes/status': new Set(['get', 'update', 'patch']),
  'pods/status': new Set(['get', 'update', 'patch']),
  // system:node's role lets a kubelet record what happens to its pods.
  events: new Set(['create', 'update', 'patch']),
};

/** Discovery, OpenAPI and version are readable by every authenticated user (system:discovery). */
const DISCOVERY_PATHS = /^\/(api(\/v1)?|apis(\/[^/]+){0,2}|version|openapi\/v3(\/apis?(\/[^/]+){1,2})?)\/?$/;

/** What every authenticated user may create about itself (upstream system:basic-user). */
const SELF_REVIEWS = new Set([
  'authorization.k8s.io/selfsubjectaccessreviews',
  'authentication.k8s.io/selfsubjectreviews',
]);

/**
 * What a kubelet asks the apiserver before it serves its own API (upstream NodeRules: "Needed to
 * check API access"): SubjectAccessReviews, for `--authorization-mode Webhook`.
 */
const NODE_REVIEWS = new Set(['authorization.k8s.io/subjectaccessreviews']);

/** Nodes renew their Lease (upstream system:node's rule; NodeRestriction limits it to their own). */
const NODE_LEASE_VERBS = new Set(['get', 'create', 'update', 'patch']);

/** The built-in rules, then the server's policy if any: allowed if either allows. */
export function authorize(a: Attributes, policy?: Authorizer): Decision {
  const builtin = builtinAuthorize(a);
  if (builtin.allowed) return builtin;
  return policy?.(a) ?? builtin;
}

function builtinAuthorize(a: Attributes): Decision {
  if (a.user.groups.includes(ADMIN_GROUP)) return { allowed: true };
  if (!a.isResourceRequest) {
    if (a.verb === 'get' && DISCOVERY_PATHS.test(a.path)) return { allowed: true };
    return { allowed: false, reason: '' };
  }
  if (a.verb === 'create' && !a.subresource && SELF_REVIEWS.has(`${a.apiGroup}/${a.resource}`)) {
    return { allowed: true };
  }
  if (
    a.user.groups.includes(NODES_GROUP) &&
    a.verb === 'create' &&
    !a.subresource &&
    NODE_REVIEWS.has(`${a.apiGroup}/${a.resource}`)
  ) {
    return { allowed: true };
  }
  if (
    a.user.groups.includes(NODES_GROUP) &&
    a.apiGroup === 'coordination.k8s.io' &&
    a.resource === 'leases' &&
    a.namespace === 'kube-node-lease' &&
    NODE_LEASE_VERBS.has(a.verb)
  ) {
    return { allowed: true };
  }
  if (a.user.groups.includes(NODES_GROUP) && a.apiGroup === '') {
    const key = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
    if (NODE_RULES[key]?.has(a.verb)) return { allowed: true };
  }
  return { allowed: false, reason: '' };
}

/** ForbiddenStatusError: `pods "demo" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "default"`. */
export function forbidden(a: Attributes, reason: string): StatusError {
  const suffix = reason ? `: ${reason}` : '';
  if (!a.isResourceRequest) {
    return StatusError.of(
      403,
      `forbidden: User ${JSON.stringify(a.user.name)} cannot ${a.verb} path ${JSON.stringify(a.path)}${suffix}`,
      'Forbidden',
      {},
    );
  }
  const resource = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace ? `in the namespace ${JSON.stringify(a.namespace)}` : 'at the cluster scope';
  const subject = a.name ? `${a.resource} ${JSON.stringify(a.name)}` : a.resource;
  return StatusError.of(
    403,
    `${subject} is forbidden: User ${JSON.stringify(a.user.name)} cannot ${a.verb} resource ${JSON.stringify(resource)} in API group ${JSON.stringify(a.apiGroup)} ${scope}${suffix}`,
    'Forbidden',
    { name: a.name || undefined, group: a.apiGroup, kind: a.resource },
  );
}
