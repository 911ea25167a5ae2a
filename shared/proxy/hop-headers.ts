/**
 * Header handling shared by both proxy paths, after Go's `net/http/httputil/reverseproxy.go`:
 * the hop-by-hop list (RFC 9110 §7.6.1 plus the legacy names Go keeps), every header a
 * `Connection` header names, and `X-Forwarded-For`.
 */
import type { IncomingMessage } from 'node:http';

/** Go reverseproxy.go `hopHeaders`. */
export const HOP_BY_HOP = new Set([
  'connection',
  'proxy-connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** Flat [name, value, name, value, …] list, as Node's rawHeaders and http.request accept. */
export type RawHeaders = string[];

/** The `Connection` header's tokens, lower-cased, over every Connection header line. */
export function connectionTokens(raw: RawHeaders): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() !== 'connection') continue;
    for (const t of raw[i + 1]!.split(',')) {
      const token = t.trim().toLowerCase();
      if (token) tokens.add(token);
    }
  }
  return tokens;
}

/** apimachinery `httpstream.IsUpgradeRequest`: any Connection header carries the `upgrade` token. */
export function isUpgradeRequest(req: IncomingMessage): boolean {
  return connectionTokens(req.rawHeaders).has('upgrade');
}

/**
 * Drops hop-by-hop headers and those named in Connection. `Te: trailers` survives, as in Go.
 * `drop` names further headers (lower-case) that must not cross this hop.
 */
export function removeHopByHop(raw: RawHeaders, drop: ReadonlySet<string> = new Set()): RawHeaders {
  const named = connectionTokens(raw);
  const out: RawHeaders = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    const value = raw[i + 1]!;
    const lower = name.toLowerCase();
    if (drop.has(lower)) continue;
    if (lower === 'te' && value.trim().toLowerCase() === 'trailers') {
      out.push(name, value);
      continue;
    }
    if (HOP_BY_HOP.has(lower) || named.has(lower)) continue;
    out.push(name, value);
  }
  return out;
}

/** Keeps every header except those in `drop` (lower-case): the upgrade path must keep Connection/Upgrade. */
export function withoutHeaders(raw: RawHeaders, drop: ReadonlySet<string>): RawHeaders {
  const out: RawHeaders = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has(raw[i]!.toLowerCase())) out.push(raw[i]!, raw[i + 1]!);
  }
  return out;
}

/** Appends the client's address to X-Forwarded-For (one header line, comma-joined, like Go). */
export function appendForwardedFor(raw: RawHeaders, clientAddress: string | undefined): RawHeaders {
  const prior: string[] = [];
  const out: RawHeaders = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i]!.toLowerCase() === 'x-forwarded-for') prior.push(raw[i + 1]!);
    else out.push(raw[i]!, raw[i + 1]!);
  }
  if (clientAddress) prior.push(clientAddress.replace(/^::ffff:/, ''));
  if (prior.length) out.push('X-Forwarded-For', prior.join(', '));
  return out;
}

/** Sets headers, replacing any of the same name (case-insensitive). */
export function setHeaders(raw: RawHeaders, set: Record<string, string>): RawHeaders {
  const names = new Set(Object.keys(set).map((k) => k.toLowerCase()));
  const out = withoutHeaders(raw, names);
  for (const [k, v] of Object.entries(set)) out.push(k, v);
  return out;
}

/** Go's `ascii.IsPrint` over the Upgrade value: printable ASCII only. */
export function isPrintableAscii(s: string): boolean {
  return /^[\x20-\x7e]*$/.test(s);
}
