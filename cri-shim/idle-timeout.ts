/**
 * The streaming server's idle timeout: kubelet `--streaming-connection-idle-timeout` (default 4h,
 * 0 = none). A streaming connection (exec, attach, port-forward; WebSocket or SPDY) with no bytes
 * in either direction for that long is ended.
 *
 * Upstream sets it on the connection: spdystream's idle-aware framer resets its timer on every
 * frame read or written (data, SYN, PING…) and closes the connection when it fires; the WebSocket
 * side pushes the read deadline forward on every read. Here the watcher looks at the connection's
 * byte counters (`bytesRead`, `bytesWritten`), so every frame counts alike, whichever the
 * transport: stdin, output, resizes, WebSocket ping/pong, SPDY PING. kubectl's periodic pings
 * therefore keep an idle session open, as the issue asks.
 * Difference: where upstream just drops the connection, exec and attach end with an InternalError
 * Status on the error channel first, so the client can tell an idle timeout from a network fault.
 */
import type { Duplex } from 'node:stream';
import { InvalidArgumentError } from 'commander';

/** The kubelet's default `--streaming-connection-idle-timeout`: 4 hours. */
export const DEFAULT_STREAMING_IDLE_TIMEOUT_MS = 4 * 60 * 60 * 1000;

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * Parses a Go duration (`time.ParseDuration`: `4h`, `1h30m`, `30s`, `500ms`, `1.5s`, `0`) into
 * milliseconds. Negative durations are refused: a timeout cannot be negative.
 */
export function parseGoDuration(text: string): number {
  const s = text.trim();
  const fail = (why: string): never => {
    throw new Error(`invalid duration ${JSON.stringify(text)}: ${why}`);
  };
  if (s === '0' || s === '+0') return 0;
  if (s.startsWith('-')) fail('must not be negative');
  const body = s.startsWith('+') ? s.slice(1) : s;
  if (body === '') fail('empty');
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0;
  let pos = 0;
  while (pos < body.length) {
    part.lastIndex = pos;
    const m = part.exec(body);
    if (!m) {
      fail(
        /^\d*\.?\d*$/.test(body.slice(pos))
          ? 'missing unit (use ns, us, ms, s, m or h, e.g. 4h, 30s, 500ms)'
          : 'expected a Go duration such as 4h, 1h30m, 30s, 500ms or 0',
      );
    }
    total += Number(m![1]) * UNIT_MS[m![2]!]!;
    pos = part.lastIndex;
  }
  if (!Number.isFinite(total)) fail('out of range');
  return total;
}

/** commander argument parser for `--streaming-connection-idle-timeout`. */
export function idleTimeoutArgument(value: string): number {
  try {
    return parseGoDuration(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

/** Go's way of printing a duration, for messages: `4h0m0s`, `30s`, `300ms`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = (ms % 60_000) / 1000;
  if (h) return `${h}h${m}m${s}s`;
  if (m) return `${m}m${s}s`;
  return `${s}s`;
}

/** The Status message an exec/attach gets when its connection was idle too long. */
export function idleTimeoutMessage(timeoutMs: number): string {
  return `streaming connection idle timeout: no traffic for ${formatDuration(timeoutMs)} (--streaming-connection-idle-timeout)`;
}

interface ByteCounters {
  bytesRead?: number;
  bytesWritten?: number;
}

/**
 * Calls `onIdle` once the connection has carried no bytes either way for `timeoutMs`. Polls the
 * socket's counters every timeout/10 (at most once a second, at least every 5 ms), so the timeout
 * fires within that much of the exact moment. Returns a function that stops watching; watching
 * also stops once the socket closes. A timeout of 0 (or less) watches nothing.
 */
export function watchIdle(socket: Duplex, timeoutMs: number, onIdle: () => void): () => void {
  if (!(timeoutMs > 0)) return () => {};
  const counters = socket as Duplex & ByteCounters;
  const traffic = (): number => (counters.bytesRead ?? 0) + (counters.bytesWritten ?? 0);
  let seen = traffic();
  let lastActivity = Date.now();
  const every = Math.max(5, Math.min(1000, timeoutMs / 10));
  const timer = setInterval(() => {
    const now = Date.now();
    const t = traffic();
    if (t !== seen) {
      seen = t;
      lastActivity = now;
      return;
    }
    if (now - lastActivity >= timeoutMs) {
      stop();
      onIdle();
    }
  }, every);
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    socket.off('close', stop);
  };
  socket.once('close', stop);
  return stop;
}
