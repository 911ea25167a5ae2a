/**
 * `npm run lab:check -- 4` (docs/labs/04-get-cannot-exec.md): a user refused an exec (403) who
 * later ran one (101), read from the audit log. Exec is authorised as `create` on `pods/exec`
 * whatever the HTTP method (apiserver/endpoints/request-info.ts), so `get` alone gives the 403
 * and granting `create` gives the 101.
 */
import path from 'node:path';
import { STREAM_PROTOCOL_ANNOTATION } from '../../shared/metrics/stream-sessions.js';
import { isExec, readAudit, type AuditEvent } from './audit.js';
import type { CheckResult } from './checks.js';

/** ` over websocket` / ` over SPDY/3.1`, as the apiserver recorded the upgrade asked for. */
const over = (e: AuditEvent) => {
  const p = e.annotations?.[STREAM_PROTOCOL_ANNOTATION];
  return p ? ` over ${p}` : '';
};

/** The lab's own identities (the admin, the apiserver, nodes) are not the student's user. */
const isLabIdentity = (name: string) => name === 'admin' || name.startsWith('system:');

export function getCannotExec(dir: string): CheckResult {
  const done = readAudit(dir).filter((e) => isExec(e) && e.stage === 'ResponseComplete');
  const refused = new Map<string, AuditEvent>();
  let pair: [AuditEvent, AuditEvent] | undefined;
  for (const e of done) {
    const user = e.user?.username ?? '';
    if (isLabIdentity(user)) continue;
    const code = e.responseStatus?.code;
    if (code === 403) refused.set(user, e);
    else if (code === 101 && refused.has(user)) pair = [refused.get(user)!, e];
  }
  if (pair) {
    const [no, yes] = pair;
    return {
      ok: true,
      lines: [
        `${yes.user?.username}: exec ${no.auditID}${over(no)} refused (403), then exec ${yes.auditID}${over(yes)} ran (101) once create was granted.`,
      ],
    };
  }
  const last = [...refused.values()].at(-1);
  return {
    ok: false,
    lines: last
      ? [
          `${last.user?.username} was refused exec ${last.auditID}${over(last)} (403${last.responseStatus?.message ? `: ${last.responseStatus.message}` : ''}) and has not run one since.`,
          `Grant create on pods/exec, then exec again as ${last.user?.username}.`,
        ]
      : [
          `no exec refused with 403 to a lab user in ${path.join(dir, 'audit.log')} yet.`,
          'Run an exec as a user with only get on pods/exec (see the lab).',
        ],
  };
}
