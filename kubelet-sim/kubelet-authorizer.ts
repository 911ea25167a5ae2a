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
 * `plugin/pkg/authorizer/webhook` (the SubjectAccessReview). Differences: no decision cache
 * (upstream keeps allowed answers 5 min and denied ones 30 s,
 * `--authorization-webhook-cache-authorized-ttl` / `-unauthorized-ttl`), so a changed grant shows
 * on the very next request; only `metrics` is split off `proxy`, the paths this kubelet serves.
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

/** `--authorization-mode Webhook`: a SubjectAccessReview for each request, on the Node `nodeName`. */
export function webhookAuthorizer(
  nodeName: string,
  review: SubjectAccessReviewer,
  log: (line: string) => void,
): KubeletAuthorizer {
  return async (a) => {
    let status: { allowed?: boolean; reason?: string };
    try {
      status = await review({
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
    } catch (err) {
      const msg = `Authorization error (user=${a.user.name}, verb=${a.verb}, resource=nodes, subresource=${a.subresource})`;
      log(`${msg}: ${errorMessage(err)}`);
      return failureStatus(500, msg);
    }
    if (status.allowed === true) return undefined;
    const denied = forbiddenStatus(a);
    log(`${denied.message}. Reason: ${JSON.stringify(status.reason ?? '')}.`);
    return denied;
  };
}
