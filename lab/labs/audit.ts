/**
 * What the guided labs' checks read of the lab's audit log (`DIR/audit.log`, audit.k8s.io/v1
 * Events, one JSON object a line, as apiserver/audit/ writes it).
 */
import fs from 'node:fs';
import path from 'node:path';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb?: string;
  requestURI?: string;
  user?: { username?: string; groups?: string[] };
  objectRef?: { resource?: string; subresource?: string; name?: string; namespace?: string };
  responseStatus?: { code?: number; message?: string };
  requestReceivedTimestamp?: string;
  stageTimestamp?: string;
  annotations?: Record<string, string>;
}

/** The audit log's Events, oldest first (lines that are not Events are skipped). */
export function readAudit(dir: string): AuditEvent[] {
  const file = path.join(dir, 'audit.log');
  if (!fs.existsSync(file)) return [];
  const out: AuditEvent[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    try {
      const e = JSON.parse(line) as AuditEvent;
      if (e.auditID && e.stage) out.push(e);
    } catch {
      // a partial last line
    }
  }
  return out;
}

export const isExec = (e: AuditEvent): boolean =>
  e.objectRef?.resource === 'pods' && e.objectRef.subresource === 'exec';

/** How long the request took, from its arrival to this Event. */
export const seconds = (e: AuditEvent): number =>
  (Date.parse(e.stageTimestamp ?? '') - Date.parse(e.requestReceivedTimestamp ?? '')) / 1000;
