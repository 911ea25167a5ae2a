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
 * - the client going away kills the process group: nothing keeps running unobserved.
 * With `tty`, stderr is merged into stdout (no pseudo-terminal yet; a later issue adds one).
 */
import type { ChannelServerSession } from '../shared/remotecommand/websocket-server.js';
import { exitStatus, internalErrorStatus } from '../shared/remotecommand/exit-status.js';
import { CriError } from './errors.js';
import { killGroup } from './process-group.js';
import type { ExecRequestEntry } from './request-cache.js';
import { short, type ContainerRuntime } from './runtime.js';

export function serveExec(
  runtime: ContainerRuntime,
  req: ExecRequestEntry,
  session: ChannelServerSession,
  log: (line: string) => void,
): Promise<void> {
  const wantStderr = !!session.stderr || req.tty;
  let child;
  try {
    child = runtime.spawnExec(req.containerId, req.cmd, [
      session.stdin ? 'pipe' : 'ignore',
      session.stdout ? 'pipe' : 'ignore',
      wantStderr ? 'pipe' : 'ignore',
    ]);
  } catch (err) {
    const message = err instanceof CriError ? err.message : `failed to exec in container: ${String(err)}`;
    log(`exec in ${short(req.containerId)} ${JSON.stringify(req.cmd)} refused: ${message}`);
    return session.finish(internalErrorStatus(message));
  }
  const pid = child.pid;
  log(`exec in ${short(req.containerId)}: pid ${pid} ${JSON.stringify(req.cmd)}`);

  let ended = false;
  session.on('close', () => {
    if (!ended) {
      log(`exec pid ${pid}: client went away, killing its process group`);
      killGroup(pid);
    }
  });

  if (session.stdin && child.stdin) {
    child.stdin.on('error', () => {}); // EPIPE when the process exits without reading stdin
    session.stdin.pipe(child.stdin);
  }
  const stdoutSink = session.stdout;
  const stderrSink = session.stderr ?? (req.tty ? session.stdout : null);
  stdoutSink?.on('error', () => {});
  stderrSink?.on('error', () => {});
  if (child.stdout && stdoutSink) child.stdout.pipe(stdoutSink, { end: false });
  if (child.stderr && stderrSink) child.stderr.pipe(stderrSink, { end: false });

  return new Promise<void>((resolve) => {
    const end = (status: Parameters<ChannelServerSession['finish']>[0]): void => {
      if (ended) return;
      ended = true;
      session.stdin?.unpipe();
      void session.finish(status).then(resolve, resolve);
    };
    // 'close' comes after the process exited AND its output pipes drained into the session.
    child.once('close', (code, signal) => {
      log(`exec pid ${pid} ended: ${code ?? signal}`);
      end(exitStatus(code, signal, req.cmd));
    });
    child.once('error', (err) => {
      if (child.pid === undefined) end(internalErrorStatus(`failed to exec in container: ${err.message}`));
    });
  });
}
