/**
 * The audit Event: one JSON object per stage of a request, `audit.k8s.io/v1`, as upstream's log
 * backend writes them (one per line).
 *
 * Mirrors k8s.io/apiserver `pkg/apis/audit/v1/types.go` (Event, ObjectReference, the four stages)
 * and `pkg/audit/request.go` (NewEventFromRequest, LogRequestObject's objectRef, LogResponseObject's
 * responseStatus), at level Metadata for every request: who, what verb on which object and
 * subresource, from where, and the response code (with the status, message and reason of a Status
 * answer, which LogResponseObject keeps at level Metadata too). Timestamps are MicroTime (RFC 3339
 * with microseconds). Differences: no policy file (every request but the health checks is audited at
 * Metadata); a stream that upgraded also gets `ResponseComplete` when it closes, with how long it
 * lasted — the line upstream never writes for exec (kubernetes#47097), since its filter only sees
 * the hijack.
 */
import type { UserInfo } from '../../shared/auth/tokens.js';
import type { RequestInfo } from '../endpoints/request-info.js';

export type Stage = 'RequestReceived' | 'ResponseStarted' | 'ResponseComplete' | 'Panic';

export interface ObjectReference {
  resource?: string;
  namespace?: string;
  name?: string;
  apiGroup?: string;
  apiVersion?: string;
  subresource?: string;
}

export interface AuditEvent {
  kind: 'Event';
  apiVersion: 'audit.k8s.io/v1';
  level: 'Metadata';
  auditID: string;
  stage: Stage;
  requestURI: string;
  verb: string;
  user: { username: string; uid?: string; groups?: string[] };
  sourceIPs: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  responseStatus?: ResponseStatus;
  requestReceivedTimestamp: string;
  stageTimestamp: string;
  annotations?: Record<string, string>;
}

/** The Status fields an Event keeps of a response (upstream LogResponseObject's bounded copy). */
export interface ResponseStatus {
  metadata: Record<string, never>;
  code: number;
  status?: string;
  message?: string;
  reason?: string;
}

/** What a Status adds to an Event's responseStatus besides the code. */
export type ResponseStatusFields = Pick<ResponseStatus, 'status' | 'message' | 'reason'>;

/** metav1.MicroTime: `2006-01-02T15:04:05.000000Z`. */
export function microTime(epochMicros: number): string {
  const iso = new Date(Math.floor(epochMicros / 1000)).toISOString();
  return `${iso.slice(0, 19)}.${String(Math.floor(epochMicros % 1e6)).padStart(6, '0')}Z`;
}

/** Microseconds since the epoch, from the high-resolution clock. */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** What the audit log knows of a request once it has been received. */
export interface AuditRequest {
  auditID: string;
  requestURI: string;
  verb: string;
  user?: UserInfo;
  sourceIPs: string[];
  userAgent?: string;
  objectRef?: ObjectReference;
  receivedMicros: number;
}

/** LogRequestObject's objectRef: set for resource requests only. */
export function objectRef(info: RequestInfo): ObjectReference | undefined {
  if (!info.isResourceRequest) return undefined;
  const ref: ObjectReference = { resource: info.resource, apiVersion: info.apiVersion };
  if (info.namespace) ref.namespace = info.namespace;
  if (info.name) ref.name = info.name;
  if (info.apiGroup) ref.apiGroup = info.apiGroup;
  if (info.subresource) ref.subresource = info.subresource;
  return ref;
}

export function auditEvent(
  r: AuditRequest,
  stage: Stage,
  code?: number,
  annotations?: Record<string, string>,
  status?: ResponseStatusFields,
): AuditEvent {
  return {
    kind: 'Event',
    apiVersion: 'audit.k8s.io/v1',
    level: 'Metadata',
    auditID: r.auditID,
    stage,
    requestURI: r.requestURI,
    verb: r.verb,
    user: r.user
      ? { username: r.user.name, ...(r.user.uid ? { uid: r.user.uid } : {}), groups: r.user.groups }
      : { username: 'system:anonymous', groups: ['system:unauthenticated'] },
    sourceIPs: r.sourceIPs,
    ...(r.userAgent ? { userAgent: r.userAgent } : {}),
    ...(r.objectRef ? { objectRef: r.objectRef } : {}),
    ...(code !== undefined ? { responseStatus: { metadata: {}, ...status, code } } : {}),
    requestReceivedTimestamp: microTime(r.receivedMicros),
    stageTimestamp: microTime(nowMicros()),
    ...(annotations ? { annotations } : {}),
  };
}
