/**
 * The container runtime proper: pod sandboxes and containers as process environments with their
 * own filesystem directories, and the process lifecycle behind the CRI calls.
 *
 * Plays containerd's CRI plugin `sbserver`/`server` (container_create.go, container_start.go,
 * container_stop.go, sandbox_remove.go …) with isolation from `isolation.ts` in place of runc.
 * Under bubblewrap a sandbox is a pod init holding the pod's network, IPC and UTS namespaces
 * (pod-sandbox.ts) in a pod cgroup with a pids limit; each container runs in the pod's
 * namespaces, in pid and mount namespaces of its own, in a cgroup of its own with its memory
 * limit (cgroups.ts), with the privileges of its security context (security-context.ts).
 * A main process the OOM killer ended is reported `OOMKilled` (exit 137), as containerd does.
 * Differences, on purpose: state lives in memory (a restarted shim starts empty).
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
import {
  nsexecPath,
  processSpec,
  resolveExecutable,
  type ContainerView,
  type IsolationMode,
  type SandboxContext,
} from './isolation.js';
import { POD_INIT_PRIVILEGES, startPodInit, waitForInitPid } from './pod-sandbox.js';
import { privilegesOf, SeccompPrograms, type Privileges } from './security-context.js';
import {
  exitCodeOf,
  exited,
  killGroup,
  killPid,
  pidGone,
  killSession,
  spawnGroup,
  spawnTerminal,
  type RuntimeProcess,
} from './process-group.js';
import { TerminalProcess } from './terminal-process.js';
import { type Logger } from '../shared/logging.js';
import type { CgroupManager } from './cgroups.js';

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
  /** The pod keeps the host's network (hostNetwork: NamespaceMode NODE). */
  hostNetwork: boolean;
  /** bwrap: the pod init (pod-sandbox.ts) and its pid inside its namespaces' view from the host. */
  init?: ChildProcess;
  initPid: number;
  /** The pod's cgroup, relative to the runtime's (cgroups.ts); '' without cgroups. */
  cgroup: string;
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
  /** Its user, capabilities, seccomp profile (from the CRI security context). */
  privileges: Privileges;
  /** memory limit in bytes; 0 = none. */
  memoryLimit: number;
  /** bwrap: the container's init (its main process, PID 1 inside), which every exec joins. */
  initPid: number;
  /** The container's cgroup directories, joined by its main process and every exec. */
  cgroupDirs: string[];
}

export interface RuntimeOptions {
  root: string;
  images: ImageStore;
  isolation: IsolationMode;
  log: Logger;
  /** Longest log line before it is split into partial (P) lines; default 16 KiB (containerd). */
  maxLogLineBytes?: number;
  /** Pod and container cgroups (bwrap only); without them pods run without limits. */
  cgroups?: CgroupManager;
  /** pids.max of every pod's cgroup (the kubelet's --pod-max-pids); 0 = unlimited. */
  podPidsLimit?: number;
}

/** The default pids limit of a pod. */
export const DEFAULT_POD_PIDS_LIMIT = 1024;

export class ContainerRuntime {
  readonly sandboxes = new Map<string, Sandbox>();
  readonly containers = new Map<string, Container>();
  /** Kills the container processes if the cri-shim dies (`none` only: bwrap has --die-with-parent). */
  private readonly deathWatch: DeathWatch | undefined;
  private shuttingDown = false;
  /** bwrap: the compiled seccomp filters, one per capability set. */
  private readonly seccomp: SeccompPrograms;

  constructor(readonly opts: RuntimeOptions) {
    this.seccomp = new SeccompPrograms(nsexecPath(), path.join(opts.root, 'seccomp'));
    this.deathWatch = opts.isolation === 'none' ? new DeathWatch(opts.log) : undefined;
    fs.mkdirSync(path.join(opts.root, 'sandboxes'), { recursive: true });
    fs.mkdirSync(path.join(opts.root, 'containers'), { recursive: true });
  }

  // ---- sandboxes ----

  async runPodSandbox(config: T.PodSandboxConfig | null, runtimeHandler = ''): Promise<Sandbox> {
    const md = config?.metadata;
    if (!config || !md?.name) throw CriError.invalid('sandbox config must have metadata.name');
    this.refuseWhileShuttingDown();
    const ns = config.linux?.security_context?.namespace_options;
    // Each container has a pid namespace of its own and the pod one IPC namespace: hostPID,
    // hostIPC and shareProcessNamespace are not supported here (a containerd node gives them).
    if (ns && (ns.pid === 'NODE' || ns.pid === 'POD' || ns.ipc === 'NODE'))
      throw CriError.invalid(
        'host pid or ipc namespaces and a shared pid namespace are not supported by this runtime',
      );
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
      hostNetwork: ns?.network === 'NODE',
      initPid: 0,
      cgroup: '',
    };
    fs.writeFileSync(
      path.join(dir, 'sandbox.json'),
      JSON.stringify({ id, metadata: sb.metadata, hostname: sb.hostname }),
    );
    if (this.opts.isolation === 'bwrap') {
      try {
        await this.startPodInit(sb);
      } catch (err) {
        await this.cleanUpSandbox(sb);
        throw CriError.internal(`failed to start sandbox ${short(id)}: ${(err as Error).message}`);
      }
    }
    this.sandboxes.set(id, sb);
    this.opts.log(
      `sandbox ${short(id)} ${sb.metadata.namespace}/${sb.metadata.name} ready` +
        (sb.initPid ? ` (pod init pid ${sb.initPid}${sb.hostNetwork ? ', host network' : ''})` : ''),
    );
    return sb;
  }

  /** The pod init and its cgroup; when the init dies, the sandbox is NOTREADY (the kubelet remakes it). */
  private async startPodInit(sb: Sandbox): Promise<void> {
    const cg = this.opts.cgroups;
    let cgroupDirs: string[] = [];
    if (cg) {
      sb.cgroup = `pod-${short(sb.id)}`;
      const pids = this.opts.podPidsLimit ?? DEFAULT_POD_PIDS_LIMIT;
      cgroupDirs = cg.create(sb.cgroup, { pids: pids > 0 ? pids : undefined }).dirs;
    }
    const pidFile = path.join(sb.dir, 'init.pid');
    const init = startPodInit({
      helper: nsexecPath(),
      hostname: sb.hostname,
      hostNetwork: sb.hostNetwork,
      cgroupDirs,
      pidFile,
      seccompFile: this.seccomp.fileFor(POD_INIT_PRIVILEGES)!,
    });
    sb.init = init;
    init.once('exit', () => {
      if (sb.state === 'SANDBOX_READY' && this.sandboxes.has(sb.id)) {
        this.opts.log(`sandbox ${short(sb.id)}: pod init exited; the sandbox is not ready`);
      }
      sb.state = 'SANDBOX_NOTREADY';
    });
    init.once('error', () => {});
    sb.initPid = await waitForInitPid(init, pidFile, 'the pod init');
  }

  /** Kills the pod init and removes the pod's cgroup (with anything still in it). */
  private async cleanUpSandbox(sb: Sandbox): Promise<void> {
    if (sb.init && sb.init.exitCode === null && sb.init.signalCode === null) {
      const gone = exited(sb.init);
      killGroup(sb.init.pid);
      await gone;
    }
    if (sb.cgroup)
      await this.opts.cgroups?.remove(sb.cgroup).catch((err: unknown) => {
        this.opts.log(`sandbox ${short(sb.id)}: removing its cgroup: ${(err as Error).message}`);
      });
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
    if (sb.init && sb.init.exitCode === null && sb.init.signalCode === null) {
      const gone = exited(sb.init);
      killGroup(sb.init.pid);
      await gone;
    }
  }

  /** Kills and removes everything of the sandbox; removing an unknown sandbox is not an error (CRI). */
  async removePodSandbox(id: string): Promise<void> {
    const sb = this.sandboxes.get(id);
    if (!sb) return;
    await Promise.all([...sb.containers].map((cid) => this.removeContainer(cid)));
    sb.state = 'SANDBOX_NOTREADY';
    this.sandboxes.delete(id);
    await this.cleanUpSandbox(sb);
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
    const privileges = privilegesOf(config.linux?.security_context);
    const memoryLimit = Math.max(0, Number(config.linux?.resources?.memory_limit_in_bytes ?? 0));
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
      privileges,
      memoryLimit,
      initPid: 0,
      cgroupDirs: [],
    };
    // A non-root user must be able to write its /tmp, as in any image.
    fs.chmodSync(dirs.tmp, 0o1777);
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

  async startContainer(id: string): Promise<void> {
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
    let sandbox: SandboxContext | undefined;
    try {
      sandbox = this.mainContext(c);
      const spec = processSpec(this.opts.isolation, c.view, c.argv, { tty: c.tty, sandbox });
      // With `tty` the main process gets a terminal, as runc's console: its stderr is its stdout.
      child = c.tty ? spawnTerminal(spec) : spawnGroup(spec, [c.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe']);
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
      // containerd marks a container whose cgroup saw an OOM kill (its TaskOOM event) OOMKilled.
      const sb = this.sandboxes.get(c.sandboxId);
      if (
        !err &&
        c.exitCode !== 0 &&
        sb?.cgroup &&
        this.opts.cgroups?.oomKills(`${sb.cgroup}/${short(c.id)}`)
      ) {
        c.reason = 'OOMKilled';
      }
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
    if (sandbox?.pidFile) {
      try {
        c.initPid = await waitForInitPid(child, sandbox.pidFile, 'the container');
      } catch (err) {
        killTree(child);
        throw CriError.internal(`failed to start container ${short(id)}: ${(err as Error).message}`);
      }
    }
    this.opts.log(
      `container ${short(id)} started: pid ${child.pid}${c.initPid ? ` (init ${c.initPid})` : ''} ${JSON.stringify(c.argv)}`,
    );
  }

  /** bwrap: the main process's sandbox context: the pod's namespaces, a cgroup of its own. */
  private mainContext(c: Container): SandboxContext | undefined {
    if (this.opts.isolation !== 'bwrap') return undefined;
    const sb = this.sandbox(c.sandboxId);
    if (!sb.initPid || sb.state !== 'SANDBOX_READY')
      throw new Error(`sandbox ${short(sb.id)} is not running`);
    if (sb.cgroup && this.opts.cgroups) {
      const rel = `${sb.cgroup}/${short(c.id)}`;
      c.cgroupDirs = this.opts.cgroups.create(rel, { memoryBytes: c.memoryLimit || undefined }).dirs;
    }
    const pidFile = path.join(c.dir, 'init.pid');
    fs.rmSync(pidFile, { force: true });
    return {
      helper: nsexecPath(),
      privileges: c.privileges,
      cgroupDirs: c.cgroupDirs,
      target: sb.initPid,
      pidFile,
      seccompFile: this.seccomp.fileFor(c.privileges),
    };
  }

  /** bwrap: an exec's sandbox context: everything of the container's init, as `runc exec`. */
  private execContext(c: Container): SandboxContext | undefined {
    if (this.opts.isolation !== 'bwrap') return undefined;
    if (!c.initPid) throw CriError.precondition(`container ${short(c.id)} has not started yet`);
    return {
      helper: nsexecPath(),
      privileges: c.privileges,
      cgroupDirs: c.cgroupDirs,
      target: c.initPid,
      seccompFile: this.seccomp.fileFor(c.privileges),
    };
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
      // Under bwrap the container's init gets the SIGTERM, as runc's kill: a PID 1 that handles it
      // shuts down gracefully; one that does not (it ignores signals it has no handler for) is
      // killed after the timeout. Execs get theirs directly.
      if (c.initPid && c.main) killPid(c.initPid, 'SIGTERM');
      for (const p of procs) if (p !== c.main || !c.initPid) killGroup(p.pid, 'SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((r) => (timer = setTimeout(() => r(true), timeoutSec * 1000)));
      const late = await Promise.race([gone.then(() => false), timedOut]);
      clearTimeout(timer);
      if (!late) return;
    }
    for (const p of procs) killGroup(p.pid, 'SIGKILL');
    await gone;
    // SIGKILLed, the helper and bubblewrap go at once; the container's init (same process group)
    // may still be tearing its pid namespace down.
    if (c.initPid) await pidGone(c.initPid, SHUTDOWN_WAIT_MS);
  }

  /** Kills what still runs and deletes the container and its directories (idempotent). */
  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return;
    await this.stopContainer(id, 0);
    this.containers.delete(id);
    const sb = this.sandboxes.get(c.sandboxId);
    sb?.containers.delete(id);
    if (sb?.cgroup && c.cgroupDirs.length) {
      await this.opts.cgroups?.remove(`${sb.cgroup}/${short(c.id)}`).catch((err: unknown) => {
        this.opts.log(`container ${short(id)}: removing its cgroup: ${(err as Error).message}`);
      });
    }
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
    const sandbox = this.execContext(c);
    const child = spawnGroup(processSpec(this.opts.isolation, c.view, argv, { sandbox }), stdio);
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
      const sandbox = this.execContext(c);
      child = spawnTerminal(processSpec(this.opts.isolation, c.view, argv, { tty: true, sandbox }), size);
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
    await Promise.all([...this.sandboxes.values()].map((sb) => this.cleanUpSandbox(sb)));
    await this.opts.cgroups?.close().catch(() => {});
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
