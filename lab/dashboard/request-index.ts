/**
 * The dashboard's recent requests, by Audit-Id: every log record a service writes with an
 * `auditID` field (lab/log-view.ts hands them over) and every line of the apiserver's audit log
 * (`audit.k8s.io/v1` Events), joined on the id, so one exec reads as a sequence: the client's
 * request at the apiserver, its proxy to the kubelet, the kubelet's CRI Exec, the runtime's 101
 * and process start, the exit, the stream's end.
 *
 * Upstream has nothing like it in one place: the same id is in the apiserver's audit log and in
 * its response header (kubernetes#49377), and a student would grep each component's log for it.
 * Bounded: the newest `limit` requests, `maxSteps` steps each.
 */
import fs from 'node:fs';
import type { LogRecord } from '../../shared/logging.js';

export interface Step {
  /** Milliseconds since the epoch. */
  at: number;
  /** apiserver, kubelet-sim, cri-shim, or `audit` for an audit Event. */
  service: string;
  msg: string;
  fields?: Record<string, unknown>;
}

export interface RequestSummary {
  auditID: string;
  firstAt: number;
  lastAt: number;
  verb?: string;
  user?: string;
  /** `pods/exec default/demo`, `nodes/proxy node-1`, … */
  what?: string;
  code?: number;
  stages: string[];
  services: string[];
}

interface Entry extends RequestSummary {
  steps: Step[];
}

interface AuditLine {
  auditID?: string;
  stage?: string;
  verb?: string;
  requestURI?: string;
  stageTimestamp?: string;
  user?: { username?: string };
  userAgent?: string;
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
}

const HEADER_FIELDS = new Set(['ts', 'level', 'v', 'service', 'msg', 'pid', 'auditID']);

/** The dashboard's own reads (cluster-state.ts sends it): not what a student is looking for. */
export const DASHBOARD_USER_AGENT = 'kexec-lab-dashboard';

/**
 * A kubelet-sim's SubjectAccessReview (its webhook authorizer, lab 6). The dashboard's own reads
 * of each kubelet (sessions, fault drill: every second, through the node proxy) make one whenever
 * the kubelet's cached answer has expired (1 s in the lab), so they would fill the list within a
 * minute and push the student's execs off it. Left out here; `.lab/audit.log` has every one.
 */
function isKubeletReview(e: AuditLine): boolean {
  return e.objectRef?.resource === 'subjectaccessreviews' && !!e.user?.username?.startsWith('system:node:');
}

export class RequestIndex {
  private readonly entries = new Map<string, Entry>();
  /** Audit-Ids of the dashboard's own requests, newest last (bounded). */
  private readonly ignored = new Set<string>();

  constructor(
    private readonly limit = 200,
    private readonly maxSteps = 100,
  ) {}

  /** A service's log record (only those with an auditID are kept). */
  addRecord(service: string, r: LogRecord): void {
    const id = r.auditID;
    if (typeof id !== 'string' || !id) return;
    const fields = Object.fromEntries(Object.entries(r).filter(([k]) => !HEADER_FIELDS.has(k)));
    this.add(id, { at: r.ts * 1000, service, msg: r.msg, ...(Object.keys(fields).length ? { fields } : {}) });
  }

  /** One line of the audit log. */
  addAuditLine(line: string): void {
    let e: AuditLine;
    try {
      e = JSON.parse(line) as AuditLine;
    } catch {
      return;
    }
    if (!e.auditID || !e.stage) return;
    if (e.userAgent?.startsWith(DASHBOARD_USER_AGENT) || isKubeletReview(e)) {
      this.entries.delete(e.auditID);
      this.ignored.add(e.auditID);
      if (this.ignored.size > 4 * this.limit) this.ignored.delete(this.ignored.values().next().value!);
      return;
    }
    const at = Date.parse(e.stageTimestamp ?? '') || Date.now();
    const code = e.responseStatus?.code;
    const entry = this.add(e.auditID, {
      at,
      service: 'audit',
      msg: `${e.stage}${code ? ` ${code}` : ''}`,
      fields: { verb: e.verb, requestURI: e.requestURI },
    });
    if (!entry) return;
    entry.verb ??= e.verb;
    entry.user ??= e.user?.username;
    const o = e.objectRef;
    if (o && !entry.what) {
      const resource = o.subresource ? `${o.resource}/${o.subresource}` : (o.resource ?? '');
      const name = [o.namespace, o.name].filter(Boolean).join('/');
      entry.what = `${resource} ${name}`.trim();
    }
    if (!o && !entry.what && e.requestURI) entry.what = e.requestURI.split('?')[0];
    if (code) entry.code = code;
    if (!entry.stages.includes(e.stage)) entry.stages.push(e.stage);
  }

  /** Requests the audit log has seen (every one the apiserver served has a line there), newest first. */
  list(): RequestSummary[] {
    return [...this.entries.values()]
      .filter((e) => e.stages.length > 0)
      .sort((a, b) => b.firstAt - a.firstAt)
      .map(({ steps: _steps, ...summary }) => ({
        ...summary,
        stages: [...summary.stages],
        services: [...summary.services],
      }));
  }

  /** One request's steps in time order, or undefined. */
  steps(auditID: string): { summary: RequestSummary; steps: Step[] } | undefined {
    const e = this.entries.get(auditID);
    if (!e) return undefined;
    const { steps, ...summary } = e;
    return { summary, steps: [...steps].sort((a, b) => a.at - b.at) };
  }

  private add(id: string, step: Step): Entry | undefined {
    if (this.ignored.has(id)) return undefined;
    let e = this.entries.get(id);
    if (!e) {
      e = { auditID: id, firstAt: step.at, lastAt: step.at, stages: [], services: [], steps: [] };
      this.entries.set(id, e);
      if (this.entries.size > this.limit) this.evictOldest();
    }
    e.firstAt = Math.min(e.firstAt, step.at);
    e.lastAt = Math.max(e.lastAt, step.at);
    if (step.service !== 'audit' && !e.services.includes(step.service)) e.services.push(step.service);
    if (e.steps.length < this.maxSteps) e.steps.push(step);
    return e;
  }

  private evictOldest(): void {
    let oldest: Entry | undefined;
    for (const e of this.entries.values()) if (!oldest || e.lastAt < oldest.lastAt) oldest = e;
    if (oldest) this.entries.delete(oldest.auditID);
  }
}

/**
 * Follows a file that grows by whole lines (the audit log): polls its size, reads what was added,
 * hands on each complete line. Starts at the current end unless `fromStart`.
 */
export class LineFollower {
  private offset = 0;
  private partial = '';
  private timer: NodeJS.Timeout | undefined;
  private reading = false;

  constructor(
    private readonly file: string,
    private readonly onLine: (line: string) => void,
  ) {}

  start(intervalMs = 250): void {
    this.timer = setInterval(() => void this.poll(), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Reads what was appended since the last poll (bounded to 4 MiB a poll). */
  async poll(): Promise<void> {
    if (this.reading) return;
    this.reading = true;
    try {
      const size = await fs.promises.stat(this.file).then(
        (s) => s.size,
        () => 0,
      );
      if (size < this.offset) this.offset = 0; // rotated or truncated
      if (size === this.offset) return;
      const len = Math.min(size - this.offset, 4 * 1024 * 1024);
      const fh = await fs.promises.open(this.file, 'r');
      try {
        const buf = Buffer.alloc(len);
        const { bytesRead } = await fh.read(buf, 0, len, this.offset);
        this.offset += bytesRead;
        const text = this.partial + buf.subarray(0, bytesRead).toString('utf8');
        const lines = text.split('\n');
        this.partial = lines.pop() ?? '';
        for (const l of lines) if (l.trim()) this.onLine(l);
      } finally {
        await fh.close();
      }
    } finally {
      this.reading = false;
    }
  }
}
