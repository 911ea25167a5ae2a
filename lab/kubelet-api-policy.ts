/**
 * The lab's grant of the kubelet API to the apiserver: `DIR/kubelet-api-admin.yaml`, an
 * `--authorization-policy-file` of the apiserver holding what kubeadm (1.37+, kubernetes#138957)
 * creates as the ClusterRoleBinding `kubeadm:apiserver-kubelet-client`: the built-in ClusterRole
 * `system:kubelet-api-admin` for the user `kube-apiserver-kubelet-client` (the CN of the
 * apiserver's client certificate; `system:apiserver`, its token's user, in a plain-http lab).
 *
 * The lab's kubelet-sims run `--authorization-mode Webhook`, so every exec, attach, port-forward
 * and log request reaches a pod only if this grant says so; the apiserver follows the file while
 * it runs. Lab 6 (docs/labs/06-kubelet-forbidden.md) takes it away and puts it back. Written
 * when missing, never overwritten: an edit is the student's, and survives a restart of the lab.
 */
import fs from 'node:fs';
import path from 'node:path';
import { APISERVER_KUBELET_CLIENT, APISERVER_USER } from '../shared/auth/tokens.js';

export const KUBELET_API_POLICY_FILE = 'kubelet-api-admin.yaml';

/** The file's text: system:kubelet-api-admin's rules (plugin/pkg/auth/authorizer/rbac/bootstrappolicy). */
export const KUBELET_API_POLICY = `# The apiserver may use every kubelet's API: kubeadm's ClusterRoleBinding
# kubeadm:apiserver-kubelet-client, role system:kubelet-api-admin. Each kubelet-sim asks the
# apiserver (a SubjectAccessReview) before it serves exec, attach, port-forward or logs: without
# this rule, kubectl exec fails with the kubelet's
#   Forbidden (user=${APISERVER_KUBELET_CLIENT}, verb=create, resource=nodes, subresource(s)=[proxy])
# The apiserver re-reads this file when it changes (docs/labs/06-kubelet-forbidden.md).
- subjects:
    - { kind: User, name: ${APISERVER_KUBELET_CLIENT} }
    - { kind: User, name: '${APISERVER_USER}' }
  verbs: [get, list, watch, proxy]
  resources: [nodes]
  namespaces: ['*']
- subjects:
    - { kind: User, name: ${APISERVER_KUBELET_CLIENT} }
    - { kind: User, name: '${APISERVER_USER}' }
  verbs: ['*']
  resources: [nodes/proxy, nodes/stats, nodes/log, nodes/spec, nodes/metrics]
  namespaces: ['*']
`;

/** `DIR/kubelet-api-admin.yaml`, written when missing; its absolute path. */
export function ensureKubeletApiPolicy(dir: string): string {
  const file = path.join(dir, KUBELET_API_POLICY_FILE);
  fs.mkdirSync(dir, { recursive: true });
  try {
    fs.writeFileSync(file, KUBELET_API_POLICY, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return file;
}
