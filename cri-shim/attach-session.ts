/**
 * Serves one attach: the client sees the container's main process output from now on and, when
 * the container was created with `stdin`, feeds its stdin.
 *
 * Mirrors kubelet `pkg/cri/streaming/remotecommand/attach.go` (ServeAttach). Deliberately
 * minimal for now: output is fanned out without backpressure (the main process must never wait
 * for an attached client; upstream's containerd drops data for slow attachers too), and with
 * `stdin_once` semantics left out the process's stdin stays open when the client leaves.
 * The session ends with the container's exit Status when the main process exits.
 */
import type { ChannelServerSession } from '../shared/remotecommand/websocket-server.js';
import { exitStatus, internalErrorStatus } from '../shared/remotecommand/exit-status.js';
import { CriError } from './errors.js';
import type { AttachRequestEntry } from './request-cache.js';
import type { ContainerRuntime } from './runtime.js';

export function serveAttach(
  runtime: ContainerRuntime,
  req: AttachRequestEntry,
  session: ChannelServerSession,
): Promise<void> {
  let c;
  try {
    c = runtime.runningContainer(req.containerId);
  } catch (err) {
    return session.finish(internalErrorStatus(err instanceof CriError ? err.message : String(err)));
  }
  const container = c;
  const onOutput = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
    const sink = stream === 'stderr' ? (session.stderr ?? (req.tty ? session.stdout : null)) : session.stdout;
    if (sink && !sink.destroyed) sink.write(chunk);
  };
  session.stdout?.on('error', () => {});
  session.stderr?.on('error', () => {});
  container.events.on('output', onOutput);
  const stdinTarget = container.main?.stdin;
  if (session.stdin && stdinTarget) session.stdin.pipe(stdinTarget, { end: false });

  return new Promise<void>((resolve) => {
    const onExit = (code: number): void => {
      cleanup();
      void session.finish(exitStatus(code)).then(resolve, resolve);
    };
    const cleanup = (): void => {
      container.events.off('output', onOutput);
      container.events.off('exit', onExit);
      if (stdinTarget) session.stdin?.unpipe(stdinTarget);
    };
    container.events.on('exit', onExit);
    session.on('close', () => {
      cleanup();
      resolve();
    });
  });
}
