/**
 * e2e helpers for fault, leak and abuse tests against a running lab: what a service holds
 * (open fds, child processes, resident memory, all read from /proc as `ls /proc/PID/fd` and `ps`
 * would), restarting a killed service with the exact argv and environment it had, and driving
 * exec sessions in-process with runChannelClient (the WebSocket client kexec uses).
 *
 * Linux only (/proc). Everything that waits has a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import type { Lab } from '../../lab/lab.js';
import {
  runChannelClient,
  type ChannelClientOptions,
  type ChannelClientResult,
} from '../../shared/remotecommand/websocket-client.js';
import { type Logger } from '../../shared/logging.js';
import { children, descendants } from '../../shared/test-support/procfs.js';
import { readyLineOf } from '../../shared/test-support/ready.js';

/** Open file descriptors of `pid`. */
export function fdCount(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

/** Resident memory of `pid` in bytes (VmRSS). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

export interface Holdings {
  fds: number;
  children: number;
  descendants: number;
}

export function holdings(pid: number): Holdings {
  return { fds: fdCount(pid), children: children(pid).length, descendants: descendants(pid).length };
}

/** What a process was started with, read before it is killed, so it can be started again alike. */
export interface LaunchSpec {
  argv: string[];
  env: NodeJS.ProcessEnv;
  cwd: string;
}

export function launchSpecOf(pid: number): LaunchSpec {
  const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').slice(0, -1);
  const env: NodeJS.ProcessEnv = {};
  for (const kv of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return { argv, env, cwd: fs.readlinkSync(`/proc/${pid}/cwd`) };
}

export interface Restarted {
  child: ChildProcess;
  ready: Record<string, unknown>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves at exit. */
  stop(graceMs?: number): Promise<void>;
}

/** Starts `spec` again and waits (bounded) for its READY line (docs/wiring.md). */
export function restart(spec: LaunchSpec, log: Logger, timeoutMs = 15_000): Promise<Restarted> {
  const child = spawn(spec.argv[0]!, spec.argv.slice(1), {
    cwd: spec.cwd,
    env: spec.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const stop = async (graceMs = 5000): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  };
  child.stderr!.on('data', (c: Buffer) => log(c.toString().trimEnd()));
  return readyLineOf(child, spec.argv.join(' '), timeoutMs).then(
    (ready) => ({ child, ready, stop }),
    async (err: unknown) => {
      await stop(0);
      throw err;
    },
  );
}

/** The exec URL of the lab's demo pod for `command`, as kexec builds it. */
export function labExecUrl(
  lab: Pick<Lab, 'apiserverUrl'>,
  command: readonly string[],
  o: { stdin?: boolean; pod?: string; container?: string } = {},
): string {
  const pod = o.pod ?? 'demo';
  const u = new URL(`/api/v1/namespaces/default/pods/${pod}/exec`, lab.apiserverUrl);
  for (const c of command) u.searchParams.append('command', c);
  u.searchParams.set('container', o.container ?? 'demo');
  if (o.stdin) u.searchParams.set('stdin', 'true');
  u.searchParams.set('stdout', 'true');
  u.searchParams.set('stderr', 'true');
  return u.href;
}

/** TLS and credentials for a client of the lab's apiserver. */
export function labClientOptions(
  lab: Pick<Lab, 'adminToken' | 'caFile'>,
): Pick<ChannelClientOptions, 'headers' | 'tls'> {
  return {
    headers: { Authorization: `Bearer ${lab.adminToken}` },
    tls: lab.caFile ? { ca: fs.readFileSync(lab.caFile) } : undefined,
  };
}

export interface ExecOutcome extends ChannelClientResult {
  stdout: string;
  stderr: string;
}

/** One exec in the demo pod through the apiserver, in-process, output collected. */
export async function labExec(
  lab: Pick<Lab, 'apiserverUrl' | 'adminToken' | 'caFile'>,
  command: readonly string[],
  o: { stdin?: Readable; stdout?: Writable; signal?: AbortSignal } = {},
): Promise<ExecOutcome> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const stdout = o.stdout ?? new PassThrough().on('data', (c: Buffer) => out.push(c));
  const stderr = new PassThrough().on('data', (c: Buffer) => err.push(c));
  const result = await runChannelClient({
    ...labClientOptions(lab),
    url: labExecUrl(lab, command, { stdin: !!o.stdin }),
    stdin: o.stdin ?? null,
    stdout,
    stderr,
    signal: o.signal,
    handshakeTimeoutMs: 10_000,
  });
  return { ...result, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
}
