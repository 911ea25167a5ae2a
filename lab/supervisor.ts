/**
 * Runs one lab service as a child process: `node dist/<service>/main.js …` (or another program,
 * such as etcd), its own process group, stdout scanned for the `READY {json}` line
 * (docs/wiring.md) unless the service brings its own readiness probe, every line of stdout and
 * stderr passed to `log` with a `[service]` prefix. `stop()` sends SIGTERM, waits (bounded), then
 * SIGKILLs the whole process group, and always waits for the exit.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import readline from 'node:readline';
import { redactCredentials, type Logger } from '../shared/logging.js';
import { parseReadyLine, READY_PREFIX, type ReadyInfo } from '../shared/ready-line.js';

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

export const defaultLog: Logger = (line) => void process.stderr.write(`${redactCredentials(line)}\n`);

export function describeExit(e: ExitInfo): string {
  return e.signal ? `signal ${e.signal}` : `code ${e.code}`;
}

export function startService(opts: ServiceOptions): Service {
  const log = opts.log ?? defaultLog;
  const prefix = `[${opts.name}] `;
  const [file, argv] = opts.program
    ? [opts.program, opts.args]
    : [process.execPath, [opts.script ?? '', ...opts.args]];
  const child = spawn(file, argv, {
    cwd: opts.cwd,
    env: opts.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group: a terminal's Ctrl-C reaches the lab only, which stops the services
    // in order; and a stuck service can be killed with everything it spawned.
    detached: true,
  });
  let exitInfo: ExitInfo | undefined;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
    child.once('error', (err) => {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' ? ` (is ${file} installed?)` : '';
      log(`${prefix}failed to start: ${err.message}${missing}`);
      if (child.pid === undefined) {
        exitInfo = { code: 127, signal: null };
        resolve(exitInfo);
      }
    });
  });

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
    opts.probe(gaveUp.signal).then(
      (info) => {
        isReady = true;
        clearTimeout(timer);
        readyResolve(info);
      },
      (err: unknown) => readyReject(err instanceof Error ? err : new Error(String(err))),
    );
  }

  const out = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
  out.on('line', (line) => {
    if (!opts.probe && !isReady && line.startsWith(READY_PREFIX)) {
      try {
        const info = parseReadyLine(line)!;
        isReady = true;
        clearTimeout(timer);
        readyResolve(info);
      } catch {
        readyReject(new Error(`${opts.name} printed a READY line that is not JSON: ${line}`));
      }
    }
    log(prefix + line);
  });
  const err = readline.createInterface({ input: child.stderr!, crlfDelay: Infinity });
  err.on('line', (line) => log(prefix + line));

  void exited.then((e) => {
    clearTimeout(timer);
    gaveUp.abort();
    if (!isReady) readyReject(new Error(`${opts.name} exited (${describeExit(e)}) before it was ready`));
  });

  const closed = once(child, 'close').then(
    () => undefined,
    () => undefined,
  );
  let stopping = false;
  let stopped: Promise<ExitInfo> | undefined;
  const killGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      // the group is gone already
    }
  };

  const stop = (graceMs = 5_000): Promise<ExitInfo> => {
    stopping = true;
    stopped ??= (async () => {
      if (!exitInfo) {
        child.kill('SIGTERM');
        const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
        if ((await Promise.race([exited, timeout])) === 'timeout') {
          log(`${prefix}did not stop within ${graceMs} ms: killing it`);
          killGroup('SIGKILL');
        }
      }
      const e = await exited;
      // Anything it spawned into its own group and left behind goes with it.
      killGroup('SIGKILL');
      // Wait (bounded) for the last output lines; a grandchild may still hold the pipes open.
      const drained = new Promise<void>((r) => setTimeout(r, 2_000).unref());
      await Promise.race([closed, drained]);
      child.stdout?.destroy();
      child.stderr?.destroy();
      return e;
    })();
    return stopped;
  };

  return {
    name: opts.name,
    pid: child.pid ?? -1,
    child,
    ready,
    exited,
    get stopping() {
      return stopping;
    },
    stop,
  };
}
