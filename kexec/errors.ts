/**
 * How kexec reports a failure on stderr, the way kubectl does (kubectl `pkg/cmd/util/helpers.go`
 * checkErr / StandardErrorMessage, client-go `rest` newUnstructuredResponseError, apimachinery
 * `pkg/api/errors` NewGenericServerResponse). Every failure ends up as one line (or two for usage
 * errors) and an exit code.
 */
import type { Status, StatusReason } from '../shared/status.js';
import { errorMessage } from '../shared/logging.js';

/** A wrong command line; kubectl adds a pointer to the command's help. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly commandPath = 'kexec',
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The server refused the request with a Status (from its body, or synthesised from the HTTP code). */
export class ApiStatusError extends Error {
  constructor(
    readonly status: Status,
    readonly httpCode = status.code ?? 500,
  ) {
    super(status.message ?? status.reason ?? 'unknown error');
    this.name = 'ApiStatusError';
  }
}

/** The remote command ran and exited non-zero: kexec exits with the same code. */
export class ExitCodeError extends Error {
  constructor(readonly exitCode: number) {
    super(`command terminated with exit code ${exitCode}`);
    this.name = 'ExitCodeError';
  }
}

/** Anything shaped like a metav1.Status failure. */
export function isFailureStatus(value: unknown): value is Status {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.status === 'Failure' && (v.kind === undefined || v.kind === 'Status');
}

/** The Status an error carries, if any (ApiStatusError, the channel client's handshake error, …). */
export function statusOf(err: unknown): Status | undefined {
  if (err instanceof ApiStatusError) return err.status;
  if (typeof err === 'object' && err !== null && 'status' in err) {
    const s = (err as { status: unknown }).status;
    if (isFailureStatus(s)) return s;
  }
  return undefined;
}

/** kubectl's rendering of a Status error (StandardErrorMessage). */
export function formatStatus(status: Status): string {
  const message = status.message ?? status.reason ?? 'unknown error';
  if (status.reason === 'Unauthorized') return `error: You must be logged in to the server (${message})`;
  if (status.reason) return `Error from server (${status.reason}): ${message}`;
  return `Error from server: ${message}`;
}

/** The text kexec prints on stderr for an error (no trailing newline). */
export function formatError(err: unknown): string {
  if (err instanceof ExitCodeError) return err.message;
  if (err instanceof UsageError) {
    return `error: ${err.message}\nSee '${err.commandPath} -h' for help and examples`;
  }
  const status = statusOf(err);
  if (status) return formatStatus(status);
  const message = errorMessage(err);
  return message.startsWith('error: ') ? message : `error: ${message}`;
}

/** The exit code that goes with an error: the remote command's own code, else 1. */
export function exitCodeOf(err: unknown): number {
  return err instanceof ExitCodeError ? err.exitCode : 1;
}

const MAX_UNSTRUCTURED_BYTES = 1024;

export interface RequestDescription {
  /** HTTP method of the failed request. */
  method: string;
  /** Resource, e.g. `pods`. */
  resource?: string;
  /** Object name, e.g. `demo`. */
  name?: string;
}

/**
 * The Status for a failed response: the body's own Status when it has one, otherwise what
 * client-go synthesises for an unstructured body (NewGenericServerResponse), e.g.
 * `the server could not find the requested resource (get pods demo)`.
 */
export function statusFromResponse(
  httpCode: number,
  body: string,
  contentType: string | undefined,
  req: RequestDescription,
): Status {
  if (/json/i.test(contentType ?? '') || body.trimStart().startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (isFailureStatus(parsed)) return { ...parsed, code: parsed.code ?? httpCode };
    } catch {
      // not JSON after all: treat as text
    }
  }
  const isText = /^text\//i.test(contentType ?? '') || !contentType;
  const serverMessage = isText ? body.slice(0, MAX_UNSTRUCTURED_BYTES).trim() || 'unknown' : 'unknown';
  let reason: StatusReason = '';
  let message: string;
  switch (httpCode) {
    case 400:
      reason = 'BadRequest';
      message = 'the server rejected our request for an unknown reason';
      break;
    case 401:
      reason = 'Unauthorized';
      message = 'the server has asked for the client to provide credentials';
      break;
    case 403:
      reason = 'Forbidden';
      message = 'the server does not allow access to the requested resource';
      break;
    case 404:
      reason = 'NotFound';
      message = 'the server could not find the requested resource';
      break;
    case 405:
      reason = 'MethodNotAllowed';
      message = 'the server does not allow this method on the requested resource';
      break;
    case 409:
      reason = 'Conflict';
      message = 'the server reported a conflict';
      break;
    case 422:
      reason = 'Invalid';
      message = 'the server rejected our request due to an error in our request';
      break;
    case 429:
      reason = 'TooManyRequests';
      message = 'the server has received too many requests and has asked us to try again later';
      break;
    case 503:
      reason = 'ServiceUnavailable';
      message = 'the server is currently unable to handle the request';
      break;
    case 504:
      reason = 'Timeout';
      message =
        'the server was unable to return a response in the time allotted, but may still be processing the request';
      break;
    default:
      if (httpCode >= 500) {
        reason = 'InternalError';
        message = `an error on the server (${JSON.stringify(serverMessage)}) has prevented the request from succeeding`;
      } else {
        reason = ''; // StatusReasonUnknown is the empty reason
        message = `the server responded with the status code ${httpCode} but did not return more information`;
      }
  }
  const what = [req.method.toLowerCase(), req.resource, req.name].filter(Boolean).join(' ');
  if (req.resource) message = `${message} (${what})`;
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    ...(reason ? { reason } : {}),
    code: httpCode,
  };
}
