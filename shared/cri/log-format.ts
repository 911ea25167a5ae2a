/**
 * The CRI container log format: one file line per log line a runtime saw, as
 *
 *   2016-10-06T00:17:09.669794202Z stdout F a whole line
 *   2016-10-06T00:17:09.669794203Z stderr P the first part of a long line
 *
 * i.e. an RFC 3339 timestamp with nanoseconds, the stream, a tag (`F` full line, `P` partial: the
 * content continues on a later file line of the same stream) and the content. Every file line ends
 * with `\n`; for an `F` line that newline belongs to the content, for a `P` line it does not.
 *
 * Mirrors cri-api `pkg/apis/runtime/v1/constants.go` (LogStreamType, LogTag) and the kubelet's
 * `pkg/kubelet/kuberuntime/logs/logs.go` (parseCRILog, RFC3339NanoFixed on output). Pure
 * functions; the shim's writer is `cri-shim/container-log.ts`, the reader `logs.ts` beside this.
 * Differences: only the CRI format is parsed (not the Docker JSON one the kubelet also accepts).
 */

export type LogStream = 'stdout' | 'stderr';
export type LogTag = 'F' | 'P';

export interface CriLogLine {
  /** The timestamp as written (RFC 3339, up to nine fraction digits). */
  timestamp: string;
  /** Milliseconds since the epoch (with a fraction), for `since` comparisons. */
  timeMs: number;
  stream: LogStream;
  partial: boolean;
  /** The content: with its `\n` for a full line, without for a partial one. */
  content: Buffer;
}

const TIMESTAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;
const SPACE = 0x20;
const NL = 0x0a;

// Wall clock with nanosecond resolution: the epoch time once, then the monotonic clock's progress
// (JS Dates stop at milliseconds; containerd stamps lines with time.Now()).
const wallAtStartNs = BigInt(Date.now()) * 1_000_000n;
const hrAtStart = process.hrtime.bigint();

/** Now, in nanoseconds since the epoch. */
export function nowNs(): bigint {
  return wallAtStartNs + (process.hrtime.bigint() - hrAtStart);
}

/** Go's time.RFC3339Nano in UTC: nine fraction digits with trailing zeros dropped (containerd's stamp). */
export function formatRfc3339Nano(ns: bigint): string {
  const ms = Number(ns / 1_000_000n);
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${new Date(ms).toISOString().slice(0, 19)}${frac ? `.${frac}` : ''}Z`;
}

/** The kubelet's output form (RFC3339NanoFixed): the same instant, always nine fraction digits. */
export function toFixedNano(timestamp: string): string {
  const m = TIMESTAMP.exec(timestamp);
  if (!m) return timestamp;
  return `${m[1]}.${(m[2] ?? '').padEnd(9, '0')}${m[3]}`;
}

/** Milliseconds since the epoch of an RFC 3339 timestamp; NaN when it is not one. */
export function parseTimestamp(timestamp: string): number {
  const m = TIMESTAMP.exec(timestamp);
  if (!m) return NaN;
  const base = Date.parse(`${m[1]}${m[3]}`);
  return base + Number(`0.${m[2] ?? '0'}`) * 1000;
}

/** One file line of the log (prefix, content, `\n`). */
export function formatLogLine(timestamp: string, stream: LogStream, tag: LogTag, content: Buffer): Buffer {
  const prefix = Buffer.from(`${timestamp} ${stream} ${tag} `, 'latin1');
  const out = Buffer.allocUnsafe(prefix.length + content.length + 1);
  prefix.copy(out, 0);
  content.copy(out, prefix.length);
  out[out.length - 1] = NL;
  return out;
}

/**
 * Parses one file line, with or without its trailing `\n`; undefined when it is not in the CRI
 * format (the kubelet logs such lines and skips them). The tag field may carry more tags after a
 * `:` (forward compatibility, as upstream); only the first one is read.
 */
export function parseLogLine(line: Buffer): CriLogLine | undefined {
  const sp1 = line.indexOf(SPACE);
  if (sp1 < 0) return undefined;
  const timestamp = line.toString('latin1', 0, sp1);
  const timeMs = parseTimestamp(timestamp);
  if (Number.isNaN(timeMs)) return undefined;
  const sp2 = line.indexOf(SPACE, sp1 + 1);
  if (sp2 < 0) return undefined;
  const stream = line.toString('latin1', sp1 + 1, sp2);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  const sp3 = line.indexOf(SPACE, sp2 + 1);
  if (sp3 < 0) return undefined;
  const tag = line.toString('latin1', sp2 + 1, sp3).split(':')[0];
  const partial = tag === 'P';
  let end = line.length;
  // A full line keeps its newline (it is part of the content); a partial one loses it.
  if (partial && end > sp3 + 1 && line[end - 1] === NL) end--;
  if (!partial && line[end - 1] !== NL) {
    return {
      timestamp,
      timeMs,
      stream,
      partial,
      content: Buffer.concat([line.subarray(sp3 + 1), Buffer.from('\n')]),
    };
  }
  return { timestamp, timeMs, stream, partial, content: line.subarray(sp3 + 1, end) };
}
