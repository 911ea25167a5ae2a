/**
 * Who may use the kubelet's API: the authorization half of the kubelet's auth filter.
 *
 * Every authenticated request becomes attributes on the Node object (`nodes/proxy` for exec,
 * attach, port-forward, logs and the debug paths; `nodes/metrics` for `/metrics`; the verb from
 * the HTTP method: POST `create`, GET `get`, …), and is answered in one of two modes:
 * - the default, a fixed stand-in: only the apiserver's identities (its token's `system:apiserver`,
 *   its client certificate's `kube-apiserver-kubelet-client`);
 * - `--authorization-mode Webhook`, as kubeadm configures real kubelets: the kubelet asks the
 *   apiserver with a SubjectAccessReview (user, groups, attributes) and obeys its answer, so the
 *   cluster's RBAC decides. A missing grant is then upstream's famous
 *   `Forbidden (user=kube-apiserver-kubelet-client, verb=create, resource=nodes, subresource(s)=[proxy])`.
 *
 * Mirrors kubelet `pkg/kubelet/server/auth.go` (GetRequestAttributes), `server.go`
 * InstallAuthFilter (the Forbidden and Authorization error texts; upstream writes them as plain
 * text, here they are Statuses with the same message) and k8s.io/apiserver
 * `plugin/pkg/authorizer/webhook` (the SubjectAccessReview, its answers cached: allowed 5 min,
 * denied 30 s by default, as upstream). Differences: only `metrics` is split off `proxy`, the
 * paths this kubelet serves; a failed review is not cached.
 */
import type { UserInfo } from '../shared/auth/tokens.js';
import { APISERVER_KUBELET_CLIENT, APISERVER_USER } from '../shared/auth/tokens.js';
import { failureStatus, type Status } from '../shared/status.js';
import { errorMessage } from '../shared/logging.js';
import { METHOD_VERBS } from '../shared/auth/method-verbs.js';

/** `--authorization-mode`: only Webhook is a choice; unset is the apiserver-only stand-in. */
export type KubeletAuthorizationMode = 'Webhook';
export const KUBELET_AUTHORIZATION_MODES: readonly KubeletAuthorizationMode[] = ['Webhook'];

/** A request to the kubelet's API as the authorizer sees it (attributes on `nodes/NODE`). */
export interface KubeletRequestAttributes {
  user: UserInfo;
  verb: string;
  subresource: 'proxy' | 'metrics';
}

/** The SubjectAccessReview spec a webhook authorizer sends (authorization.k8s.io/v1). */
export interface SubjectAccessReviewSpec {
  user: string;
  groups: string[];
  uid?: string;
  resourceAttributes: {
    verb: string;
    group: string;
    version: string;
    resource: string;
    subresource: string;
    name: string;
  };
}

/** Asks the apiserver; resolves with its `status` (what the kubelet's client POSTs). */
export type SubjectAccessReviewer = (
  spec: SubjectAccessReviewSpec,
) => Promise<{ allowed?: boolean; reason?: string }>;

/** Answers a request's attributes: undefined lets it through, else the refusal. */
export type KubeletAuthorizer = (a: KubeletRequestAttributes) => Promise<Status | undefined>;

/** GetRequestAttributes: the verb from the method, `metrics` for /metrics, `proxy` for the rest. */
export function requestAttributes(
  user: UserInfo,
  method: string | undefined,
  path: string,
): KubeletRequestAttributes {
  return {
    user,
    verb: METHOD_VERBS[method ?? ''] ?? '',
    subresource: path === '/metrics' || path.startsWith('/metrics/') ? 'metrics' : 'proxy',
  };
}

/** The auth filter's 403 text (server.go InstallAuthFilter, 1.32+ with its subresource list). */
export function forbiddenStatus(a: KubeletRequestAttributes): Status {
  return failureStatus(
    403,
    `Forbidden (user=${a.user.name}, verb=${a.verb}, resource=nodes, subresource(s)=[${a.subresource}])`,
  );
}

/** The default mode: the apiserver's identities only. */
export const apiserverOnly: KubeletAuthorizer = async (a) =>
  a.user.name === APISERVER_USER || a.user.name === APISERVER_KUBELET_CLIENT ? undefined : forbiddenStatus(a);

/**
 * How long the webhook's answers are kept (`--authorization-webhook-cache-authorized-ttl`,
 * `--authorization-webhook-cache-unauthorized-ttl`; upstream's defaults 5 min and 30 s; 0 keeps
 * none) and for how many distinct requests at most.
 */
export interface WebhookCacheOptions {
  authorizedTtlMs: number;
  unauthorizedTtlMs: number;
  maxEntries?: number;
}

export const DEFAULT_WEBHOOK_CACHE: WebhookCacheOptions = {
  authorizedTtlMs: 5 * 60_000,
  unauthorizedTtlMs: 30_000,
};

/** `--authorization-mode Webhook`: a SubjectAccessReview per request (and answer cached), on Node `nodeName`. */
export function webhookAuthorizer(
  nodeName: string,
  review: SubjectAccessReviewer,
  log: (line: string) => void,
  cache: WebhookCacheOptions = DEFAULT_WEBHOOK_CACHE,
): KubeletAuthorizer {
  // Insertion order is age order: the oldest entry goes first when the cache is full.
  const answers = new Map<string, { allowed: boolean; reason: string; until: number }>();
  const maxEntries = cache.maxEntries ?? 1024;
  const ask = async (a: KubeletRequestAttributes): Promise<{ allowed: boolean; reason: string }> => {
    const key = JSON.stringify([a.user.name, a.user.uid, a.user.groups, a.verb, a.subresource]);
    const hit = answers.get(key);
    if (hit && hit.until > Date.now()) return hit;
    answers.delete(key);
    const status = await review({
      user: a.user.name,
      groups: a.user.groups,
      ...(a.user.uid ? { uid: a.user.uid } : {}),
      resourceAttributes: {
        verb: a.verb,
        group: '',
        version: 'v1',
        resource: 'nodes',
        subresource: a.subresource,
        name: nodeName,
      },
    });
    const answer = { allowed: status.allowed === true, reason: status.reason ?? '' };
    const ttl = answer.allowed ? cache.authorizedTtlMs : cache.unauthorizedTtlMs;
    if (ttl > 0) {
      if (answers.size >= maxEntries) answers.delete(answers.keys().next().value as string);
      answers.set(key, { ...answer, until: Date.now() + ttl });
    }
    return answer;
  };
  return async (a) => {
    let answer: { allowed: boolean; reason: string };
    try {
      answer = await ask(a);
    } catch (err) {
      const msg = `Authorization error (user=${a.user.name}, verb=${a.verb}, resource=nodes, subresource=${a.subresource})`;
      log(`${msg}: ${errorMessage(err)}`);
      return failureStatus(500, msg);
    }
    if (answer.allowed) return undefined;
    const denied = forbiddenStatus(a);
    log(`${denied.message}. Reason: ${JSON.stringify(answer.reason)}.`);
    return denied;
  };
}
