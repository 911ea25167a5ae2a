/**
 * Writes a container's stdout and stderr to its log file in the CRI log format
 * (`shared/cri/log-format.ts`), the file the kubelet reads for `kubectl logs`.
 *
 * Mirrors containerd `internal/cri/io/logger.go` (redirectLogs): each stream is cut into lines at
 * `\n`; a line is stamped when it is complete; a line longer than `maxLineBytes` (containerd's
 * `max_container_log_line_size`, 16 KiB by default) is written as `P` parts of that size and an
 * `F` rest; whatever is left without a newline when the stream ends is written as a `P` line. As
 * upstream, a line is not written until its newline arrives (a prompt without `\n` waits), so
 * memory per stream is bounded by `maxLineBytes`.
 * Differences: writes are synchronous appends (one write per chunk of output, whole lines only, so
 * a reader never sees half a line from us); the timestamps are UTC.
 */
import fs from 'node:fs';
import path from 'node:path';
import { formatLogLine, formatRfc3339Nano, nowNs, type LogStream } from '../shared/cri/log-format.js';

export const DEFAULT_MAX_LINE_BYTES = 16 * 1024;

export interface ContainerLogOptions {
  maxLineBytes?: number;
  /** The clock, for tests: an RFC 3339 timestamp. */
  now?: () => string;
}

export interface LogStreamWriter {
  write(chunk: Buffer): void;
  /** The stream ended: flush what is left as a partial line. */
  end(): void;
}

export class ContainerLog {
  private fd: number | undefined;
  private readonly maxLine: number;
  private readonly now: () => string;

  /** Opens (creating its directory) `file` for appending; throws when that fails. */
  constructor(
    readonly file: string,
    opts: ContainerLogOptions = {},
  ) {
    this.maxLine = Math.max(1, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
    this.now = opts.now ?? (() => formatRfc3339Nano(nowNs()));
    fs.mkdirSync(path.dirname(file), { recursive: true });
    this.fd = fs.openSync(file, 'a', 0o640);
  }

  /** A line splitter for one stream of the main process. */
  stream(name: LogStream): LogStreamWriter {
    let pending: Buffer[] = [];
    let pendingLen = 0;
    const take = (): Buffer => {
      const b = pending.length === 1 ? pending[0]! : Buffer.concat(pending, pendingLen);
      pending = [];
      pendingLen = 0;
      return b;
    };
    return {
      write: (chunk) => {
        const out: Buffer[] = [];
        const ts = this.now();
        let start = 0;
        while (start < chunk.length) {
          const nl = chunk.indexOf(0x0a, start);
          const end = nl < 0 ? chunk.length : nl;
          let piece = chunk.subarray(start, end);
          // Cut over-long lines into P parts as soon as they exceed the limit.
          while (pendingLen + piece.length > this.maxLine) {
            const room = this.maxLine - pendingLen;
            pending.push(piece.subarray(0, room));
            pendingLen += room;
            out.push(formatLogLine(ts, name, 'P', take()));
            piece = piece.subarray(room);
          }
          if (piece.length) {
            pending.push(piece);
            pendingLen += piece.length;
          }
          if (nl < 0) break;
          out.push(formatLogLine(ts, name, 'F', take()));
          start = nl + 1;
        }
        // Keep no reference into the caller's chunk.
        if (pendingLen) {
          const rest = Buffer.from(take());
          pending = [rest];
          pendingLen = rest.length;
        }
        this.append(out);
      },
      end: () => {
        if (pendingLen) this.append([formatLogLine(this.now(), name, 'P', take())]);
      },
    };
  }

  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private append(lines: Buffer[]): void {
    if (this.fd === undefined || lines.length === 0) return;
    const all = lines.length === 1 ? lines[0]! : Buffer.concat(lines);
    let off = 0;
    while (off < all.length) off += fs.writeSync(this.fd, all, off);
  }
}
