/**
 * Reads a container's CRI log file the way `kubectl logs` wants it: what the kubelet's
 * `/containerLogs/{ns}/{pod}/{container}` serves, from the `log_path` of CRI ContainerStatus.
 *
 * Mirrors kubelet `pkg/kubelet/kuberuntime/logs/logs.go` (ReadLogs, waitLogs, logWriter) and
 * `pkg/util/tail` (FindTailLineStartIndex):
 * - `tailLines` counts FILE lines from the end (a long line split into `P` parts counts once per
 *   part, as upstream), found by reading blocks backwards: memory stays bounded on any file;
 * - `sinceTime`/`sinceSeconds` skip lines stamped earlier; `limitBytes` cuts the output;
 * - `follow` waits at the end of the file for writes (fs.watch, with a poll every
 *   `pollIntervalMs` as upstream's logForceCheckPeriod), asks `isRunning()` each time it reaches
 *   the end, and once the container is no longer running it drains the file one last time and
 *   stops. Aborting `signal` stops at once.
 * - lines not in the CRI format are skipped (upstream logs them and goes on).
 * Differences: with `timestamps`, only the start of a logical line gets the prefix, not every `P`
 * part of it (a timestamp in the middle of a joined line is noise); log rotation is not handled
 * (neither does upstream's reader); `previous` is the caller's business: the kubelet reads the log
 * of the previous container instance (attempt - 1), which is just another path.
 */
import { once } from 'node:events';
import fs from 'node:fs';
import type { Writable } from 'node:stream';
import { parseLogLine, toFixedNano, type LogStream } from './log-format.js';

export interface CriLogOptions {
  /** Keep reading as the container writes, until it stops running (or `signal` aborts). */
  follow?: boolean;
  /** Only the last N file lines; undefined or negative = everything. */
  tailLines?: number;
  /** Prefix each line with its timestamp in the kubelet's fixed nine-digit RFC 3339 form. */
  timestamps?: boolean;
  /** Skip lines stamped before this instant (ms since the epoch or a Date). */
  sinceTime?: number | Date;
  /** Skip lines older than this many seconds (the later of this and `sinceTime` wins). */
  sinceSeconds?: number;
  /** Stop after this many output bytes (the last line may be cut). */
  limitBytes?: number;
  signal?: AbortSignal;
  /**
   * With `follow`: whether the container still runs (the kubelet asks CRI ContainerStatus).
   * Without it, following goes on until `signal` aborts.
   */
  isRunning?: () => boolean | Promise<boolean>;
  /** With `follow`: how often to look at the file even without a watch event. Default 1000 ms. */
  pollIntervalMs?: number;
}

export interface CriLogChunk {
  stream: LogStream;
  /** Output bytes: optional timestamp prefix, then the content. */
  data: Buffer;
}

const READ_BLOCK = 64 * 1024;
const TAIL_BLOCK = 4096;
/** A file line longer than this is not from a CRI runtime (containerd splits at 16 KiB); skipped. */
export const MAX_FILE_LINE_BYTES = 1024 * 1024;
const NL = 0x0a;

export class CriLogError extends Error {
  constructor(
    readonly code: 'NOT_FOUND' | 'READ_FAILED',
    message: string,
  ) {
    super(message);
    this.name = 'CriLogError';
  }
}

/**
 * The byte offset where the last `n` lines of the file start (0 for n larger than the file's
 * line count; the file size for n = 0). A final line without `\n` counts as a line.
 */
export async function findTailLineStart(fh: fs.promises.FileHandle, n: number): Promise<number> {
  const size = (await fh.stat()).size;
  if (n < 0) return 0;
  let right = size;
  // Lines are counted by their ends; a file ending in `\n` has one end more than it has breaks
  // worth skipping, so we look for the (n+1)-th newline from the end.
  let want = n + 1;
  if (size > 0) {
    const last = Buffer.alloc(1);
    await fh.read(last, 0, 1, size - 1);
    if (last[0] !== NL) want = n;
  }
  if (want === 0) return size;
  const buf = Buffer.allocUnsafe(TAIL_BLOCK);
  while (right > 0) {
    const left = Math.max(0, right - TAIL_BLOCK);
    const len = right - left;
    await fh.read(buf, 0, len, left);
    for (let i = len - 1; i >= 0; i--) {
      if (buf[i] === NL && --want === 0) return left + i + 1;
    }
    right = left;
  }
  return 0;
}

/** The log as output chunks, one per file line that passes the options. */
export async function* readCriLog(path: string, opts: CriLogOptions = {}): AsyncGenerator<CriLogChunk> {
  let fh: fs.promises.FileHandle;
  try {
    fh = await fs.promises.open(path, 'r');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT')
      throw new CriLogError('NOT_FOUND', `failed to open log file "${path}": not found`);
    throw new CriLogError('READ_FAILED', `failed to open log file "${path}": ${e.message}`);
  }
  const since = sinceMs(opts);
  let remaining = opts.limitBytes !== undefined && opts.limitBytes >= 0 ? opts.limitBytes : Infinity;
  const tail = opts.tailLines !== undefined && opts.tailLines >= 0 ? opts.tailLines : -1;
  let lineBudget = tail >= 0 && !opts.follow ? tail : Infinity;
  const waiter = opts.follow ? new ChangeWaiter(path, opts.pollIntervalMs ?? 1000, opts.signal) : undefined;
  try {
    if (remaining === 0 || lineBudget === 0) return;
    let pos = tail >= 0 ? await findTailLineStart(fh, tail) : 0;
    const buf = Buffer.allocUnsafe(READ_BLOCK);
    let pending: Buffer[] = [];
    let pendingLen = 0;
    let skipping = false; // inside an over-long line: drop bytes until its end
    let atLineStart = true; // the next content starts a logical line (the previous was not P)
    let lastPass = false;

    const emit = (line: Buffer): CriLogChunk | undefined => {
      const msg = parseLogLine(line);
      if (!msg) return undefined;
      const startsLine = atLineStart;
      atLineStart = !msg.partial;
      if (msg.timeMs < since) return undefined;
      let data = msg.content;
      if (opts.timestamps && startsLine) {
        data = Buffer.concat([Buffer.from(`${toFixedNano(msg.timestamp)} `, 'latin1'), data]);
      }
      if (data.length > remaining) data = data.subarray(0, remaining);
      remaining -= data.length;
      lineBudget--;
      return { stream: msg.stream, data };
    };

    while (!opts.signal?.aborted) {
      const { bytesRead } = await fh.read(buf, 0, READ_BLOCK, pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        let start = 0;
        for (let nl = buf.indexOf(NL, 0); nl >= 0 && nl < bytesRead; nl = buf.indexOf(NL, start)) {
          const piece = buf.subarray(start, nl + 1);
          start = nl + 1;
          if (skipping) {
            skipping = false;
            continue;
          }
          const line = pendingLen ? Buffer.concat([...pending, piece]) : Buffer.from(piece);
          pending = [];
          pendingLen = 0;
          const chunk = emit(line);
          if (chunk) yield chunk;
          if (remaining <= 0 || lineBudget <= 0 || opts.signal?.aborted) return;
        }
        if (start < bytesRead && !skipping) {
          pending.push(Buffer.from(buf.subarray(start, bytesRead)));
          pendingLen += bytesRead - start;
          if (pendingLen > MAX_FILE_LINE_BYTES) {
            pending = [];
            pendingLen = 0;
            skipping = true;
          }
        }
        continue;
      }
      // End of the file for now.
      if (!waiter || lastPass) break;
      if (opts.isRunning && !(await opts.isRunning())) {
        // Whatever the container wrote before it stopped is in the file now: one more pass.
        lastPass = true;
        continue;
      }
      await waiter.next();
    }
    // Not following, or the container is gone: an unterminated last line is still a line
    // (upstream parses it too; our writer never leaves one but another runtime might).
    if (pendingLen && !skipping && !opts.signal?.aborted) {
      const chunk = emit(Buffer.concat(pending));
      if (chunk) yield chunk;
    }
  } finally {
    waiter?.close();
    await fh.close();
  }
}

/**
 * Copies the log into `out` (one Writable for both streams, as the kubelet's HTTP response, or
 * one per stream), waiting for `drain` when a writer is full. Resolves when the log is done (see
 * CriLogOptions.follow) or the writer closes; does not end the writers.
 */
export async function copyCriLog(
  path: string,
  opts: CriLogOptions,
  out: Writable | { stdout: Writable; stderr: Writable },
): Promise<void> {
  const pick = (s: LogStream): Writable => ('write' in out ? out : s === 'stderr' ? out.stderr : out.stdout);
  for await (const chunk of readCriLog(path, opts)) {
    const w = pick(chunk.stream);
    if (w.destroyed || w.writableEnded) return;
    if (!w.write(chunk.data)) {
      const closed = once(w, 'close').then(() => false);
      const drained = once(w, 'drain').then(() => true);
      if (!(await Promise.race([drained, closed]))) return;
    }
  }
}

function sinceMs(opts: CriLogOptions): number {
  let since = -Infinity;
  if (opts.sinceSeconds !== undefined && opts.sinceSeconds >= 0)
    since = Date.now() - opts.sinceSeconds * 1000;
  if (opts.sinceTime !== undefined) {
    const t = opts.sinceTime instanceof Date ? opts.sinceTime.getTime() : opts.sinceTime;
    if (t > since) since = t;
  }
  return since;
}

/**
 * Resolves `next()` on the next change of the file, after `pollMs` at the latest, or at once when
 * aborted. A change that happens between two waits is not lost (it makes the next wait return).
 */
class ChangeWaiter {
  private watcher: fs.FSWatcher | undefined;
  private dirty = false;
  private wake: (() => void) | undefined;
  private readonly onAbort = (): void => this.fire();

  constructor(
    path: string,
    private readonly pollMs: number,
    private readonly signal?: AbortSignal,
  ) {
    try {
      this.watcher = fs.watch(path, { persistent: false }, () => this.fire());
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      // No inotify (or the file went away): polling alone still works.
    }
    signal?.addEventListener('abort', this.onAbort);
  }

  next(): Promise<void> {
    if (this.dirty || this.signal?.aborted) {
      this.dirty = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.fire(), this.pollMs);
      this.wake = () => {
        clearTimeout(timer);
        this.dirty = false;
        resolve();
      };
    });
  }

  close(): void {
    this.watcher?.close();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.wake?.();
  }

  private fire(): void {
    this.dirty = true;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
