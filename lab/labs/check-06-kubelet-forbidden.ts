/**
 * Lab 6's check (docs/labs/06-kubelet-forbidden.md): the student took the apiserver's grant on
 * the kubelet API away (`DIR/kubelet-api-admin.yaml`), saw an exec refused by the kubelet with
 * `Forbidden (user=…, verb=…, resource=nodes, subresource(s)=[proxy])`, put the grant back, and
 * ran an exec that worked.
 *
 * Where each fact is recorded: a refusal on the spliced path (SPDY clients) is an exec whose audit
 * `ResponseComplete` has code 403, the kubelet's answer passed through; a WebSocket v5 exec is
 * translated, its client already has its 101 when the kubelet refuses, so the audit log says 101
 * and the refusal is counted by `apiserver_stream_translator_requests_total{code="403"}` (KEP-4006)
 * instead. The grant is checked as the kubelet checks it: a SubjectAccessReview. The exec that
 * worked again is a 101 that started after the grant file last changed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { apiRequest, apiUrl, loadClientConfig, type ClientConfig } from '../../kexec/client.js';
import { APISERVER_KUBELET_CLIENT, APISERVER_USER } from '../../shared/auth/tokens.js';
import { KUBECONFIG_FILE } from '../credentials.js';
import { KUBELET_API_POLICY_FILE } from '../kubelet-api-policy.js';
import { isExec, readAudit } from './audit.js';
import type { CheckResult } from './checks.js';

/**
 * An edited policy file counts within this long: the apiserver reads it within about 0.5 s
 * (authz-policy.ts watchPolicyFiles), the lab's kubelet-sims keep an answer for 1 s (lab.ts).
 */
const RELOAD_MARGIN_MS = 2_000;

/** `apiserver_stream_translator_requests_total{code="403"}` from the apiserver's /metrics. */
async function translatedRefusals(cfg: ClientConfig): Promise<number> {
  const res = await apiRequest(cfg, 'GET', apiUrl(cfg, '/metrics'));
  const m = /^apiserver_stream_translator_requests_total\{code="403"\} (\d+)/m.exec(res.body);
  return m ? Number(m[1]) : 0;
}

/** May `user` use node `node`'s API for exec? Asked as the kubelet asks (a SubjectAccessReview). */
async function granted(cfg: ClientConfig, user: string, node: string): Promise<boolean> {
  const review = {
    kind: 'SubjectAccessReview',
    apiVersion: 'authorization.k8s.io/v1',
    spec: {
      user,
      groups: [],
      resourceAttributes: { verb: 'create', group: '', resource: 'nodes', subresource: 'proxy', name: node },
    },
  };
  const res = await apiRequest(
    cfg,
    'POST',
    apiUrl(cfg, '/apis/authorization.k8s.io/v1/subjectaccessreviews'),
    review,
  );
  if (res.code !== 201 && res.code !== 200)
    throw new Error(`SubjectAccessReview: HTTP ${res.code} ${res.body}`);
  return (JSON.parse(res.body) as { status?: { allowed?: boolean } }).status?.allowed === true;
}

/** The node the demo pod runs on (the lab's `--node-name`, node-1 by default). */
async function demoNode(cfg: ClientConfig): Promise<string> {
  const res = await apiRequest(cfg, 'GET', apiUrl(cfg, '/api/v1/namespaces/default/pods/demo'));
  const pod = res.code === 200 ? (JSON.parse(res.body) as { spec?: { nodeName?: string } }) : {};
  return pod.spec?.nodeName ?? 'node-1';
}

export async function kubeletForbidden(dir: string): Promise<CheckResult> {
  const cfg = await loadClientConfig({ kubeconfig: path.join(dir, KUBECONFIG_FILE) });
  const policy = path.join(dir, KUBELET_API_POLICY_FILE);
  // The apiserver shows kubelets its client certificate over https, its token over plain http.
  const user = cfg.server.protocol === 'https:' ? APISERVER_KUBELET_CLIENT : APISERVER_USER;
  const execs = readAudit(dir).filter((e) => isExec(e) && e.stage === 'ResponseComplete');
  const spliced = execs.filter((e) => e.responseStatus?.code === 403);
  const translated = await translatedRefusals(cfg);
  if (spliced.length === 0 && translated === 0) {
    return {
      ok: false,
      lines: [
        'no exec has been refused by a kubelet yet.',
        `Take the grant away: in ${policy}, rename the user ${user} (e.g. to kube-apiserver), then: kexec demo -- true`,
      ],
    };
  }
  const seen = [
    ...(spliced.length ? [`${spliced.length} spliced exec(s) answered 403 by the kubelet (audit log)`] : []),
    ...(translated
      ? [`${translated} translated exec(s) ended 403 (apiserver_stream_translator_requests_total)`]
      : []),
  ].join('; ');
  const node = await demoNode(cfg);
  if (!(await granted(cfg, user, node))) {
    return {
      ok: false,
      lines: [
        `refused: ${seen}.`,
        `${user} still may not create nodes/proxy on ${node}: put the grant back in ${policy}.`,
      ],
    };
  }
  const restoredAt = fs.existsSync(policy) ? fs.statSync(policy).mtimeMs : 0;
  const again = execs
    .filter((e) => e.responseStatus?.code === 101)
    .filter((e) => Date.parse(e.requestReceivedTimestamp ?? '') > restoredAt + RELOAD_MARGIN_MS)
    .at(-1);
  if (!again) {
    return {
      ok: false,
      lines: [`refused: ${seen}.`, `the grant is back; now run an exec that works: kexec demo -- echo back`],
    };
  }
  return {
    ok: true,
    lines: [`refused: ${seen}.`, `grant back for ${user}; exec ${again.auditID} went through again (101).`],
  };
}
