/**
 * The audit log backend: `--audit-log-path FILE` appends one JSON Event a line; `-` writes them to
 * stdout, as upstream. Writes are buffered by the file stream and flushed on close.
 *
 * Mirrors k8s.io/apiserver `plugin/pkg/audit/log/backend.go` (format json, one event a line).
 * Differences: no rotation (`--audit-log-maxsize` and friends); a write error is logged once and
 * the events that follow are dropped, rather than failing the requests (upstream's blocking mode
 * would fail them).
 */
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { errorMessage, type Logger } from '../../shared/logging.js';
import type { AuditEvent } from './event.js';

export interface AuditBackend {
  processEvent(event: AuditEvent): void;
  close(): Promise<void>;
}

export function newLogBackend(path: string, log: Logger): AuditBackend {
  const out: Writable =
    path === '-' ? process.stdout : fs.createWriteStream(path, { flags: 'a', mode: 0o600 });
  let failed = false;
  out.on('error', (err) => {
    if (!failed) log(`audit log ${path}: ${errorMessage(err)}; further events are dropped`);
    failed = true;
  });
  return {
    processEvent(event) {
      if (!failed) out.write(`${JSON.stringify(event)}\n`);
    },
    close() {
      if (out === process.stdout || failed) return Promise.resolve();
      return new Promise((resolve) => out.end(() => resolve()));
    },
  };
}
