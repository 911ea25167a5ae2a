/**
 * The apiserver's `/debug/...` endpoints for the lab's dashboard: `GET /debug/sessions` (the
 * streams this apiserver carries now) and `GET|PUT /debug/flags/max-connection-bytes-per-sec`
 * (the byte-rate limit of new proxied streams, set at run time).
 *
 * Mirrors k8s.io/apiserver `pkg/server/routes/flags.go` (`PUT /debug/flags/v` takes the new value
 * as the plain request body and answers it back) and `routes/debugsocket.go`. Like upstream they
 * sit behind authorisation as nonResourceURLs (`/debug/*`, verbs get and put, the method lowercased as upstream names non-resource verbs): only the
 * admin (`system:masters`) may use them. `/debug/sessions` has no upstream twin: upstream never
 * lists the streams it proxies.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest, resourceNotFound } from '../api/errors.js';
import { readBody } from '../endpoints/body.js';
import { writeJSON } from '../endpoints/handlers/rest.js';
import type { StreamSessions } from '../../shared/metrics/stream-sessions.js';

export interface DebugDeps {
  streams: StreamSessions;
  /** The current `--max-connection-bytes-per-sec` and its setter. */
  maxConnectionBytesPerSec: { get(): number; set(n: number): void };
}

export const MAX_BYTES_FLAG_PATH = '/debug/flags/max-connection-bytes-per-sec';

/** Serves `path` if it is one of these endpoints; false when it is not (the caller answers 404). */
export async function serveDebug(
  deps: DebugDeps,
  path: string,
  verb: string,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  if (path === '/debug/sessions') {
    if (verb !== 'get') throw resourceNotFound();
    writeJSON(res, 200, deps.streams.snapshot());
    return true;
  }
  if (path !== MAX_BYTES_FLAG_PATH) return false;
  if (verb === 'put') {
    const text = (await readBody(req, 64)).toString('utf8').trim();
    const n = Number(text);
    if (!/^\d+$/.test(text) || !Number.isSafeInteger(n)) {
      throw badRequest(
        `max-connection-bytes-per-sec: expected a non-negative integer, got ${JSON.stringify(text)}`,
      );
    }
    deps.maxConnectionBytesPerSec.set(n);
  } else if (verb !== 'get') throw resourceNotFound();
  const body = `${deps.maxConnectionBytesPerSec.get()}\n`;
  res.writeHead(200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
  return true;
}
