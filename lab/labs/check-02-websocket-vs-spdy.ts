/**
 * `npm run lab:check -- 2` (docs/labs/02-websocket-vs-spdy.md): one exec spliced as SPDY/3.1 and
 * one WebSocket exec translated by the apiserver's StreamTranslator (KEP-4006), both upgraded (101)
 * and finished. The apiserver's audit Events carry how each stream was carried (the
 * `kexec-lab/stream-path` and `kexec-lab/stream-protocol` annotations, apiserver/registry/pod/exec-rest.ts).
 */
import path from 'node:path';
import { STREAM_PATH_ANNOTATION, STREAM_PROTOCOL_ANNOTATION } from '../../shared/metrics/stream-sessions.js';
import { isExec, readAudit, type AuditEvent } from './audit.js';
import type { CheckResult } from './checks.js';

const protocol = (e: AuditEvent) => (e.annotations?.[STREAM_PROTOCOL_ANNOTATION] ?? '').toLowerCase();
const way = (e: AuditEvent) => e.annotations?.[STREAM_PATH_ANNOTATION];

export function websocketVsSpdy(dir: string): CheckResult {
  const done = readAudit(dir).filter(
    (e) => isExec(e) && e.stage === 'ResponseComplete' && e.responseStatus?.code === 101,
  );
  const spdy = done.filter((e) => protocol(e) === 'spdy/3.1' && way(e) === 'spliced').at(-1);
  const ws = done.filter((e) => protocol(e) === 'websocket' && way(e) === 'translated').at(-1);
  const wsSpliced = done.filter((e) => protocol(e) === 'websocket' && way(e) === 'spliced').at(-1);
  const lines = [
    spdy
      ? `SPDY/3.1 exec ${spdy.auditID} by ${spdy.user?.username}: spliced, the apiserver copied its bytes to the kubelet untouched.`
      : 'no finished SPDY exec yet. Run: kexec --protocol spdy -v=8 demo -- echo spdy',
    ws
      ? `WebSocket exec ${ws.auditID} by ${ws.user?.username}: translated, the apiserver ended the WebSocket and spoke SPDY/3.1 to the kubelet.`
      : 'no finished WebSocket exec translated by the apiserver yet. Run: kexec --protocol websocket -v=8 demo -- echo ws' +
        (wsSpliced ? ' (with the lab started without --no-stream-translation)' : ''),
  ];
  if (wsSpliced) {
    lines.push(
      `WebSocket exec ${wsSpliced.auditID} was spliced (the lab ran with --no-stream-translation, or the client did not offer v5.channel.k8s.io): the runtime spoke WebSocket itself.`,
    );
  }
  if (!spdy || !ws) lines.push(`(read from the audit log ${path.join(dir, 'audit.log')})`);
  return { ok: Boolean(spdy && ws), lines };
}
