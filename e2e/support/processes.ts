/**
 * e2e helpers: run `kexec` (bin/kexec.js) as a real child process, and look for processes by
 * their command line in /proc, the way a user would with `ps`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { packageRoot } from '../../shared/package-root.js';
import { waitFor } from '../../shared/test-support/poll.js';

export const KEXEC_BIN = path.join(packageRoot(), 'bin', 'kexec.js');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

/** Collects a child's output and resolves on exit. */
export function collect(child: ChildProcess): Promise<RunResult> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (c: Buffer) => out.push(c));
  child.stderr?.on('data', (c: Buffer) => err.push(c));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) =>
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }),
    );
  });
}

export function startKexec(args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  return spawn(process.execPath, [KEXEC_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
}

/** Runs kexec to completion with `input` on its stdin (closed at once when absent). */
export function runKexec(args: string[], input?: Buffer | string): Promise<RunResult> {
  const child = startKexec(args);
  const done = collect(child);
  child.stdin!.on('error', () => {});
  child.stdin!.end(input);
  return done;
}

/**
 * Waits until something accepts TCP connections on 127.0.0.1:`port` inside pod `pod` of the
 * cri-shim (its own network namespace: the host cannot see it), like a readiness probe: a pod is
 * Running once its process starts, before the process listens. Probes with `kexec` and the
 * container's `node` (the host's /usr).
 */
export async function waitForPodPort(
  kubeconfig: string,
  pod: string,
  port: number,
  timeoutMs = 15_000,
): Promise<void> {
  const probe = `require('net').connect(${port}, '127.0.0.1').on('connect', () => process.exit(0)).on('error', () => process.exit(1))`;
  await waitFor(
    `something to listen on 127.0.0.1:${port} in pod ${pod}`,
    async () => (await runKexec(['--kubeconfig', kubeconfig, pod, '--', 'node', '-e', probe])).code === 0,
    timeoutMs,
    100,
  );
}

/**
 * Waits until something accepts TCP connections on `host`:`port` from the host (a containerd
 * pod's address on the CNI bridge), like a readiness probe.
 */
export async function waitForPort(port: number, timeoutMs = 15_000, host = '127.0.0.1'): Promise<void> {
  const net = await import('node:net');
  const accepts = () =>
    new Promise<boolean>((resolve) => {
      const s = net.connect(port, host);
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
  await waitFor(`something to listen on ${host}:${port}`, accepts, timeoutMs, 50);
}
