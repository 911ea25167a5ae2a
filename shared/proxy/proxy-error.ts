/**
 * The failures a proxy hop can meet, each with a stable code and the Status it becomes.
 * Messages follow upstream's wording (apimachinery upgradeaware.go, Go reverseproxy.go).
 */
import { failureStatus, type Status } from '../status.js';

export type ProxyErrorCode =
  | 'UPGRADE_REQUIRED'
  | 'INVALID_PROTOCOL'
  | 'DIAL_FAILED'
  | 'BACKEND_TIMEOUT'
  | 'BACKEND_FAILED'
  | 'INVALID_UPGRADE_RESPONSE'
  | 'PROTOCOL_MISMATCH'
  | 'REDIRECT_REJECTED';

const HTTP_CODE: Record<ProxyErrorCode, number> = {
  UPGRADE_REQUIRED: 400,
  INVALID_PROTOCOL: 400,
  DIAL_FAILED: 503,
  BACKEND_TIMEOUT: 504,
  BACKEND_FAILED: 502,
  INVALID_UPGRADE_RESPONSE: 502,
  PROTOCOL_MISMATCH: 502,
  REDIRECT_REJECTED: 502,
};

export class ProxyError extends Error {
  readonly httpCode: number;
  constructor(
    readonly code: ProxyErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ProxyError';
    this.httpCode = HTTP_CODE[code];
  }

  toStatus(): Status {
    return failureStatus(this.httpCode, this.message);
  }
}

/** Turns a socket-level error into the ProxyError a client should see. */
export function backendError(err: NodeJS.ErrnoException, phase: 'dial' | 'response'): ProxyError {
  if (err instanceof ProxyError) return err;
  if (phase === 'dial') return new ProxyError('DIAL_FAILED', `error dialing backend: ${err.message}`);
  return new ProxyError('BACKEND_FAILED', `error reading backend response: ${err.message}`);
}
