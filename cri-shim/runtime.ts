/**
 * The container runtime proper: pod sandboxes and containers as process environments with their
 * own filesystem directories, and the process lifecycle behind the CRI calls.
 *
 * Plays containerd's CRI plugin `sbserver`/`server` (container_create.go, container_start.go,
 * container_stop.go, sandbox_remove.go …) with isolation from `isolation.ts` in place of runc.
 * Differences, on purpose: a sandbox has no pause process or network namespace (its hostname is
 * applied to every container process); state lives in memory (a restarted shim starts empty).
 *
 * The main process's stdout and stderr go to its log file in the CRI log format
 * (`container-log.ts`). Where, as containerd decides it: `log_path` of CreateContainer joined to
 * the sandbox's `log_directory` (the kubelet sends `/var/log/pods/<ns>_<pod>_<uid>` and
 * `<container>/<attempt>.log`); with no `log_directory`, under `sandboxes/<id>/logs/`; with no
 * `log_path` at all (containerd then keeps no log), `containers/<id>/container.log`, so a lab
 * container always has one. ContainerStatus reports the full path. The file is opened at start
 * and appended to: a container started again keeps its earlier lines, as upstream.
 *
 * A container created with `tty` runs its main process under a pseudo-terminal
 * (terminal-process.ts), as runc's console: one output stream, logged as stdout; attach clients
 * share it and resize it. `stdin_once` is kept for attach (attach-session.ts).
 *
 * Layout under `--root`: `sandboxes/<id>/[logs/]`, `containers/<id>/{root,tmp,var,container.log}`.
 *
 * Nothing outlives the runtime: `shutdown()` (the cri-shim's SIGTERM/SIGINT) kills every
 * container's processes and waits for them, at most SHUTDOWN_WAIT_MS; it refuses new ones from
 * its start. Should the cri-shim die without one (SIGKILL, a crash), bwrap's `--die-with-parent`
 * takes each container process, and under `--isolation none` the death watch (death-watch.ts)
 * kills their process groups and sessions. Unlike containerd, on purpose: see death-watch.ts.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import type { TerminalSize } from '../shared/remotecommand/codec.js';
import type * as T from '../shared/cri/types.js';
import { ContainerLog } from './container-log.js';
import { DeathWatch } from './death-watch.js';
import { CriError } from './errors.js';
import type { ImageConfig, ImageStore } from './images.js';
import { processSpec, resolveExecutable, type ContainerView, type IsolationMode } from './isolation.js';
import {
  exitCodeOf,
  exited,
  killGroup,
  killSession,
  spawnGroup,
  spawnTerminal,
  type RuntimeProcess,
} from './process-group.js';
import { TerminalProcess } from './terminal-process.js';
import { type Logger } from '../shared/logging.js';

/** How long `shutdown()` waits for killed container processes to be gone. */
export const SHUTDOWN_WAIT_MS = 5000;

const nowNs = (): number => Date.now() * 1e6;
const newId = (): string => randomBytes(32).toString('hex');

export interface Sandbox {
  id: string;
  metadata: T.PodSandboxMetadata;
  hostname: string;
  labels: T.Labels;
  annotations: T.Labels;
  logDirectory: string;
  runtimeHandler: string;
  state: T.PodSandboxState;
  createdAt: number;
  dir: string;
  containers: Set<string>;
}

export interface Container {
  id: string;
  sandboxId: string;
  metadata: T.ContainerMetadata;
  imageRef: string;
  image: ImageConfig;
  labels: T.Labels;
  annotations: T.Labels;
  logPath: string;
  argv: string[];
  stdin: boolean;
  /** Close the main process's stdin when the first attached client detaches. */
  stdinOnce: boolean;
  tty: boolean;
  view: ContainerView;
  dir: string;
  state: T.ContainerState;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
  exitCode: number;
  reason: string;
  message: string;
  /** The main process: piped, or under a terminal when the container was created with `tty`. */
  main?: RuntimeProcess;
  /** Resolves once the main process has exited and its state is recorded. */
  mainDone?: Promise<void>;
  /** Exec processes still running in this container. */
  execs: Set<RuntimeProcess>;
  /** Whether an attached client has detached already (for `stdinOnce`). */
  stdinOnceSpent: boolean;
  /** Emits 'output' (stream: 'stdout' | 'stderr', chunk) from the main process, and 'exit'. */
  events: EventEmitter;
}

export interface RuntimeOptions {
  root: string;
  images: ImageStore;
  isolation: IsolationMode;
  log: Logger;
  /** Longest log line before it is split into partial (P) lines; default 16 KiB (containerd). */
  maxLogLineBytes?: number;
}

export class ContainerRuntime {
  readonly sandboxes = new Map<string, Sandbox>();
  readonly containers = new Map<string, Container>();
  /** Kills the container processes if the cri-shim dies (`none` only: bwrap has --die-with-parent). */
  private readonly deathWatch: DeathWatch | undefined;
  private shuttingDown = false;

  constructor(readonly opts: RuntimeOptions) {
    this.deathWatch = opts.isolation === 'none' ? new DeathWatch(opts.log) : undefined;
    fs.mkdirSync(path.join(opts.root, 'sandboxes'), { recursive: true });
    fs.mkdirSync(path.join(opts.root, 'containers'), { recursive: true });
  }

  // ---- sandboxes ----

  runPodSandbox(config: T.PodSandboxConfig | null, runtimeHandler = ''): Sandbox {
    const md = config?.metadata;
    if (!config || !md?.name) throw CriError.invalid('sandbox config must have metadata.name');
    const id = newId();
    const dir = path.join(this.opts.root, 'sandboxes', id);
    fs.mkdirSync(dir, { recursive: true });
    const sb: Sandbox = {
      id,
      metadata: { name: md.name, uid: md.uid ?? '', namespace: md.namespace ?? '', attempt: md.attempt ?? 0 },
      hostname: config.hostname || md.name,
      labels: { ...(config.labels ?? {}) },
      annotations: { ...(config.annotations ?? {}) },
      logDirectory: config.log_directory ?? '',
      runtimeHandler,
      state: 'SANDBOX_READY',
      createdAt: nowNs(),
      dir,
      containers: new Set(),
    };
    fs.writeFileSync(
      path.join(dir, 'sandbox.json'),
      JSON.stringify({ id, metadata: sb.metadata, hostname: sb.hostname }),
    );
    this.sandboxes.set(id, sb);
    this.opts.log(`sandbox ${short(id)} ${sb.metadata.namespace}/${sb.metadata.name} ready`);
    return sb;
  }

  sandbox(id: string): Sandbox {
    const sb = this.sandboxes.get(id);
    if (!sb)
      throw CriError.notFound(
        `an error occurred when try to find sandbox: not found: sandbox ${JSON.stringify(id)}`,
      );
    return sb;
  }

  /** Stops every container of the sandbox (idempotent); the sandbox becomes NOTREADY. */
  async stopPodSandbox(id: string): Promise<void> {
    const sb = this.sandbox(id);
    await Promise.all([...sb.containers].map((cid) => this.stopContainer(cid, 0)));
    sb.state = 'SANDBOX_NOTREADY';
  }

  /** Kills and removes everything of the sandbox; removing an unknown sandbox is not an error (CRI). */
  async removePodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    await Promise.all([...sb.containers].map((cid) => this.removeContainer(cid)));
    sb.state = 'SANDBOX_NOTREADY';
    this.sandboxes.delete(id);
    fs.rmSync(sb.dir, { recursive: true, force: true });
    this.opts.log(`sandbox ${short(id)} removed`);
  }

  // ---- containers ----

  createContainer(sandboxId: string, config: T.ContainerConfig | null): Container {
    const sb = this.sandbox(sandboxId);
    if (sb.state !== 'SANDBOX_READY') throw CriError.precondition(`sandbox ${short(sandboxId)} is not ready`);
    if (!config?.metadata?.name) throw CriError.invalid('container config must have metadata.name');
    const imageRef = config.image?.user_specified_image || config.image?.image || '';
    if (!imageRef) throw CriError.invalid('container config must name an image');
    const image = this.opts.images.resolve(imageRef);
    const id = newId();
    const dir = path.join(this.opts.root, 'containers', id);
    const dirs = { root: path.join(dir, 'root'), tmp: path.join(dir, 'tmp'), var: path.join(dir, 'var') };
    const command = config.command ?? [];
    const args = config.args ?? [];
    const argv = command.length ? [...command, ...args] : args.length ? args : image.command;
    const env = { ...image.env };
    for (const kv of config.envs ?? []) if (kv.key) env[kv.key] = kv.value ?? '';
    try {
      this.opts.images.seed(image, dirs);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw CriError.internal(`failed to create container filesystem: ${(err as Error).message}`);
    }
    const c: Container = {
      id,
      sandboxId,
      metadata: { name: config.metadata.name, attempt: config.metadata.attempt ?? 0 },
      imageRef,
      image,
      labels: { ...(config.labels ?? {}) },
      annotations: { ...(config.annotations ?? {}) },
      logPath: containerLogPath(sb, dir, config.log_path),
      argv,
      stdin: !!config.stdin,
      stdinOnce: !!config.stdin_once,
      tty: !!config.tty,
      view: { hostname: sb.hostname, dirs, env, workingDir: config.working_dir || image.workingDir },
      dir,
      state: 'CONTAINER_CREATED',
      createdAt: nowNs(),
      startedAt: 0,
      finishedAt: 0,
      exitCode: 0,
      reason: '',
      message: '',
      execs: new Set(),
      stdinOnceSpent: false,
      // One 'output' and one 'exit' listener per attached client: no fixed limit.
      events: new EventEmitter().setMaxListeners(0),
    };
    this.containers.set(id, c);
    sb.containers.add(id);
    this.opts.log(
      `container ${short(id)} ${c.metadata.name} created in sandbox ${short(sandboxId)} (image ${image.name})`,
    );
    return c;
  }

  container(id: string): Container {
    const c = this.containers.get(id);
    if (!c)
      throw CriError.notFound(
        `an error occurred when try to find container ${JSON.stringify(id)}: not found`,
      );
    return c;
  }

  startContainer(id: string): void {
    const c = this.container(id);
    if (c.state !== 'CONTAINER_CREATED') {
      throw CriError.precondition(`container ${short(id)} is in ${c.state} state, not CONTAINER_CREATED`);
    }
    this.refuseWhileShuttingDown();
    const fail = (message: string): never => {
      Object.assign(c, { state: 'CONTAINER_EXITED', exitCode: 128, reason: 'StartError', message });
      c.finishedAt = nowNs();
      throw CriError.internal(`failed to start container ${short(id)}: ${message}`);
    };
    if (!resolveExecutable(this.opts.isolation, c.view, c.argv[0]!)) {
      fail(`exec: ${JSON.stringify(c.argv[0])}: executable file not found in $PATH`);
    }
    let log: ContainerLog;
    try {
      log = new ContainerLog(c.logPath, { maxLineBytes: this.opts.maxLogLineBytes });
    } catch (err) {
      return fail(`failed to create container log ${JSON.stringify(c.logPath)}: ${(err as Error).message}`);
    }
    let child: RuntimeProcess;
    try {
      // With `tty` the main process gets a terminal, as runc's console: its stderr is its stdout.
      child = c.tty
        ? spawnTerminal(processSpec(this.opts.isolation, c.view, c.argv, { tty: true }))
        : spawnGroup(processSpec(this.opts.isolation, c.view, c.argv), [
            c.stdin ? 'pipe' : 'ignore',
            'pipe',
            'pipe',
          ]);
    } catch (err) {
      log.close();
      return fail(`failed to start the container process: ${(err as Error).message}`);
    }
    c.main = child;
    this.deathWatch?.track(child.pid);
    c.stdinOnceSpent = false;
    c.mainDone = new Promise((resolve) => c.events.once('exit', () => resolve()));
    c.state = 'CONTAINER_RUNNING';
    c.startedAt = nowNs();
    for (const name of ['stdout', 'stderr'] as const) {
      const lines = log.stream(name);
      child[name]?.on('data', (chunk: Buffer) => {
        lines.write(chunk);
        c.events.emit('output', name, chunk);
      });
      child[name]?.on('end', () => lines.end());
    }
    child.stdin?.on('error', () => {});
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, err?: Error): void => {
      if (done) return;
      done = true;
      log.close();
      c.exitCode = err ? 128 : exitCodeOf(code, signal);
      c.reason = err ? 'StartError' : c.exitCode === 0 ? 'Completed' : 'Error';
      c.message = err?.message ?? '';
      c.state = 'CONTAINER_EXITED';
      c.finishedAt = nowNs();
      c.main = undefined;
      this.opts.log(`container ${short(id)} exited with ${c.exitCode}${err ? `: ${err.message}` : ''}`);
      c.events.emit('exit', c.exitCode);
    };
    // The container is its process tree: when the main process ends, whatever it left behind in
    // its group goes too (bwrap's PID namespace does this by itself; `none` needs the kill).
    onProcessEvents(child, {
      exit: () => this.killTree(child),
      close: (code, signal) => finish(code, signal),
      error: (err) => {
        if (child.pid === undefined) finish(null, null, err);
      },
    });
    this.opts.log(`container ${short(id)} started: pid ${child.pid} ${JSON.stringify(c.argv)}`);
  }

  /**
   * SIGTERM, then SIGKILL after `timeoutSec` (at once for 0), to the main process group and every
   * exec of the container. Idempotent; resolves when they are gone.
   */
  async stopContainer(id: string, timeoutSec: number): Promise<void> {
    const c = this.container(id);
    const procs = [...(c.main ? [c.main] : []), ...c.execs];
    if (procs.length === 0) {
      if (c.state === 'CONTAINER_CREATED') {
        Object.assign(c, { state: 'CONTAINER_EXITED', finishedAt: nowNs(), exitCode: 0, reason: 'Stopped' });
      }
      return;
    }
    const gone = Promise.all([...(c.mainDone ? [c.mainDone] : []), ...[...c.execs].map((p) => exited(p))]);
    if (timeoutSec > 0) {
      for (const p of procs) killGroup(p.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutSec * 1000)));
      const late = await Promise.race([gone.then(() => false), timedOut]);
      clearTimeout(timer);
      if (!late) return;
    }
    for (const p of procs) killGroup(p.pid, 'SIGKILL');
    await gone;
  }

  /** Kills what still runs and deletes the container and its directories (idempotent). */
  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return;
    await this.stopContainer(id, 0);
    this.containers.delete(id);
    this.sandboxes.get(c.sandboxId)?.containers.delete(id);
    fs.rmSync(c.dir, { recursive: true, force: true });
    this.opts.log(`container ${short(id)} removed`);
  }

  /** The running container for an exec or attach; FAILED_PRECONDITION when it is not running. */
  runningContainer(id: string): Container {
    const c = this.container(id);
    if (c.state !== 'CONTAINER_RUNNING') {
      const state = c.state.replace('CONTAINER_', '').toLowerCase();
      throw CriError.precondition(
        `container ${short(id)} (${c.metadata.name}) is not running (state: ${state})`,
      );
    }
    return c;
  }

  /**
   * Starts `argv` inside a running container as an exec process: same filesystem, hostname and
   * environment as the main process. The process is killed with the container.
   * Throws a CriError when the executable does not exist in the container.
   */
  spawnExec(id: string, argv: readonly string[], stdio: StdioOptions): ChildProcess {
    this.refuseWhileShuttingDown();
    const c = this.runningContainer(id);
    if (argv.length === 0) throw CriError.invalid('exec command must not be empty');
    if (!resolveExecutable(this.opts.isolation, c.view, argv[0]!)) {
      throw CriError.internal(`exec: ${JSON.stringify(argv[0])}: executable file not found in $PATH`);
    }
    const child = spawnGroup(processSpec(this.opts.isolation, c.view, argv), stdio);
    this.trackExec(c, child);
    return child;
  }

  /**
   * Like spawnExec, under a pseudo-terminal of the given initial size (an exec with `tty`).
   * Throws a CriError when the executable does not exist or the terminal cannot be set up.
   */
  spawnExecTerminal(id: string, argv: readonly string[], size?: TerminalSize): TerminalProcess {
    this.refuseWhileShuttingDown();
    const c = this.runningContainer(id);
    if (argv.length === 0) throw CriError.invalid('exec command must not be empty');
    if (!resolveExecutable(this.opts.isolation, c.view, argv[0]!)) {
      throw CriError.internal(`exec: ${JSON.stringify(argv[0])}: executable file not found in $PATH`);
    }
    let child: TerminalProcess;
    try {
      child = spawnTerminal(processSpec(this.opts.isolation, c.view, argv, { tty: true }), size);
    } catch (err) {
      throw CriError.internal(`failed to exec in container: ${(err as Error).message}`);
    }
    this.trackExec(c, child);
    return child;
  }

  private trackExec(c: Container, child: RuntimeProcess): void {
    c.execs.add(child);
    this.deathWatch?.track(child.pid);
    // An exec is its process tree too: background children die with it, so no output pipe is held
    // open after the command ends (which would keep the session from finishing).
    onProcessEvents(child, {
      exit: () => this.killTree(child),
      close: () => c.execs.delete(child),
      error: () => c.execs.delete(child),
    });
  }

  /**
   * Kills every process of every container and waits for them, at most SHUTDOWN_WAIT_MS (shim
   * shutdown); from its start, no container or exec process is started any more. The death watch
   * then ends, killing whatever is still listed. Idempotent.
   */
  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    const stopped = Promise.all(
      [...this.containers.keys()].map((id) => this.stopContainer(id, 0).catch(() => {})),
    );
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([
      stopped.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), SHUTDOWN_WAIT_MS))),
    ]);
    clearTimeout(timer);
    if (late) this.opts.log(`shutdown: container processes still not gone after ${SHUTDOWN_WAIT_MS} ms`);
    await this.deathWatch?.close();
  }

  private refuseWhileShuttingDown(): void {
    if (this.shuttingDown) throw CriError.unavailable('the container runtime is shutting down');
  }

  /** killTree, and the death watch forgets the session: its processes are dead now. */
  private killTree(p: RuntimeProcess): void {
    killTree(p);
    this.deathWatch?.untrack(p.pid);
  }
}

/** Kills what a process left behind: its group, and for a terminal its whole session (shell jobs). */
export function killTree(p: RuntimeProcess): void {
  killGroup(p.pid);
  if (p instanceof TerminalProcess) killSession(p.pid);
}

/** Subscribes to exit/close/error of either kind of process (their emitter types differ). */
function onProcessEvents(
  p: RuntimeProcess,
  on: {
    exit: () => void;
    close: (code: number | null, signal: NodeJS.Signals | null) => void;
    error: (err: Error) => void;
  },
): void {
  const e = p as EventEmitter;
  e.once('exit', on.exit);
  e.once('close', on.close);
  e.once('error', on.error);
}

/** Where a container's CRI log goes (see the module comment). */
function containerLogPath(sb: Sandbox, containerDir: string, logPath: string | undefined): string {
  if (!logPath) return path.join(containerDir, 'container.log');
  return path.join(sb.logDirectory || path.join(sb.dir, 'logs'), logPath);
}

export function short(id: string): string {
  return id.slice(0, 12);
}
