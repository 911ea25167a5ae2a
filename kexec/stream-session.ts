/**
 * The part exec and attach share once the URL is known: the terminal (raw mode, sizes), the
 * remotecommand session over the chosen protocol, and turning its Status into an exit code.
 *
 * Mirrors kubectl `pkg/cmd/exec/exec.go` StreamOptions.SetupTTY (a TTY only with stdin, and only
 * when stdin is a terminal; raw mode restored afterwards; no stderr stream with a TTY) and
 * `pkg/util/term` (the terminal size first, then one per SIGWINCH).
 */
import type { Readable, Writable } from 'node:stream';
import type { Status } from '../shared/status.js';
import type { ClientConfig } from './client.js';
import { ApiStatusError, ExitCodeError } from './errors.js';
import { logResponse } from './verbose.js';
import { streamRemoteCommand, type StreamClients, type StreamProtocol } from './remotecommand-executor.js';

/** A terminal input stream as Node gives it (process.stdin when it is a TTY). */
export type TtyIn = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown; isRaw?: boolean };
/** A terminal output stream (process.stdout when it is a TTY). */
export type TtyOut = Writable & { isTTY?: boolean; columns?: number; rows?: number };

/** The process streams and the injectable pieces every kexec command gets. */
export interface KexecIO extends StreamClients {
  stdin: TtyIn;
  stdout: TtyOut;
  stderr: Writable;
  /** Environment (KUBECTL_REMOTE_COMMAND_WEBSOCKETS …); process.env when absent. */
  env?: NodeJS.ProcessEnv;
  /** Ends long-running commands (port-forward); SIGINT when absent. */
  signal?: AbortSignal;
}

/** kubectl's SetupTTY decision: true when a raw terminal session is possible. */
export function setupTty(o: { stdin: boolean; tty: boolean; quiet: boolean }, io: KexecIO): boolean {
  if (!o.stdin || !o.tty) return false;
  if (io.stdin.isTTY && typeof io.stdin.setRawMode === 'function') return true;
  if (!o.quiet) io.stderr.write('Unable to use a TTY - input is not a terminal or the right kind of file\n');
  return false;
}

/**
 * Streams one exec/attach session at `url`; resolves to 0 or throws ExitCodeError (the remote
 * command's code) or ApiStatusError (any other failure Status).
 */
/** client-go remotecommand `pingPeriod`. */
export const PING_INTERVAL_MS = 5000;

export async function runStreamSession(
  cfg: ClientConfig,
  url: URL,
  p: { stdin: boolean; tty: boolean; protocol: StreamProtocol },
  io: KexecIO,
): Promise<number> {
  const resize = p.tty && io.stdout.isTTY ? terminalResize(io.stdout) : undefined;
  const wasRaw = io.stdin.isRaw ?? false;
  if (p.tty) io.stdin.setRawMode?.(true);
  let result: { status: Status; exitCode: number };
  const verbose = cfg.verbose ?? {};
  try {
    let started = performance.now();
    result = await streamRemoteCommand(
      p.protocol,
      {
        url: url.href,
        headers: cfg.headers,
        tls: cfg.tls,
        // client-go's WebSocket executor pings every 5 s (SPDY sessions are not pinged).
        pingIntervalMs: PING_INTERVAL_MS,
        onUpgrade: (res) => {
          const method = res.headers.upgrade?.toLowerCase() === 'websocket' ? 'GET' : 'POST';
          logResponse(verbose, method, url, res, started, res.protocol);
          started = performance.now();
        },
        stdin: p.stdin ? io.stdin : null,
        stdout: io.stdout,
        stderr: p.tty ? null : io.stderr,
        tty: p.tty,
        resize,
      },
      io,
    );
  } finally {
    if (p.tty) io.stdin.setRawMode?.(wasRaw);
  }
  if (result.exitCode === 0) return 0;
  if (result.status.reason === 'NonZeroExitCode') throw new ExitCodeError(result.exitCode);
  throw new ApiStatusError(result.status);
}

/** Subscribes to terminal size changes: the current size at once, then one per SIGWINCH. */
export function terminalResize(out: TtyOut) {
  return (send: (size: { width: number; height: number }) => void): (() => void) => {
    const emit = () => {
      if (out.columns && out.rows) send({ width: out.columns, height: out.rows });
    };
    emit();
    out.on('resize', emit);
    return () => {
      out.off('resize', emit);
    };
  };
}
