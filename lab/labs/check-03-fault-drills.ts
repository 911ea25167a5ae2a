/**
 * `npm run lab:check -- 3` (docs/labs/03-fault-drills.md): an exec the apiserver refused because
 * the kubelet answered its upgrade wrongly (a kubelet-sim fault drill), and every drill off again.
 *
 * The refusal is read from the audit log: an exec whose ResponseComplete has the code of a failed
 * upgrade (400 or 500 relayed from the kubelet, 502 for a redirect or a 200) and that never had a
 * ResponseStarted, i.e. the client never got a 101 and nothing was spliced (CVE-2018-1002105,
 * CVE-2020-8559). The drills are read from each node's `/debug/flags/fault` through the
 * apiserver's node proxy, as the dashboard reads them.
 */
import path from 'node:path';
import { apiRequest, apiUrl, loadClientConfig } from '../../kexec/client.js';
import { KUBECONFIG_FILE } from '../credentials.js';
import { isExec, readAudit, type AuditEvent } from './audit.js';
import type { CheckResult } from './checks.js';

/** What the apiserver answers when the kubelet's upgrade answer is not a 101 it can splice. */
const FAILED_UPGRADE_CODES = new Set([400, 500, 502]);

/** `502 (invalid upgrade response: status code 302)`: the code, and the message when the apiserver wrote the Status. */
const answer = (e: AuditEvent) =>
  `${e.responseStatus?.code}${e.responseStatus?.message ? ` (${e.responseStatus.message})` : ''}`;

/** `node-1: refuse-400` for every node whose drill is on (or unreadable). */
async function drillsOn(dir: string): Promise<string[]> {
  const cfg = await loadClientConfig({ kubeconfig: path.join(dir, KUBECONFIG_FILE) });
  const nodes = await apiRequest(cfg, 'GET', apiUrl(cfg, '/api/v1/nodes'));
  if (nodes.code !== 200) return [`the node list (${nodes.code})`];
  const names = (JSON.parse(nodes.body) as { items: { metadata: { name: string } }[] }).items.map(
    (n) => n.metadata.name,
  );
  const on: string[] = [];
  for (const name of names) {
    const url = apiUrl(cfg, `/api/v1/nodes/${encodeURIComponent(name)}/proxy/debug/flags/fault`);
    const res = await apiRequest(cfg, 'GET', url);
    const value = res.body.trim();
    if (res.code !== 200) on.push(`${name}: unreadable (${res.code})`);
    else if (value !== 'none') on.push(`${name}: ${value}`);
  }
  return on;
}

export async function faultDrills(dir: string): Promise<CheckResult> {
  const events = readAudit(dir).filter(isExec);
  const upgraded = new Set(events.filter((e) => e.stage === 'ResponseStarted').map((e) => e.auditID));
  const refused = events
    .filter((e) => e.stage === 'ResponseComplete' && !upgraded.has(e.auditID))
    .filter((e) => FAILED_UPGRADE_CODES.has(e.responseStatus?.code ?? 0))
    .at(-1);
  const on = await drillsOn(dir);
  const lines = [
    refused
      ? `exec ${refused.auditID} by ${refused.user?.username}: the apiserver answered ${answer(refused)} and never 101 (no ResponseStarted): the failed upgrade was not spliced.`
      : 'no exec refused after a failed upgrade yet. Switch a drill on (e.g. refuse-400), then run: kexec --protocol spdy demo -- echo hi',
    on.length
      ? `a fault drill is still on (${on.join(', ')}): switch it off (the dashboard's switch, or PUT none).`
      : 'every kubelet-sim fault drill is off again.',
  ];
  if (refused) {
    lines.push(
      `Read the lab's console: the apiserver's lines with ${refused.auditID}, and the kubelet-sim's "fault …: answered" and "connection closed after 1 request(s)" lines beside them.`,
    );
  }
  return { ok: Boolean(refused) && on.length === 0, lines };
}
