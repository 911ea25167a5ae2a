/**
 * Kubernetes `metav1.Status`: the one shape every refusal takes, at every hop.
 *
 * Mirrors apimachinery `pkg/apis/meta/v1/types.go` (Status, StatusReason) and
 * `pkg/api/errors/errors.go` (the code ↔ reason pairs). Codes without a reason of their own
 * (502 for example) carry no reason, as `NewGenericServerResponse` does upstream.
 */
import type { ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { errorMessage } from './logging.js';

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'AlreadyExists'
  | 'Conflict'
  | 'Gone'
  | 'Expired'
  | 'Invalid'
  | 'MethodNotAllowed'
  | 'NotAcceptable'
  | 'UnsupportedMediaType'
  | 'RequestEntityTooLarge'
  | 'RequestHeaderFieldsTooLarge'
  | 'TooManyRequests'
  | 'InternalError'
  | 'ServiceUnavailable'
  | 'Timeout'
  | 'NonZeroExitCode'
  | '';

export interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  uid?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface Status {
  kind?: 'Status';
  apiVersion?: 'v1';
  metadata: Record<string, never> | { resourceVersion?: string };
  status: 'Success' | 'Failure';
  message?: string;
  reason?: StatusReason;
  details?: StatusDetails;
  code?: number;
}

/** The reason apimachinery gives a bare HTTP code (errors.NewGenericServerResponse). */
export function reasonForCode(code: number): StatusReason {
  switch (code) {
    case 400:
      return 'BadRequest';
    case 401:
      return 'Unauthorized';
    case 403:
      return 'Forbidden';
    case 404:
      return 'NotFound';
    case 405:
      return 'MethodNotAllowed';
    case 406:
      return 'NotAcceptable';
    case 409:
      return 'Conflict';
    case 410:
      return 'Gone';
    case 413:
      return 'RequestEntityTooLarge';
    case 415:
      return 'UnsupportedMediaType';
    case 422:
      return 'Invalid';
    case 429:
      return 'TooManyRequests';
    case 500:
      return 'InternalError';
    case 503:
      return 'ServiceUnavailable';
    case 504:
      return 'Timeout';
    default:
      return '';
  }
}

/** A failure Status as the apiserver writes it on the wire (kind, apiVersion and code set). */
export function failureStatus(
  code: number,
  message: string,
  reason: StatusReason = reasonForCode(code),
  details?: StatusDetails,
): Status {
  const s: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message };
  if (reason) s.reason = reason;
  if (details) s.details = details;
  s.code = code;
  return s;
}

/** An error that knows the Status it should become. */
export class StatusError extends Error {
  constructor(readonly status: Status) {
    super(status.message ?? status.reason ?? 'unknown error');
    this.name = 'StatusError';
  }
  get code(): number {
    return this.status.code ?? 500;
  }
  static of(code: number, message: string, reason?: StatusReason, details?: StatusDetails): StatusError {
    return new StatusError(failureStatus(code, message, reason, details));
  }
}

/** Any thrown value as a Status: StatusErrors keep theirs, everything else is a 500 InternalError. */
export function toStatus(err: unknown): Status {
  if (err instanceof StatusError) return err.status;
  const message = errorMessage(err);
  return failureStatus(500, `Internal error occurred: ${message}`, 'InternalError');
}

const STATUS_TEXT: Record<number, string> = {
  101: 'Switching Protocols',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  422: 'Unprocessable Entity',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

export function statusText(code: number): string {
  return STATUS_TEXT[code] ?? 'Error';
}

/** Writes a Status as a complete JSON response on a ServerResponse that has not started. */
export function writeStatus(
  res: ServerResponse,
  status: Status,
  extraHeaders: Record<string, string> = {},
): void {
  const body = JSON.stringify(status);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status.code ?? 500, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    ...extraHeaders,
  });
  res.end(body);
}

/**
 * Writes a Status as a raw HTTP/1.1 response on a socket that was handed over for an upgrade
 * (nothing has been written to it yet), then closes the connection: after a refused upgrade the
 * connection must not be reused (CVE-2018-1002105).
 */
export function writeStatusToSocket(
  socket: Duplex,
  status: Status,
  extraHeaders: Record<string, string> = {},
): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const body = JSON.stringify(status);
  const code = status.code ?? 500;
  const headers = {
    'Content-Type': 'application/json',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
    ...extraHeaders,
  };
  const head =
    `HTTP/1.1 ${code} ${statusText(code)}\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n';
  socket.end(head + body, () => socket.destroy());
}

/**
 * A Node HTTP server's 'clientError' (a request head it could not parse): the client gets a
 * Status — 431 for a head over the size limit (Go's net/http answers the same), 400 otherwise —
 * and the connection is closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  const tooLarge = err.code === 'HPE_HEADER_OVERFLOW';
  writeStatusToSocket(
    socket,
    tooLarge
      ? failureStatus(431, 'request header fields too large', 'RequestHeaderFieldsTooLarge')
      : failureStatus(400, `bad request: ${err.code ?? err.message}`),
  );
}
