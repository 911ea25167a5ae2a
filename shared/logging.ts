/**
 * What every process here logs through, and how an error becomes one line of it.
 *
 * Two shapes, one type family:
 * - a `Logger` is a plain function taking one finished line; tests collect lines in an array with
 *   one, and every call site may keep writing `log(line)`;
 * - a `StructuredLogger` is also a `Logger`, and adds levels, klog's verbosity (`v(n)`) and
 *   key/value fields (`with({ auditID })`), which is how every hop tags the lines of one request.
 *   `newLogger` makes one backed by pino; `structured(log)` adapts a plain function (its fields
 *   are appended to the line as `key=value`).
 *
 * Mirrors what Kubernetes components take from k8s.io/component-base/logs: `-v`/`--v` (lines
 * logged at V(n) show when n ≤ v) and `--logging-format text|json`. `text` prints klog's header
 * (`I0102 15:04:05.123456  pid service] message key="value"`); `json` one object a line with
 * `ts` (seconds since the epoch), `v` and `msg` as upstream's JSON format, plus `level` and
 * `service`. Differences: pino instead of klog/zapr; no source file and line in the header.
 */
import { createRequire } from 'node:module';
import type { pino as Pino } from 'pino';

/**
 * pino is required by the first newLogger, not at import: kexec formats its `-v` lines with
 * formatText here and never logs through pino, and loading pino cost it ~30 ms of CPU at every
 * start (bench/compare/findings.md, start-up).
 */
const loadPino = (): typeof Pino => (createRequire(import.meta.url)('pino') as { pino: typeof Pino }).pino;

/** One log line (to stderr in the real process). */
export type Logger = (line: string) => void;

/** Key/value pairs attached to a line: `auditID`, `pod`, `code` … */
export type LogFields = Record<string, unknown>;

/** klog's Verbose: a logger that logs at info only when the process runs with -v ≥ its level. */
export interface VerboseLogger {
  readonly enabled: boolean;
  info(msg: string, fields?: LogFields): void;
}

export interface StructuredLogger extends Logger {
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** klog.V(n). */
  v(level: number): VerboseLogger;
  /** The same logger with these fields on every line. */
  with(fields: LogFields): StructuredLogger;
}

export type LoggingFormat = 'text' | 'json';
export const LOGGING_FORMATS: readonly LoggingFormat[] = ['text', 'json'];

export interface LoggerOptions {
  /** The component's name, on every line (`apiserver`, `kubelet-sim`, `cri-shim` …). */
  service: string;
  /** `-v`: the highest V level shown; default 0. */
  verbosity?: number;
  /** `--logging-format`; default `text`. */
  format?: LoggingFormat;
  /** Where lines go; default the process's stderr. */
  destination?: { write(s: string): unknown };
}

/** The message of an Error, or the thrown value as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Query parameters that carry a credential (`?access_token=` is how some WebSocket clients send one). */
const CREDENTIAL_QUERY = /([?&;](?:access_token|id_token|refresh_token|token)=)[^&#\s"']*/gi;
/** An Authorization header's value after its scheme, as a header line or in JSON. */
const AUTHORIZATION = /((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:bearer|basic)\s+)[^\s"',}]+/gi;
/** kubectl's WebSocket subprotocol that carries a bearer token. */
const WS_BEARER = /(base64url\.bearer\.authorization\.k8s\.io\.)[A-Za-z0-9_-]+/g;
/** A JWT anywhere: three base64url parts, the first a JSON header (`eyJ`). */
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/**
 * The line with every credential in it masked: `access_token=<masked>`, `Bearer <masked>`,
 * `<masked-jwt>` (client-go masks Authorization the same way in its request dumps,
 * transport/round_trippers.go maskValue). Every logger goes through it (issue #11: a
 * client-supplied `?access_token=` was logged verbatim).
 */
export function redactCredentials(line: string): string {
  return line
    .replace(CREDENTIAL_QUERY, '$1<masked>')
    .replace(AUTHORIZATION, '$1<masked>')
    .replace(WS_BEARER, '$1<masked>')
    .replace(JWT, '<masked-jwt>');
}

/** A service's logger: `name: line` on stderr, credentials masked. */
export function stderrLogger(name: string): Logger {
  return (line) => void process.stderr.write(`${redactCredentials(`${name}: ${line}`)}\n`);
}

type Level = 'info' | 'warn' | 'error';
type Emit = (level: Level, v: number, msg: string, fields: LogFields) => void;

function makeLogger(emit: Emit, verbosity: number, bound: LogFields): StructuredLogger {
  const at =
    (level: Level) =>
    (msg: string, fields?: LogFields): void =>
      emit(level, 0, msg, fields ? { ...bound, ...fields } : bound);
  const log = ((line: string) => at('info')(line)) as StructuredLogger;
  log.info = at('info');
  log.warn = at('warn');
  log.error = at('error');
  log.v = (level) => ({
    enabled: level <= verbosity,
    info: (msg, fields) => {
      if (level <= verbosity) emit('info', level, msg, fields ? { ...bound, ...fields } : bound);
    },
  });
  log.with = (fields) => makeLogger(emit, verbosity, { ...bound, ...fields });
  return log;
}

/** A pino-backed logger for a service's main. */
export function newLogger(opts: LoggerOptions): StructuredLogger {
  const format = opts.format ?? 'text';
  const sink = opts.destination ?? process.stderr;
  const destination =
    format === 'json' ? sink : { write: (s: string) => sink.write(formatText(JSON.parse(s) as LogRecord)) };
  const p = loadPino()(
    {
      base: { pid: process.pid, service: opts.service },
      messageKey: 'msg',
      // Upstream's JSON format: seconds since the epoch, with microseconds.
      timestamp: () => `,"ts":${((performance.timeOrigin + performance.now()) / 1000).toFixed(6)}`,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
  return makeLogger(
    (level, v, msg, fields) => p[level]({ v, ...serializable(fields) }, redactCredentials(msg)),
    opts.verbosity ?? 0,
    {},
  );
}

/** A plain line function seen as a StructuredLogger; a StructuredLogger is returned as it is. */
export function structured(log: Logger): StructuredLogger {
  if (isStructured(log)) return log;
  return makeLogger((_level, _v, msg, fields) => log(redactCredentials(msg + formatFields(fields))), 0, {});
}

function isStructured(log: Logger): log is StructuredLogger {
  return typeof (log as Partial<StructuredLogger>).with === 'function';
}

/** Errors become their message (pino would otherwise print `{}` for some); credentials masked. */
function serializable(fields: LogFields): LogFields {
  const out: LogFields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const value = v instanceof Error ? v.message : v;
    out[k] = typeof value === 'string' ? redactCredentials(value) : value;
  }
  return out;
}

/** One JSON log line as `--logging-format json` writes it. */
export interface LogRecord {
  ts: number;
  level: string;
  v?: number;
  service?: string;
  msg: string;
  [field: string]: unknown;
}

const RECORD_KEYS = new Set(['ts', 'level', 'v', 'service', 'msg', 'pid', 'hostname', 'time']);
const SEVERITY: Record<string, string> = { info: 'I', warn: 'W', error: 'E', fatal: 'F', debug: 'I' };

/** The fields of a record beyond the header ones. */
export function recordFields(r: LogRecord): LogFields {
  return Object.fromEntries(Object.entries(r).filter(([k]) => !RECORD_KEYS.has(k)));
}

/** A JSON record as a klog text line: `I0102 15:04:05.123456  4242 apiserver] msg key="value"`. */
export function formatText(r: LogRecord): string {
  const d = new Date(r.ts * 1000);
  const pad = (n: number, w = 2): string => String(n).padStart(w, '0');
  const micros = Math.round((r.ts * 1e6) % 1e6);
  const stamp =
    `${pad(d.getMonth() + 1)}${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(micros, 6)}`;
  const pid = String(typeof r.pid === 'number' ? r.pid : process.pid).padStart(7);
  const sev = SEVERITY[r.level] ?? 'I';
  return `${sev}${stamp} ${pid} ${r.service ?? '-'}] ${r.msg}${formatFields(recordFields(r))}\n`;
}

/** ` key="value" n=3`, strings quoted as klog quotes them. */
export function formatFields(fields: LogFields): string {
  let out = '';
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const value = v instanceof Error ? v.message : v;
    out += ` ${k}=${typeof value === 'string' ? JSON.stringify(value) : (JSON.stringify(value) ?? String(value))}`;
  }
  return out;
}

/** Parses one line a service wrote with `--logging-format json`; undefined for anything else. */
export function parseLogRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const r = JSON.parse(line) as Partial<LogRecord>;
    return typeof r.msg === 'string' && typeof r.ts === 'number' ? (r as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}
