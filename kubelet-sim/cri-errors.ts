/**
 * CRI (gRPC) failures as Kubernetes Status, for the kubelet server's streaming endpoints.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/errors.go` (WriteError): NOT_FOUND → 404,
 * RESOURCE_EXHAUSTED → 429 with the `Retry-After` the runtime put in its message
 * (`… [Retry-After:N]`), everything else → 500. Our additions, on purpose:
 * - INVALID_ARGUMENT and FAILED_PRECONDITION → 400 BadRequest: the request cannot be served in
 *   the container's current state (e.g. exec into a container that is not running) — the client's
 *   problem, not the server's, and retrying the same request will not help;
 * - the body is a Status (upstream writes the bare message), like every other refusal in the lab;
 * - a 429 always carries Retry-After (1 s when the runtime named none).
 */
import grpc from '@grpc/grpc-js';
import { failureStatus, type Status } from '../shared/status.js';
import { criMessage } from './kuberuntime-manager.js';

export interface CriErrorResponse {
  status: Status;
  headers: Record<string, string>;
}

const RETRY_AFTER = /\[Retry-After:(\d+)\]/;

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
      const seconds = Number(RETRY_AFTER.exec(message)?.[1] ?? 1);
      return {
        status: failureStatus(429, message, 'TooManyRequests', { retryAfterSeconds: seconds }),
        headers: { 'Retry-After': String(seconds) },
      };
    }
    default:
      return { status: failureStatus(500, message, 'InternalError'), headers: {} };
  }
}
