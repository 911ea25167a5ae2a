/**
 * CRI (gRPC) failures as Kubernetes Status, for the kubelet server's streaming endpoints.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/errors.go` (WriteError, what `getExec`, `getAttach`
 * and `getPortForward` in `pkg/kubelet/server/server.go` answer a failed CRI call with): NOT_FOUND →
 * 404, RESOURCE_EXHAUSTED (the runtime's streaming request cache is full, ErrorTooManyInFlight) →
 * 429 with `Retry-After` the cache's token TTL, 60 s, "the full TTL" upstream waits out; a runtime
 * may name another in its message (`… [Retry-After:N]`). Everything else → 500. Our additions, on
 * purpose:
 * - INVALID_ARGUMENT and FAILED_PRECONDITION → 400 BadRequest: the request cannot be served in
 *   the container's current state (e.g. exec into a container that is not running) — the client's
 *   problem, not the server's, and retrying the same request will not help;
 * - the body is a Status (upstream writes the bare message), like every other refusal in the lab;
 * - the runtime may name the Retry-After in its message.
 */
import grpc from '@grpc/grpc-js';
import { failureStatus, type Status } from '../shared/status.js';
import { errorMessage } from '../shared/logging.js';

export interface CriErrorResponse {
  status: Status;
  headers: Record<string, string>;
}

const RETRY_AFTER = /\[Retry-After:(\d+)\]/;
/** Upstream's `cacheTTL` (pkg/kubelet/cri/streaming/request_cache.go): how long a token lives. */
const STREAMING_TOKEN_TTL_SECONDS = 60;

export function criErrorToStatus(err: unknown): CriErrorResponse {
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  const message = criMessage(err);
  switch (code) {
    case grpc.status.NOT_FOUND:
      return { status: failureStatus(404, message), headers: {} };
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.FAILED_PRECONDITION:
      return { status: failureStatus(400, message), headers: {} };
    case grpc.status.RESOURCE_EXHAUSTED: {
      const seconds = Number(RETRY_AFTER.exec(message)?.[1] ?? STREAMING_TOKEN_TTL_SECONDS);
      return {
        status: failureStatus(429, message, 'TooManyRequests', { retryAfterSeconds: seconds }),
        headers: { 'Retry-After': String(seconds) },
      };
    }
    default:
      return { status: failureStatus(500, message, 'InternalError'), headers: {} };
  }
}

/** A gRPC error's own message (`details`), without grpc-js's "5 NOT_FOUND: " prefix. */
export function criMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && 'details' in err) {
    const d = (err as { details: unknown }).details;
    if (typeof d === 'string' && d) return d;
  }
  return errorMessage(err);
}
