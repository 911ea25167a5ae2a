/**
 * `cri-shim --isolation none` leaves no container process behind when it goes away: neither when
 * it is SIGKILLed (nothing runs in the cri-shim then: its death watch does the killing) nor on a
 * graceful SIGTERM stop. Under bwrap, `--die-with-parent` and the PID namespace do this; `none`
 * is what runs in Docker, where namespaces are forbidden.
 *
 * The real cri-shim from dist/ is driven over CRI gRPC: a container whose main process is a long
 * `sleep`, and in it an exec, an exec on a terminal and an ExecSync, each running
 * `sh -c 'sleep A & sleep B'` (the backgrounded sleep is a grandchild of the cri-shim, in the
 * exec's process group and session). Every one of these processes carries a unique marker in its
 * environment, so the test finds them in /proc whatever became of their parents.
 *
 * Needs `npm run build`. Linux only (/proc).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { connectRuntime, type RuntimeServiceClient } from '../shared/cri/client.js';
import { packageRoot } from '../shared/package-root.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import type { CriShimReady } from '../shared/ready-line.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { readyLineOf } from '../shared/test-support/ready.js';

const CRI_SHIM = path.join(packageRoot(), 'dist', 'cri-shim', 'main.js');
const MARKER_KEY = 'KEXEC_LAB_ISOLATION_NONE_TEST';

interface Marked {
  pid: number;
  argv: string[];
}

/** Live (non-zombie) processes whose environment holds `MARKER_KEY=marker`. */
function marked(marker: string): Marked[] {
  const needle = `${MARKER_KEY}=${marker}`;
  const found: Marked[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0');
      if (!env.includes(needle)) continue;
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').slice(0, -1);
      found.push({ pid: Number(entry), argv });
    } catch {
      // ended while we looked, or not ours to read
    }
  }
  return found;
}

interface RunningShim {
  child: ChildProcess;
  endpoint: string;
  streamingUrl: string;
  stderr: string[];
  exited: Promise<void>;
}

/** Starts dist/cri-shim/main.js with `--isolation none` and waits (bounded) for its READY line. */
function startShim(dir: string): Promise<RunningShim> {
  const child = spawn(
    process.execPath,
    [CRI_SHIM, '--listen', `unix://${dir}/cri.sock`, '--root', path.join(dir, 'root'), '--isolation', 'none'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stderr: string[] = [];
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return readyLineOf<CriShimReady>(child, 'cri-shim').then((ready) => ({
    child,
    endpoint: ready.endpoint,
    streamingUrl: ready.streamingUrl,
    stderr,
    exited,
  }));
}

/** The sleeps each process starts; the first of each exec's pair is backgrounded (a grandchild). */
const MAIN = 'sleep 3601';
const EXEC = ['sleep 3602', 'sleep 3603'];
const TTY_EXEC = ['sleep 3604', 'sleep 3605'];
const EXEC_SYNC = ['sleep 3606', 'sleep 3607'];
const ALL = [MAIN, ...EXEC, ...TTY_EXEC, ...EXEC_SYNC];
const script = ([bg, fg]: string[], jobControl = false): string[] => [
  'sh',
  '-c',
  `${jobControl ? 'set -m; ' : ''}${bg} & ${fg}`,
];

describe('cri-shim --isolation none leaves no container process behind', () => {
  let dir: string;
  let shim: RunningShim | undefined;
  let rt: RuntimeServiceClient | undefined;
  let marker: string;
  const aborts: AbortController[] = [];

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isolation-none-'));
    marker = randomBytes(8).toString('hex');
    shim = await startShim(dir);
    rt = connectRuntime(shim.endpoint);
    await rt.waitForReady(5000);
    const { pod_sandbox_id } = await rt.runPodSandbox({
      config: { metadata: { name: 'orphans', namespace: 'default', uid: 'uid-orphans' } },
    });
    const { container_id } = await rt.createContainer({
      pod_sandbox_id,
      config: {
        metadata: { name: 'main' },
        image: { image: 'docker.io/library/busybox:latest' },
        command: MAIN.split(' '),
        envs: [{ key: MARKER_KEY, value: marker }],
      },
    });
    await rt.startContainer({ container_id });

    const sink = (): PassThrough => new PassThrough().resume();
    const startExec = async (cmd: string[], tty: boolean): Promise<void> => {
      const { url } = await rt!.exec({ container_id, cmd, stdout: true, stderr: !tty, tty });
      const abort = new AbortController();
      aborts.push(abort);
      // Runs until the cri-shim goes away; then it fails, which is expected here.
      runChannelClient({
        url,
        stdout: sink(),
        stderr: tty ? null : sink(),
        tty,
        resize: tty ? (send) => (send({ width: 80, height: 24 }), () => {}) : undefined,
        handshakeTimeoutMs: 10_000,
        signal: abort.signal,
      }).catch(() => {});
    };
    await startExec(script(EXEC), false);
    await startExec(script(TTY_EXEC, true), true);
    rt.execSync({ container_id, cmd: script(EXEC_SYNC), timeout: 0 }).catch(() => {});

    const running = (): boolean => {
      const argvs = marked(marker).map((p) => p.argv.join(' '));
      return ALL.every((s) => argvs.includes(s));
    };
    const ok = await holdsWithin(running, 10_000);
    if (!ok) throw new Error(`not all sleeps started: ${JSON.stringify(marked(marker))}`);
  });

  afterEach(async () => {
    for (const a of aborts.splice(0)) a.abort();
    rt?.close();
    rt = undefined;
    if (shim && shim.child.exitCode === null && shim.child.signalCode === null) {
      shim.child.kill('SIGKILL');
      await shim.exited;
    }
    shim = undefined;
    // Whatever a failed assertion left behind must not outlive the test.
    for (const p of marked(marker)) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Waits (5 s at most) for every marked process to be gone; returns what is left. */
  async function leftovers(): Promise<string[]> {
    await holdsWithin(() => marked(marker).length === 0, 5000);
    return marked(marker).map((p) => `${p.pid}: ${p.argv.join(' ')}`);
  }

  it('SIGKILL of the cri-shim kills the main process, the execs and their children within 5 s', async () => {
    shim!.child.kill('SIGKILL');
    await shim!.exited;
    expect(await leftovers()).toEqual([]);
  });

  it('a SIGTERM stop kills the main process, the execs and their children within 5 s', async () => {
    shim!.child.kill('SIGTERM');
    const stopped = await holdsWithin(() => shim!.child.exitCode !== null, 5000);
    expect({ stopped, code: shim!.child.exitCode, stderr: stopped ? '' : shim!.stderr.join('') }).toEqual({
      stopped: true,
      code: 0,
      stderr: '',
    });
    expect(await leftovers()).toEqual([]);
  });
});
