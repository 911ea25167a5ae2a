/**
 * Serves one attach: the client sees the container's main process output from now on and, when
 * the container was created with `stdin`, feeds its stdin; with a terminal, its resizes reach it.
 *
 * Mirrors kubelet `pkg/cri/streaming/remotecommand/attach.go` (ServeAttach) and containerd's
 * `ContainerIO.Attach` (one broadcast of the main process's output to every attached client):
 * - fan-out never blocks the container: the main process's output is always read (for its log),
 *   and each client gets its own bounded queue (the session's writable buffer). A client more
 *   than ATTACH_OUTPUT_LIMIT bytes behind is DISCONNECTED, not fed with holes: it gets no more
 *   output, an InternalError Status once what it has queued is flushed, and the connection is
 *   closed outright after SLOW_CLIENT_GRACE_MS if it does not read even that. Memory per client
 *   is thus bounded, and what a client saw is always a faithful prefix. (containerd's attach
 *   writers block the copy instead; dropping bytes silently would corrupt a terminal.)
 * - several clients may write stdin at once; their bytes interleave as they come.
 * - `stdinOnce`: the first attached client whose stdin ends — FIN / v5 CLOSE, or its connection
 *   goes — closes the main process's stdin for good (until the container restarts), as the Pod
 *   API documents `stdinOnce`; later clients' stdin is read and discarded. With a terminal,
 *   "closing" types ^D (a terminal has no half-close); containerd skips tty there, we do not.
 * The session ends with the container's exit Status when the main process exits.
 */
import { exitStatus, internalErrorStatus } from '../shared/remotecommand/exit-status.js';
import type { RemoteCommandSession } from '../shared/remotecommand/session.js';
import type { Status } from '../shared/status.js';
import { CriError } from './errors.js';
import type { AttachRequestEntry } from './request-cache.js';
import { short, type ContainerRuntime } from './runtime.js';
import { TerminalProcess } from './terminal-process.js';
import { type Logger } from '../shared/logging.js';

/** How far (bytes queued) one attached client may fall behind before it is disconnected. */
export const ATTACH_OUTPUT_LIMIT = 1024 * 1024;
/** How long a disconnected slow client gets to take its queue and Status before the connection goes. */
export const SLOW_CLIENT_GRACE_MS = 5000;

export function serveAttach(
  runtime: ContainerRuntime,
  req: AttachRequestEntry,
  session: RemoteCommandSession,
  log: Logger,
  limits: { outputLimit?: number; graceMs?: number } = {},
): Promise<void> {
  let c;
  try {
    c = runtime.runningContainer(req.containerId);
  } catch (err) {
    return session.finish(internalErrorStatus(err instanceof CriError ? err.message : String(err)));
  }
  const container = c;
  const main = container.main;
  const outputLimit = limits.outputLimit ?? ATTACH_OUTPUT_LIMIT;
  session.stdout?.on('error', () => {});
  session.stderr?.on('error', () => {});

  return new Promise<void>((resolve) => {
    let done = false;
    let graceTimer: NodeJS.Timeout | undefined;
    const end = (status: Status): void => {
      if (done) return;
      done = true;
      cleanup();
      void session.finish(status).then(resolve, resolve);
    };

    const onOutput = (stream: 'stdout' | 'stderr', chunk: Buffer): void => {
      const sink =
        stream === 'stderr' ? (session.stderr ?? (req.tty ? session.stdout : null)) : session.stdout;
      if (!sink || sink.destroyed || sink.writableEnded) return;
      if (sink.writableLength + chunk.length > outputLimit) {
        const message = `attach: client fell more than ${outputLimit} bytes behind the container's output; disconnected`;
        log(`attach to ${short(container.id)}: ${message}`);
        graceTimer = setTimeout(() => void session.close(), limits.graceMs ?? SLOW_CLIENT_GRACE_MS);
        graceTimer.unref();
        end(internalErrorStatus(message));
        return;
      }
      sink.write(chunk);
    };
    const onExit = (code: number): void => end(exitStatus(code));

    // stdin: only when the container has one and stdinOnce has not closed it already.
    const target = container.stdin && !container.stdinOnceSpent ? main?.stdin : undefined;
    let stdinAttached = false;
    const detachStdin = (): void => {
      if (!stdinAttached) return;
      stdinAttached = false;
      if (target) session.stdin?.unpipe(target);
      if (container.stdinOnce && !container.stdinOnceSpent && container.main === main) {
        container.stdinOnceSpent = true;
        log(`attach to ${short(container.id)}: stdinOnce: first attached client detached, closing stdin`);
        target?.end();
      }
    };
    if (session.stdin) {
      if (target) {
        stdinAttached = true;
        session.stdin.pipe(target, { end: false });
        session.stdin.once('end', detachStdin);
      } else {
        session.stdin.resume(); // nowhere to go: read and discarded
      }
    }
    if (req.tty && main instanceof TerminalProcess) session.on('resize', (size) => main.resize(size));

    const cleanup = (): void => {
      container.events.off('output', onOutput);
      container.events.off('exit', onExit);
      detachStdin();
    };
    container.events.on('output', onOutput);
    container.events.once('exit', onExit);
    session.once('close', () => {
      clearTimeout(graceTimer);
      if (!done) {
        done = true;
        cleanup();
      }
      resolve();
    });
  });
}
