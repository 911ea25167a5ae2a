/**
 * How the lab shows its services' logs: each service writes `--logging-format json` lines; the
 * lab prints them as klog text (or passes the JSON on with `--logging-format json`), prefixed
 * `[service]`, and hands every record to whoever listens (the dashboard's request index).
 * Anything that is not a JSON record (READY lines, etcd's own output) is passed on as it is.
 *
 * Upstream has no such view: `journalctl` or `kubectl logs` on each component, one at a time.
 */
import {
  formatText,
  parseLogRecord,
  type LogRecord,
  type Logger,
  type LoggingFormat,
} from '../shared/logging.js';

export type RecordListener = (service: string, record: LogRecord) => void;

const PREFIXED = /^\[([^\]]+)\] (.*)$/s;

export class LabLogView {
  private readonly listeners = new Set<RecordListener>();

  constructor(
    private readonly out: Logger,
    private readonly format: LoggingFormat = 'text',
  ) {}

  /** The Logger to give the services' supervisor. */
  readonly log: Logger = (line) => {
    const m = PREFIXED.exec(line);
    const record = m ? parseLogRecord(m[2]!) : undefined;
    if (!m || !record) return this.out(line);
    for (const l of this.listeners) l(m[1]!, record);
    this.out(this.format === 'json' ? line : `[${m[1]}] ${formatText(record).trimEnd()}`);
  };

  onRecord(listener: RecordListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
