/**
 * kexec's `-v`, `--request-timeout` and `--pod-running-timeout`, as kubectl takes them.
 *
 * Mirrors client-go `transport/round_trippers.go` (DebugWrappers by level: at 6 the URL, status and
 * time of each request; at 7 the request headers; at 8 the response headers, among them the
 * apiserver's `Audit-Id`, with Authorization masked) and kubectl's global `--request-timeout`
 * (`0` = none; a bare number is seconds) and exec's `--pod-running-timeout` (default 1m).
 * An upgraded stream is reported the same way, with the subprotocol the server chose — what a
 * student needs to see which remotecommand version the hops agreed on. Lines go to stderr with
 * klog's header, as kubectl's do. Differences: the Audit-Id is shown from level 6 on, on the
 * request's own line, to join kexec's view to the hops' logs and the audit log.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { formatText, redactCredentials } from '../shared/logging.js';

export interface VerboseOptions {
  /** `-v`: 0 (quiet) to 10. */
  verbosity?: number;
  /** Where lines go; stderr by default. */
  write?: (line: string) => void;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `--request-timeout 30s` / `1m` / `500ms` / `5` (seconds); 0 means none. */
export function parseTimeout(value: string): number {
  const m = DURATION.exec(value.trim());
  if (!m)
    throw new Error(`invalid timeout ${JSON.stringify(value)}: use a number with a unit (e.g. 1s, 2m, 3h)`);
  return Math.round(Number(m[1]) * UNIT_MS[m[2] ?? 's']!);
}

function line(o: VerboseOptions, msg: string): void {
  const text = formatText({
    ts: Date.now() / 1000,
    level: 'info',
    service: 'round_trippers.go',
    msg,
  }).trimEnd();
  (o.write ?? ((l: string) => void process.stderr.write(`${l}\n`)))(redactCredentials(text));
}

function headerLines(
  o: VerboseOptions,
  title: string,
  headers: IncomingHttpHeaders | Record<string, string>,
): void {
  line(o, `${title}:`);
  for (const [k, v] of Object.entries(headers)) {
    for (const value of Array.isArray(v) ? v : [v]) if (value !== undefined) line(o, `    ${k}: ${value}`);
  }
}

/** Before a request leaves: at 7 its headers. */
export function logRequest(
  o: VerboseOptions,
  method: string,
  url: URL,
  headers: Record<string, string>,
): void {
  const v = o.verbosity ?? 0;
  if (v >= 7) {
    line(o, `${method} ${url.href}`);
    headerLines(o, 'Request Headers', headers);
  }
}

/** Once the response head is in: at 6 status and time (and the Audit-Id), at 8 the headers. */
export function logResponse(
  o: VerboseOptions,
  method: string,
  url: URL,
  res: { statusCode?: number; statusMessage?: string; headers: IncomingHttpHeaders },
  startedMs: number,
  protocol?: string,
): void {
  const v = o.verbosity ?? 0;
  if (v < 6) return;
  const ms = Math.round(performance.now() - startedMs);
  const audit = res.headers['audit-id'];
  const id = typeof audit === 'string' ? ` Audit-Id: ${audit}` : '';
  line(
    o,
    `${method} ${url.href} ${res.statusCode ?? 0} ${res.statusMessage ?? ''} in ${ms} milliseconds${id}`,
  );
  if (v >= 8) {
    headerLines(o, 'Response Headers', res.headers);
    if (protocol !== undefined) line(o, `negotiated subprotocol: ${JSON.stringify(protocol)}`);
  }
}
