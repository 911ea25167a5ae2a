/**
 * The stress run behind `bench/stress-bytes.ts` and its short version in e2e/stress-bytes.test.ts:
 * large execs through every path a client can take, every byte counted and hashed, every exit
 * code checked (kexec-lab issue 11, "not one byte lost": once 3.4 MiB were missing from a 256 MiB
 * SPDY exec under CPU contention).
 *
 * Each exec runs `openssl enc -aes-128-ctr` over /dev/zero in the demo pod: a keystream the bench
 * computes itself from the same key, so 256 MiB need no file and no second channel to be checked.
 * Modes: `fast` (stdout read as it comes), `slow` (read at a few tens of MiB/s, so backpressure
 * runs through every hop), `stdin-early` (the client sends some stdin and closes it before any
 * output: the command reads to EOF first, so a stdin EOF that never arrives hangs the exec).
 */
import { spawn } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { packageRoot } from '../shared/package-root.js';
import { kubectlPath } from '../shared/test-support/kubectl.js';

export const MiB = 1024 * 1024;

export interface StressPath {
  name: string;
  /** Which lab: the default one (StreamTranslator on) or one with --no-stream-translation. */
  lab: 'translated' | 'spliced';
  /** The client's command line after its kubeconfig, and its environment. */
  client(kubeconfig: string, home: string): { bin: string; args: string[]; env: NodeJS.ProcessEnv };
}

const kexec =
  (protocol: 'websocket' | 'spdy') =>
  (kubeconfig: string): ReturnType<StressPath['client']> => ({
    bin: process.execPath,
    args: [path.join(packageRoot(), 'bin', 'kexec.js'), '--kubeconfig', kubeconfig, '--protocol', protocol],
    env: process.env,
  });

const kubectl =
  (version: 'v1.35' | 'v1.20', spdy: boolean) =>
  (kubeconfig: string, home: string): ReturnType<StressPath['client']> => ({
    bin: kubectlPath(version),
    args: ['--kubeconfig', kubeconfig, '--cache-dir', path.join(home, 'cache'), 'exec'],
    env: { ...process.env, HOME: home, ...(spdy ? { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' } : {}) },
  });

export const STRESS_PATHS: StressPath[] = [
  { name: 'kexec WS v5 translated', lab: 'translated', client: kexec('websocket') },
  { name: 'kexec WS v5 spliced', lab: 'spliced', client: kexec('websocket') },
  { name: 'kexec SPDY', lab: 'translated', client: kexec('spdy') },
  { name: 'kubectl v1.35 WS', lab: 'translated', client: kubectl('v1.35', false) },
  { name: 'kubectl v1.35 SPDY', lab: 'translated', client: kubectl('v1.35', true) },
  { name: 'kubectl v1.20 SPDY', lab: 'translated', client: kubectl('v1.20', false) },
];

export type StressMode = 'fast' | 'slow' | 'stdin-early';
export const STRESS_MODES: StressMode[] = ['fast', 'slow', 'stdin-early'];

export interface StressExec {
  path: StressPath;
  mode: StressMode;
  bytes: number;
  exitCode: number;
  /** Reading speed of a slow reader. */
  slowMiBps?: number;
}

export interface StressResult {
  exec: StressExec;
  ok: boolean;
  got: { bytes: number; sha256: string; exitCode: number | null };
  want: { sha256: string };
  seconds: number;
  /** The client's stderr when it failed (trimmed). */
  stderr: string;
}

/** The sha256 of the first `bytes` of AES-128-CTR over zeros with this key and iv. */
function keystreamSha256(key: Buffer, iv: Buffer, bytes: number): string {
  const cipher = createCipheriv('aes-128-ctr', key, iv);
  const hash = createHash('sha256');
  const zeros = Buffer.alloc(MiB);
  for (let left = bytes; left > 0; left -= zeros.length) {
    hash.update(cipher.update(left >= zeros.length ? zeros : zeros.subarray(0, left)));
  }
  return hash.digest('hex');
}

/** The two labs the paths need, under `dir`: the default one and one with --no-stream-translation. */
export async function startStressLabs(dir: string): Promise<Record<StressPath['lab'], Lab>> {
  const quiet = { port: 0, log: () => {} };
  const [translated, spliced] = await Promise.all([
    startLab({ ...quiet, dir: path.join(dir, 'translated') }),
    startLab({ ...quiet, dir: path.join(dir, 'spliced'), streamTranslation: false }),
  ]);
  return { translated, spliced };
}

/** Runs one exec through its path's client and checks it. */
export async function runStressExec(
  exec: StressExec,
  labs: Record<StressPath['lab'], Lab>,
  home: string,
): Promise<StressResult> {
  const key = randomBytes(16);
  const iv = randomBytes(16);
  const gen =
    `openssl enc -aes-128-ctr -nosalt -K ${key.toString('hex')} -iv ${iv.toString('hex')} </dev/zero 2>/dev/null` +
    ` | head -c ${exec.bytes}`;
  const script = `${exec.mode === 'stdin-early' ? 'cat >/dev/null; ' : ''}${gen}; exit ${exec.exitCode}`;
  const { bin, args, env } = exec.path.client(labs[exec.path.lab].kubeconfigPath, home);
  const stdin = exec.mode === 'stdin-early';
  const started = performance.now();
  const child = spawn(bin, [...args, ...(stdin ? ['-i'] : []), 'demo', '--', 'sh', '-c', script], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  child.stdin.on('error', () => {});
  child.stdin.end(stdin ? randomBytes(256 * 1024) : undefined);

  const hash = createHash('sha256');
  let got = 0;
  child.stdout.on('data', (c: Buffer) => {
    hash.update(c);
    got += c.length;
    if (exec.slowMiBps) {
      // Read no faster than slowMiBps: pause for as long as this chunk should have taken.
      child.stdout.pause();
      setTimeout(() => child.stdout.resume(), (c.length / (exec.slowMiBps * MiB)) * 1000);
    }
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const want = keystreamSha256(key, iv, exec.bytes);
  const code = await new Promise<number | null>((resolve) =>
    child.once('close', (c: number | null) => resolve(c)),
  );
  const sha256 = hash.digest('hex');
  return {
    exec,
    ok: got === exec.bytes && sha256 === want && code === exec.exitCode,
    got: { bytes: got, sha256, exitCode: code },
    want: { sha256: want },
    seconds: (performance.now() - started) / 1000,
    stderr: stderr.trim(),
  };
}

/** Busy loops beside the lab, one process each; returns a function that stops them. */
export function startCpuHogs(n: number): () => void {
  const hogs = Array.from({ length: n }, () =>
    spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }),
  );
  return () => {
    for (const h of hogs) h.kill('SIGKILL');
  };
}

/** Runs `execs` with at most `parallel` at once; `onResult` sees each as it ends. */
export async function runStress(
  execs: StressExec[],
  labs: Record<StressPath['lab'], Lab>,
  home: string,
  parallel: number,
  onResult: (r: StressResult, done: number) => void = () => {},
): Promise<StressResult[]> {
  const results: StressResult[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < execs.length) {
      const r = await runStressExec(execs[next++]!, labs, home);
      results.push(r);
      onResult(r, results.length);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

/** One line per path: execs, failures, MiB carried, MiB/s per exec on average. */
export function summarise(results: StressResult[]): string[] {
  return STRESS_PATHS.map((p) => {
    const rs = results.filter((r) => r.exec.path === p);
    const mib = rs.reduce((n, r) => n + r.got.bytes, 0) / MiB;
    const secs = rs.reduce((n, r) => n + r.seconds, 0);
    const failed = rs.filter((r) => !r.ok).length;
    return (
      `${p.name.padEnd(24)} ${String(rs.length).padStart(4)} execs, ${String(failed).padStart(2)} failed, ` +
      `${mib.toFixed(0).padStart(7)} MiB, ${secs > 0 ? (mib / secs).toFixed(1) : '-'} MiB/s per exec`
    );
  });
}

/** A failed exec, for the report. */
export function describeFailure(r: StressResult): string {
  return (
    `${r.exec.path.name} ${r.exec.mode} ${r.exec.bytes} bytes exit ${r.exec.exitCode}: got ${r.got.bytes} bytes` +
    ` (${r.got.bytes - r.exec.bytes}), sha256 ${r.got.sha256 === r.want.sha256 ? 'ok' : 'WRONG'},` +
    ` exit ${r.got.exitCode}; stderr: ${r.stderr.slice(0, 300)}`
  );
}
