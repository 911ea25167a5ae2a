/**
 * `npm run lab:check -- N`: tells a student whether step N of a guided lab (docs/labs/) worked,
 * by reading what the running lab left behind: its audit log (`DIR/audit.log`, audit.k8s.io/v1
 * Events) and the apiserver's `/debug/flags/...` through the admin's kubeconfig. Each check
 * answers what it found, in a sentence, and whether that is what the step should have produced.
 */
import path from 'node:path';
import { apiRequest, apiUrl, loadClientConfig } from '../../kexec/client.js';
import { KUBECONFIG_FILE } from '../credentials.js';
import { isExec, readAudit, seconds } from './audit.js';
import { websocketVsSpdy } from './check-02-websocket-vs-spdy.js';
import { faultDrills } from './check-03-fault-drills.js';
import { getCannotExec } from './check-04-get-cannot-exec.js';
import { kubeletForbidden } from './check-06-kubelet-forbidden.js';
import { packetCapture } from './check-07-packet-capture.js';

export interface CheckResult {
  ok: boolean;
  lines: string[];
}

/** Lab 1: an exec that went all the way: ResponseStarted 101 and ResponseComplete in the audit log. */
function followOneExec(dir: string): CheckResult {
  const events = readAudit(dir).filter(isExec);
  const complete = events.filter((e) => e.stage === 'ResponseComplete' && e.responseStatus?.code === 101);
  const last = complete.at(-1);
  if (!last) {
    return {
      ok: false,
      lines: [`no finished exec in ${path.join(dir, 'audit.log')} yet.`, 'Run: kexec -v=6 demo -- echo hop'],
    };
  }
  const started = events.some((e) => e.auditID === last.auditID && e.stage === 'ResponseStarted');
  return {
    ok: started,
    lines: [
      `exec ${last.auditID} by ${last.user?.username}: RequestReceived → ResponseStarted 101 → ResponseComplete after ${seconds(last).toFixed(3)} s.`,
      started
        ? `Now find ${last.auditID} in the lab's console: the apiserver's, the kubelet-sim's and the cri-shim's lines about it.`
        : 'its ResponseStarted line is missing: the stream never switched protocols',
    ],
  };
}

/** Lab 5: a byte-rate limit is set and an exec ran under it for a second or more. */
async function maxConnectionBytes(dir: string): Promise<CheckResult> {
  const cfg = await loadClientConfig({ kubeconfig: path.join(dir, KUBECONFIG_FILE) });
  const res = await apiRequest(cfg, 'GET', apiUrl(cfg, '/debug/flags/max-connection-bytes-per-sec'));
  const limit = Number(res.body.trim());
  if (res.code !== 200 || !(limit > 0)) {
    return {
      ok: false,
      lines: [
        `the apiserver's --max-connection-bytes-per-sec is ${res.code === 200 ? res.body.trim() : `unreadable (${res.code})`}: set one first (the dashboard's switch, or npm start -- --max-connection-bytes-per-sec 16384).`,
      ],
    };
  }
  const slow = readAudit(dir)
    .filter((e) => isExec(e) && e.stage === 'ResponseComplete' && e.responseStatus?.code === 101)
    .filter((e) => seconds(e) >= 1)
    .at(-1);
  return slow
    ? {
        ok: true,
        lines: [`limit ${limit} B/s; exec ${slow.auditID} took ${seconds(slow).toFixed(1)} s under it.`],
      }
    : {
        ok: false,
        lines: [
          `limit ${limit} B/s, but no exec has yet taken a second or more.`,
          `Send more than ${limit} bytes: head -c ${limit * 3} /dev/zero | kexec -i demo -- wc -c`,
        ],
      };
}

export const CHECKS: Record<
  number,
  { title: string; run: (dir: string) => CheckResult | Promise<CheckResult> }
> = {
  1: { title: 'follow one exec through the hops', run: followOneExec },
  2: { title: 'WebSocket vs SPDY and the StreamTranslator', run: websocketVsSpdy },
  3: { title: 'CVE-2018-1002105 and CVE-2020-8559 with the fault drills', run: faultDrills },
  4: { title: 'why get on pods/exec cannot exec', run: getCannotExec },
  5: { title: '--max-connection-bytes-per-sec', run: maxConnectionBytes },
  6: { title: 'the kubelet says Forbidden', run: kubeletForbidden },
  7: { title: 'a packet capture on lo over https', run: packetCapture },
};
