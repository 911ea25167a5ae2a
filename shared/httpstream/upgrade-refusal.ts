/**
 * A refused upgrade: the server answered an exec, attach or port-forward upgrade (WebSocket or
 * SPDY/3.1) with an HTTP response instead of 101. Its body, read up to a cap, becomes the
 * Kubernetes Status the client reports. Every upgrading client here reads refusals through this
 * one module.
 *
 * Mirrors apimachinery `pkg/util/httpstream/httpstream.go` (`UpgradeFailureError`, what
 * `IsUpgradeFailure` recognises) and `pkg/util/httpstream/spdy/roundtripper.go` (`NewConnection`:
 * a non-101 answer's body decoded as a Status when it is one, else its text). Differences: the
 * body is capped (a hostile server cannot make the client buffer without bound), and the error
 * keeps the HTTP code beside the Status.
 */
import type { IncomingMessage } from 'node:http';
import { failureStatus, type Status } from '../status.js';

/** The most of a refusal's body kept; the rest is read and dropped. */
export const MAX_REFUSAL_BODY = 64 * 1024;

export class UpgradeRefusedError extends Error {
  constructor(
    readonly status: Status,
    readonly httpCode: number,
  ) {
    super(status.message ?? `upgrade refused with HTTP ${httpCode}`);
    this.name = 'UpgradeRefusedError';
  }
}

/**
 * The first MAX_REFUSAL_BODY bytes of a refused upgrade's body, once it has ended. A body that
 * fails midway never resolves; the caller's own error or timeout path settles the upgrade.
 */
export function readRefusalBody(res: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_REFUSAL_BODY) chunks.push(c);
    });
    res.on('error', () => {});
    res.on('end', () => resolve(Buffer.concat(chunks)));
  });
}

/** The refusal as an UpgradeRefusedError carrying the server's Status. */
export async function readRefusal(res: IncomingMessage): Promise<UpgradeRefusedError> {
  const body = await readRefusalBody(res);
  const code = res.statusCode ?? 0;
  return new UpgradeRefusedError(statusFromBody(code, body), code);
}

/** The Status in a refused upgrade's body, or one made from its text (as client-go does). */
export function statusFromBody(code: number, body: Buffer): Status {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Status;
    if (parsed && typeof parsed === 'object' && parsed.status === 'Failure') return parsed;
  } catch {
    // not a Status: describe it
  }
  const text = body.toString('utf8').trim();
  return failureStatus(code || 500, text || `unable to upgrade connection: HTTP ${code}`);
}
