/**
 * `kexec exec`: kubectl `pkg/cmd/exec/exec.go` Run, over the WebSocket remotecommand protocol.
 *
 * 1. GET the pod (refuses completed pods, defaults the container like kubectl's
 *    podcmd.FindOrDefaultContainerByName);
 * 2. open `/api/v1/namespaces/NS/pods/POD/exec?command=…&container=…&stdin=…&stdout=true&stderr=…&tty=…`
 *    with the channel client (stdin only with -i; with a TTY: raw mode, the terminal size first and on
 *    every SIGWINCH, no stderr channel — kubectl's StreamOptions.SetupTTY);
 * 3. exit with the remote command's exit code.
 */
import type { Readable, Writable } from 'node:stream';
import type { Status } from '../shared/status.js';
import { apiJson, apiUrl, loadClientConfig, type ClientConfig } from './client.js';
import { ApiStatusError, ExitCodeError } from './errors.js';
import type { ExecOptions } from './options.js';

/** The parts of a V1Pod kexec reads. */
export interface PodLike {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: {
    containers?: { name: string }[];
    initContainers?: { name: string }[];
    ephemeralContainers?: { name: string }[];
    nodeName?: string;
  };
  status?: { phase?: string };
}

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

/** The container exec goes to when `-c` is not given, and the notice kubectl prints about it (if any). */
export function defaultContainer(pod: PodLike): { name: string; notice?: string } {
  const containers = pod.spec?.containers ?? [];
  const annotated = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && containers.some((c) => c.name === annotated)) return { name: annotated };
  if (containers.length === 0)
    throw new Error(`pod ${pod.metadata?.name ?? ''} does not have any containers`);
  const name = containers[0].name;
  if (containers.length === 1) return { name };
  const all = [
    ...containers.map((c) => c.name),
    ...(pod.spec?.initContainers ?? []).map((c) => `${c.name} (init)`),
    ...(pod.spec?.ephemeralContainers ?? []).map((c) => `${c.name} (ephem)`),
  ];
  return { name, notice: `Defaulted container "${name}" out of: ${all.join(', ')}` };
}

/** The exec subresource URL, with the query kubectl sends (false flags omitted, as omitempty does). */
export function execUrl(
  cfg: Pick<ClientConfig, 'server'>,
  namespace: string,
  pod: string,
  p: { container: string; command: string[]; stdin: boolean; tty: boolean },
): URL {
  const q = new URLSearchParams();
  for (const c of p.command) q.append('command', c);
  q.set('container', p.container);
  if (p.stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  if (!p.tty) q.set('stderr', 'true');
  if (p.tty) q.set('tty', 'true');
  return apiUrl(
    cfg,
    `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}/exec`,
    q,
  );
}

/** A terminal input stream as Node gives it (process.stdin when it is a TTY). */
type TtyIn = Readable & { isTTY?: boolean; setRawMode?: (mode: boolean) => unknown; isRaw?: boolean };
/** A terminal output stream (process.stdout when it is a TTY). */
type TtyOut = Writable & { isTTY?: boolean; columns?: number; rows?: number };

export interface ChannelClientLike {
  (opts: {
    url: string;
    headers?: Record<string, string>;
    tls?: import('node:tls').ConnectionOptions;
    stdin?: Readable | null;
    stdout?: Writable | null;
    stderr?: Writable | null;
    tty?: boolean;
    resize?: (send: (size: { width: number; height: number }) => void) => () => void;
  }): Promise<{ status: Status; exitCode: number }>;
}

export interface ExecIO {
  stdin: TtyIn;
  stdout: TtyOut;
  stderr: Writable;
  /** The WebSocket remotecommand client (shared/remotecommand/websocket-client.ts). */
  runChannelClient: ChannelClientLike;
}

/** Runs exec; resolves to the exit code, throws what kexec should report (see errors.ts). */
export async function runExec(o: ExecOptions, io: ExecIO): Promise<number> {
  const cfg = await loadClientConfig(o);
  const ns = cfg.namespace;
  const pod = await apiJson<PodLike>(
    cfg,
    'GET',
    `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(o.pod)}`,
    { resource: 'pods', name: o.pod },
  );
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    throw new Error(`cannot exec into a container in a completed pod; current phase is ${phase}`);
  }
  let container = o.container;
  if (!container) {
    const d = defaultContainer(pod);
    container = d.name;
    if (d.notice && !o.quiet) io.stderr.write(`${d.notice}\n`);
  }

  // kubectl's SetupTTY: a TTY only with stdin, and only when stdin really is a terminal.
  let tty = false;
  if (o.stdin && o.tty) {
    if (io.stdin.isTTY && typeof io.stdin.setRawMode === 'function') tty = true;
    else if (!o.quiet)
      io.stderr.write('Unable to use a TTY - input is not a terminal or the right kind of file\n');
  }

  const url = execUrl(cfg, ns, o.pod, { container, command: o.command, stdin: o.stdin, tty });
  const resize = tty && io.stdout.isTTY ? terminalResize(io.stdout) : undefined;
  const wasRaw = io.stdin.isRaw ?? false;
  if (tty) io.stdin.setRawMode?.(true);
  let result: { status: Status; exitCode: number };
  try {
    result = await io.runChannelClient({
      url: url.href,
      headers: cfg.headers,
      tls: cfg.tls,
      stdin: o.stdin ? io.stdin : null,
      stdout: io.stdout,
      stderr: tty ? null : io.stderr,
      tty,
      resize,
    });
  } finally {
    if (tty) io.stdin.setRawMode?.(wasRaw);
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
