/**
 * Runs one lab service as a child process: `node dist/<service>/main.js …` (or another program,
 * such as etcd), its own process group, stdout scanned for the `READY {json}` line
 * (docs/wiring.md) unless the service brings its own readiness probe, every line of stdout and
 * stderr passed to `log` with a `[service]` prefix. `stop()` sends SIGTERM, waits (bounded), then
 * SIGKILLs the whole process group, and always waits for the exit.
 *
 * The service dies with the lab, however the lab dies (SIGKILL included), as a unit dies with its
 * systemd: a Node.js service gets an IPC pipe as fd 3 and exits when it closes
 * (shared/parent-death-watch.ts); another program runs under `setpriv --pdeathsig SIGKILL`
 * (util-linux), the kernel's PR_SET_PDEATHSIG. Restarts are restart-policy.ts's.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { redactCredentials, type Logger } from '../shared/logging.js';
import { parseReadyLine, READY_PREFIX, type ReadyInfo } from '../shared/ready-line.js';

export type { ReadyInfo } from '../shared/ready-line.js';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ServiceOptions {
  /** The name used in log prefixes and messages, e.g. `apiserver`. */
  name: string;
  /** The script run by this Node.js (absolute, or relative to `cwd`). */
  script?: string;
  /** Another program to run instead of a Node.js script (looked up on PATH), e.g. `etcd`. */
  program?: string;
  args: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Receives every output line, already prefixed. Default: the lab's stderr. */
  log?: Logger;
  /** How long to wait for the READY line (or the probe). */
  readyTimeoutMs?: number;
  /**
   * Readiness without a READY line: called once (with a signal aborted when the process exits or
   * the time is up) until it resolves; a rejection fails `ready`.
   */
  probe?: (signal: AbortSignal) => Promise<ReadyInfo>;
}

export interface Service {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /** The READY line's JSON; rejects if the process exits or times out first. */
  readonly ready: Promise<ReadyInfo>;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** True once `stop()` was called: an exit after that is expected. */
  readonly stopping: boolean;
  /** SIGTERM, wait up to `graceMs`, then SIGKILL the process group; resolves after the exit. */
  stop(graceMs?: number): Promise<ExitInfo>;
}

/** How long a service may take to stop after SIGTERM before its group is SIGKILLed. */
export const DEFAULT_STOP_GRACE_MS = 3_000;

export const defaultLog: Logger = (line) => void process.stderr.write(`${redactCredentials(line)}\n`);

export function describeExit(e: ExitInfo): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

export function startService(opts: ServiceOptions): Service {
  const log = opts.log ?? defaultLog;
  const say = (line: string) => log(`[${opts.name}] ${line}`);
  const { child, file } = spawnService(opts);
  const exited = exitOf(child, file, say);
  const ready = readiness(child, opts, exited, say);
  const stopper = new Stopper(child, exited, say);
  return {
    name: opts.name,
    pid: child.pid ?? -1,
    child,
    ready,
    exited,
    get stopping() {
      return stopper.stopping;
    },
    stop: (graceMs) => stopper.stop(graceMs),
  };
}

/**
 * Step 1: the process, in a process group of its own (a terminal's Ctrl-C reaches the lab only,
 * which stops the services itself; a stuck service is killed with everything it spawned), tied to
 * this process's life.
 */
function spawnService(opts: ServiceOptions): { child: ChildProcess; file: string } {
  let file: string;
  let argv: string[];
  if (opts.program) {
    // A program that is not ours cannot watch a pipe: the kernel kills it when we die.
    const setpriv = opts.program && onPath(opts.program) ? onPath('setpriv') : undefined;
    [file, argv] = setpriv
      ? [setpriv, ['--pdeathsig', 'SIGKILL', '--', opts.program, ...opts.args]]
      : [opts.program, opts.args];
  } else {
    [file, argv] = [process.execPath, [opts.script ?? '', ...opts.args]];
  }
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    // fd 3 of a Node.js service is the IPC pipe its parent-death watch reads.
    stdio: opts.program ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'pipe', 'pipe', 'ipc'],
    detached: true,
  });
  // The pipe is for the child's watch only: it must not keep the lab's event loop alive.
  child.channel?.unref();
  return { child, file: opts.program ?? file };
}

/** The absolute path of a program on PATH, if any. */
function onPath(program: string): string | undefined {
  if (program.includes('/')) return fs.existsSync(program) ? program : undefined;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir || '.', program);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Step 2: the exit (or a spawn that failed, as exit 127), never rejecting. */
function exitOf(child: ChildProcess, file: string, say: Logger): Promise<ExitInfo> {
  return new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', (err) => {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ` (is ${file} installed?)` : '';
      say(`failed to start: ${err.message}${missing}`);
      if (child.pid === undefined) resolve({ code: 127, signal: null });
    });
  });
}

/**
 * Step 3: readiness, from the READY line on stdout or the probe, within the time allowed; every
 * output line goes to the log on the way.
 */
function readiness(
  child: ChildProcess,
  opts: ServiceOptions,
  exited: Promise<ExitInfo>,
  say: Logger,
): Promise<ReadyInfo> {
  let readyResolve!: (r: ReadyInfo) => void;
  let readyReject!: (e: Error) => void;
  const ready = new Promise<ReadyInfo>((res, rej) => {
    readyResolve = res;
    readyReject = rej;
  });
  ready.catch(() => {}); // the caller may never ask
  let isReady = false;
  const readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
  const gaveUp = new AbortController();
  const markReady = (info: ReadyInfo) => {
    isReady = true;
    clearTimeout(timer);
    readyResolve(info);
  };
  const timer = setTimeout(() => {
    gaveUp.abort();
    readyReject(
      new Error(
        opts.probe
          ? `${opts.name} was not ready within ${readyTimeoutMs} ms`
          : `${opts.name} did not print its READY line within ${readyTimeoutMs} ms`,
      ),
    );
  }, readyTimeoutMs);
  timer.unref();
  if (opts.probe) {
    opts
      .probe(gaveUp.signal)
      .then(markReady, (err: unknown) => readyReject(err instanceof Error ? err : new Error(String(err))));
  }

  const out = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
  out.on('line', (line) => {
    if (!opts.probe && !isReady && line.startsWith(READY_PREFIX)) {
      try {
        markReady(parseReadyLine(line)!);
      } catch {
        readyReject(new Error(`${opts.name} printed a READY line that is not JSON: ${line}`));
      }
    }
    say(line);
  });
  readline.createInterface({ input: child.stderr!, crlfDelay: Infinity }).on('line', say);

  void exited.then((e) => {
    clearTimeout(timer);
    gaveUp.abort();
    if (!isReady) readyReject(new Error(`${opts.name} exited (${describeExit(e)}) before it was ready`));
  });
  return ready;
}

/** Step 4: stopping: SIGTERM, a bounded grace, then SIGKILL to the whole group; always the exit. */
class Stopper {
  stopping = false;
  private stopped?: Promise<ExitInfo>;
  private exitInfo?: ExitInfo;
  private readonly closed: Promise<void>;

  constructor(
    private readonly child: ChildProcess,
    private readonly exited: Promise<ExitInfo>,
    private readonly say: Logger,
  ) {
    void exited.then((e) => (this.exitInfo = e));
    this.closed = once(child, 'close').then(
      () => undefined,
      () => undefined,
    );
  }

  stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<ExitInfo> {
    this.stopping = true;
    this.stopped ??= this.run(graceMs);
    return this.stopped;
  }

  private async run(graceMs: number): Promise<ExitInfo> {
    if (!this.exitInfo) {
      this.child.kill('SIGTERM');
      const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
      if ((await Promise.race([this.exited, timeout])) === 'timeout') {
        this.say(`did not stop within ${graceMs} ms: killing it`);
        this.killGroup('SIGKILL');
      }
    }
    const e = await this.exited;
    // Anything it spawned into its own group and left behind goes with it.
    this.killGroup('SIGKILL');
    // Wait (bounded) for the last output lines; a grandchild may still hold the pipes open.
    const drained = new Promise<void>((r) => setTimeout(r, 2_000).unref());
    await Promise.race([this.closed, drained]);
    this.child.stdout?.destroy();
    this.child.stderr?.destroy();
    return e;
  }

  private killGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // the group is gone already
    }
  }
}
