/**
 * Serves one exec over an accepted remotecommand session: spawns the command inside the
 * container and wires the channels to it.
 *
 * Mirrors kubelet `pkg/cri/streaming/remotecommand/exec.go` (ServeExec) with containerd's exec
 * in place of the runtime call:
 * - argv is spawned as given, never through a shell;
 * - stdin, stdout and stderr are piped with backpressure (a slow client pauses the process's
 *   output; a paused process pauses the client's WebSocket);
 * - stdin EOF (v5 CLOSE `[255,0]`, or the connection ending) closes the process's stdin;
 * - when the process ends, stdout/stderr are flushed and the exit Status goes on the error
 *   channel: Success, NonZeroExitCode with an ExitCode cause (128+n for a signal), or
 *   InternalError when the command cannot be started — `exec: "x": executable file not found in
 *   $PATH`, as runc words it (kubectl then prints the message and exits 1, as with containerd);
 * - the client going away kills the process group (with a terminal, its whole session — a shell
 *   puts each job in a group of its own): nothing keeps running unobserved.
 * With `tty` the command runs under a pseudo-terminal (terminal-process.ts) inside the same
 * isolation: stderr is the terminal too, the process starts once the client's first resize
 * message arrived (or after INITIAL_RESIZE_WAIT_MS), later resizes set the terminal size, and
 * stdin EOF types ^D. The session is a RemoteCommandSession: WebSocket or SPDY alike.
 */
import type { RemoteCommandSession } from '../shared/remotecommand/session.js';
import type { TerminalSize } from '../shared/remotecommand/codec.js';
import { exitStatus, internalErrorStatus } from '../shared/remotecommand/exit-status.js';
import type { Status } from '../shared/status.js';
import { CriError } from './errors.js';
import type { RuntimeProcess } from './process-group.js';
import type { ExecRequestEntry } from './request-cache.js';
import { killTree, short, type ContainerRuntime } from './runtime.js';
import type { TerminalProcess } from './terminal-process.js';
import { type Logger } from '../shared/logging.js';

/**
 * How long a terminal exec waits for the client's first resize before starting the process with
 * the default size. kubectl sends its size right after connecting; waiting for it means `stty size`
 * is right from the first instruction (kubernetes#47990).
 */
export const INITIAL_RESIZE_WAIT_MS = 150;

export function serveExec(
  runtime: ContainerRuntime,
  req: ExecRequestEntry,
  session: RemoteCommandSession,
  log: Logger,
): Promise<void> {
  if (req.tty) return serveTerminalExec(runtime, req, session, log);
  let child;
  try {
    child = runtime.spawnExec(req.containerId, req.cmd, [
      session.stdin ? 'pipe' : 'ignore',
      session.stdout ? 'pipe' : 'ignore',
      session.stderr ? 'pipe' : 'ignore',
    ]);
  } catch (err) {
    return refuse(req, session, log, err);
  }
  return runExec(req, child, session, log);
}

/** An exec with `tty`: the command runs under a pseudo-terminal; resizes reach it. */
async function serveTerminalExec(
  runtime: ContainerRuntime,
  req: ExecRequestEntry,
  session: RemoteCommandSession,
  log: Logger,
): Promise<void> {
  let latest: TerminalSize | undefined;
  let child: TerminalProcess | undefined;
  session.on('resize', (size) => {
    latest = size;
    child?.resize(size);
  });
  // Resize messages exist from v3 on; older clients cannot send one, so there is nothing to wait for.
  if (session.protocol.version >= 3) await firstResize(session, INITIAL_RESIZE_WAIT_MS);
  if (session.isClosed) return;
  try {
    child = runtime.spawnExecTerminal(req.containerId, req.cmd, latest);
  } catch (err) {
    return refuse(req, session, log, err);
  }
  return runExec(req, child, session, log);
}

/** Resolves at the first resize message, the session's end, or after `ms`, whichever comes first. */
function firstResize(session: RemoteCommandSession, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    session.once('resize', done);
    session.once('close', done);
  });
}

function refuse(
  req: ExecRequestEntry,
  session: RemoteCommandSession,
  log: Logger,
  err: unknown,
): Promise<void> {
  const message = err instanceof CriError ? err.message : `failed to exec in container: ${String(err)}`;
  log(`exec in ${short(req.containerId)} ${JSON.stringify(req.cmd)} refused: ${message}`);
  return session.finish(internalErrorStatus(message));
}

/** Wires a started exec to its session and ends the session with the exit Status. */
function runExec(
  req: ExecRequestEntry,
  child: RuntimeProcess,
  session: RemoteCommandSession,
  log: Logger,
): Promise<void> {
  const pid = child.pid;
  log(`exec in ${short(req.containerId)}: pid ${pid} ${JSON.stringify(req.cmd)}${req.tty ? ' (tty)' : ''}`);

  let ended = false;
  session.once('close', () => {
    if (!ended) {
      log(`exec pid ${pid}: client went away, killing its process tree`);
      // A client leaving is no end-of-input: nothing more goes to the process (no ^D on a terminal).
      session.stdin?.unpipe();
      killTree(child);
    }
  });

  if (session.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // EPIPE when the process exits without reading stdin
    session.stdin.pipe(child.stdin);
  }
  session.stdout?.on('error', () => {});
  session.stderr?.on('error', () => {});
  if (child.stdout) {
    if (session.stdout) child.stdout.pipe(session.stdout, { end: false });
    else child.stdout.resume();
  }
  if (child.stderr && session.stderr) child.stderr.pipe(session.stderr, { end: false });

  const events = child as NodeJS.EventEmitter;
  return new Promise<void>((resolve) => {
    const end = (status: Status): void => {
      if (ended) return;
      ended = true;
      session.stdin?.unpipe();
      void session.finish(status).then(resolve, resolve);
    };
    // 'close' comes after the process exited AND its output pipes drained into the session.
    events.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      log(`exec pid ${pid} ended: ${code ?? signal}`);
      end(exitStatus(code, signal, req.cmd));
    });
    events.once('error', (err: Error) => {
      if (child.pid === undefined) end(internalErrorStatus(`failed to exec in container: ${err.message}`));
    });
  });
}
