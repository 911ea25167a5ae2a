/**
 * What the apiserver records of every request, from arrival to the end of its response (for a
 * stream: until it closes): its Audit-Id, its audit Events, its metrics and its log line.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/filters/audit_init.go` (WithAuditInit: the request's own
 * `Audit-ID` header when it carries a sane one, else a new UUID; set on the response, including
 * 101s and refusals, kubernetes#49377), `filters/audit.go` (WithAudit: RequestReceived, then
 * ResponseStarted at the 101 of a stream and ResponseComplete), `pkg/endpoints/metrics`
 * (MonitorRequest, RecordLongRunning) and `pkg/server/httplog` (one line a request with verb, URI,
 * latency, user agent, audit ID and response code). A refusal's Status goes into ResponseComplete
 * (`pkg/audit/request.go` LogResponseObject) and handlers may annotate the Events
 * (AddAuditAnnotation). The id is also set on the request itself, so the proxies carry it to the
 * kubelet, which carries it to the runtime; every hop logs it.
 * Differences: a stream also gets ResponseComplete (kubernetes#47097), and its duration is the
 * whole session.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UserInfo } from '../../../shared/auth/tokens.js';
import type { StructuredLogger } from '../../../shared/logging.js';
import {
  auditEvent,
  nowMicros,
  objectRef,
  type AuditRequest,
  type ResponseStatusFields,
} from '../../audit/event.js';
import type { AuditBackend } from '../../audit/log-backend.js';
import { isLongRunning, requestLabels, type ApiServerMetrics } from '../metrics/metrics.js';
import type { RequestInfo } from '../request-info.js';
import { onResponseHead } from '../../../shared/httpstream/response-head.js';
import type { Status } from '../../../shared/status.js';

/** The response and request header naming the audit ID (Go spells `Audit-ID` as `Audit-Id`). */
export const AUDIT_ID_HEADER = 'Audit-Id';

/** A client's own audit ID is kept when it looks like one (upstream only bounds its length). */
const SANE_AUDIT_ID = /^[A-Za-z0-9._:-]{1,64}$/;

export interface RequestObserverDeps {
  metrics: ApiServerMetrics;
  log: StructuredLogger;
  audit?: AuditBackend;
}

/** Each request's observer, for code that has only the request (the proxies' error responder). */
const observed = new WeakMap<IncomingMessage, ObservedRequest>();

export function observedRequest(req: IncomingMessage): ObservedRequest | undefined {
  return observed.get(req);
}

export class RequestObserver {
  constructor(private readonly deps: RequestObserverDeps) {}

  begin(req: IncomingMessage): ObservedRequest {
    return new ObservedRequest(req, this.deps);
  }
}

export class ObservedRequest {
  readonly auditID: string;
  /** The server's logger with this request's audit ID on every line. */
  readonly log: StructuredLogger;
  private readonly audit: AuditRequest;
  private info?: RequestInfo;
  private received = false;
  private done = false;
  private readonly started = performance.now();
  private endLongRunning?: () => void;
  /** No log line (health checks, /version, and a node's heartbeats at -v 0). */
  quiet = false;
  /** Written to the audit log (all but health checks and /version). */
  audited = true;
  private annotations?: Record<string, string>;
  /** The Status this request was answered with, when one was (a refusal, an error). */
  private status?: ResponseStatusFields;

  constructor(
    private readonly req: IncomingMessage,
    private readonly deps: RequestObserverDeps,
  ) {
    const given = req.headers['audit-id'];
    this.auditID = typeof given === 'string' && SANE_AUDIT_ID.test(given) ? given : randomUUID();
    setRequestHeader(req, AUDIT_ID_HEADER, this.auditID);
    this.log = deps.log.with({ auditID: this.auditID });
    observed.set(req, this);
    this.audit = {
      auditID: this.auditID,
      requestURI: req.url ?? '/',
      verb: (req.method ?? 'GET').toLowerCase(),
      sourceIPs: sourceIPs(req),
      userAgent: req.headers['user-agent'],
      receivedMicros: nowMicros(),
    };
  }

  /** After authentication: who asked for what. Writes RequestReceived. */
  identify(info: RequestInfo, user?: UserInfo): void {
    this.info = info;
    this.audit.verb = info.verb;
    this.audit.objectRef = objectRef(info);
    if (user) this.audit.user = user;
    if (isLongRunning(info)) {
      const labels = requestLabels(this.req, info);
      this.deps.metrics.longRunning.inc(labels);
      this.endLongRunning = () => this.deps.metrics.longRunning.dec(labels);
    }
    this.receive();
  }

  /** A plain request: the header on the response, the end when it closes. */
  watchResponse(res: ServerResponse): void {
    res.setHeader(AUDIT_ID_HEADER, this.auditID);
    res.once('close', () => this.complete(res.statusCode));
  }

  /** An upgrade: the header on whatever head is written, ResponseStarted at a 101, the end at close. */
  watchSocket(socket: Duplex): void {
    let code = 0;
    onResponseHead(socket, { [AUDIT_ID_HEADER]: this.auditID }, (c) => {
      code = c;
      if (c === 101) {
        this.receive();
        this.emit('ResponseStarted', 101);
        this.log.v(2).info('upgraded', { code: 101, protocol: this.req.headers.upgrade });
      }
    });
    socket.once('close', () => this.complete(code || 500));
  }

  /**
   * An annotation on the audit Events written from now on (upstream audit.AddAuditAnnotation,
   * which handlers call to record what they decided; the first value of a key stays).
   */
  annotate(key: string, value: string): void {
    this.annotations ??= {};
    this.annotations[key] ??= value;
  }

  /**
   * The Status the request is answered with: its status, message and reason go into the
   * ResponseComplete Event (upstream LogResponseObject, which keeps them at level Metadata).
   */
  logStatus(status: Status): void {
    const { status: s, message, reason } = status;
    this.status = { status: s, ...(message ? { message } : {}), ...(reason ? { reason } : {}) };
  }

  private receive(): void {
    if (this.received) return;
    this.received = true;
    this.emit('RequestReceived');
  }

  private complete(code: number): void {
    if (this.done) return;
    this.done = true;
    this.receive();
    this.emit('ResponseComplete', code, this.status);
    this.endLongRunning?.();
    const seconds = (performance.now() - this.started) / 1000;
    this.deps.metrics.observe(requestLabels(this.req, this.info), code, seconds);
    if (this.quiet) return;
    this.log.info('HTTP', {
      verb: this.req.method,
      URI: this.req.url,
      latency: `${(seconds * 1000).toFixed(1)}ms`,
      userAgent: this.req.headers['user-agent'],
      user: this.audit.user?.name,
      srcIP: this.audit.sourceIPs[0],
      resp: code,
    });
  }

  private emit(
    stage: 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete',
    code?: number,
    status?: ResponseStatusFields,
  ): void {
    if (!this.audited) return;
    const annotations = this.annotations && { ...this.annotations };
    this.deps.audit?.processEvent(auditEvent(this.audit, stage, code, annotations, status));
  }
}

/** Sets a header on a received request, in both `headers` and the `rawHeaders` proxies forward. */
function setRequestHeader(req: IncomingMessage, name: string, value: string): void {
  const lower = name.toLowerCase();
  req.headers[lower] = value;
  const raw = req.rawHeaders;
  for (let i = raw.length - 2; i >= 0; i -= 2) if (raw[i]!.toLowerCase() === lower) raw.splice(i, 2);
  raw.push(name, value);
}

/** X-Forwarded-For's addresses, then the peer (upstream utilnet.SourceIPs). */
function sourceIPs(req: IncomingMessage): string[] {
  const forwarded = (req.headers['x-forwarded-for'] ?? '')
    .toString()
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const peer = req.socket.remoteAddress;
  return peer && !forwarded.includes(peer) ? [...forwarded, peer] : forwarded.length ? forwarded : ['-'];
}
