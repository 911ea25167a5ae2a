/**
 * A real Docker engine for e2e/compose.test.ts, started and stopped by the test itself: Debian's
 * `dockerd` with its data root, exec root (its containerd), pid file and socket in a temp dir, no
 * systemd. It leaves the host's network set-up alone: `--iptables=false` (no firewall rules, no
 * FORWARD policy change), `--bridge=none` (no docker0 to clash with another engine) and a default
 * address pool in 10.x that no route on this host uses yet. So containers reach each other on the
 * compose network and the host reaches published ports through docker-proxy on 127.0.0.1, but
 * containers have no way out: builds run with `--network host`.
 *
 * The data root (images, layers) is a cache, not a temp dir: DOCKER_CACHE/engine (default
 * ~/.cache/kexec-lab/docker, beside the base image tarball), so a second run finds its images and
 * build layers, and no run pays for deleting a gigabyte of layers (slow on a disk that discards on
 * delete). One engine at a time uses it (the lab's pid-file lock, DOCKER_CACHE/lab.pid); a second
 * concurrent run gets a temp data root. Delete the directory to reclaim the space.
 *
 * `stop()` stops the engine (and its containerd), checks that nothing of it is left (processes,
 * mounts) and removes the temp dir.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { LabRunningError, acquireLabLock } from '../../lab/lab-lock.js';
import { waitFor } from '../../shared/test-support/poll.js';

const execFileAsync = promisify(execFile);

/** Debian's docker CLI (same version as the engine) when present, else the one on PATH. */
export const DOCKER_CLI = fs.existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';

function onPath(program: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${program}`], { stdio: 'ignore' }).status === 0;
}

/** Why this machine cannot run the engine (missing programs, not root), or undefined when it can. */
export function dockerUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'dockerd needs root';
  const missing = ['dockerd', 'docker-compose', 'debootstrap'].filter((p) => !onPath(p));
  if (!onPath(DOCKER_CLI)) missing.push('docker');
  if (missing.length) return `missing ${missing.join(', ')} (.ci/apt-packages.txt installs them)`;
  return undefined;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface DockerEngine {
  dir: string;
  /** DOCKER_HOST for clients (unix://DIR/docker.sock). */
  host: string;
  /** process.env with DOCKER_HOST pointing at this engine. */
  env: NodeJS.ProcessEnv;
  /** Runs a program against this engine; never throws on a non-zero exit. */
  run(
    program: string,
    args: string[],
    opts?: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string },
  ): Promise<CommandResult>;
  /** Stops the engine, checks it left nothing behind and removes its temp dir. */
  stop(): Promise<void>;
}

/** A /16 in 10.0.0.0/8 that no route on this host overlaps, for the engine's networks. */
function freeAddressPool(): string {
  const routes = spawnSync('ip', ['-4', 'route', 'show', 'table', 'all'], { encoding: 'utf8' }).stdout ?? '';
  for (let i = 0; i < 64; i++) {
    const second = 100 + Math.floor(Math.random() * 150);
    if (!routes.includes(`10.${second}.`)) return `10.${second}.0.0/16`;
  }
  throw new Error('no free 10.x.0.0/16 for the engine');
}

function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((m) => m === dir || m.startsWith(`${dir}/`));
}

/** Pids of processes whose command line mentions `dir` (the engine's containerd and shims). */
export function processesUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const p of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    try {
      if (fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(dir)) pids.push(Number(p));
    } catch {
      // gone
    }
  }
  return pids;
}

function exited(child: ChildProcess): Promise<void> {
  return child.exitCode !== null || child.signalCode !== null
    ? Promise.resolve()
    : new Promise((r) => child.once('exit', () => r()));
}

/** Where the base image tarball and the engine's data root are kept between runs. */
export function dockerCacheDir(): string {
  return (
    process.env.KEXEC_DOCKER_CACHE ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'kexec-lab', 'docker')
  );
}

/**
 * Takes the cached data root for this process (lab-lock.ts's pid file, a dead owner's taken over),
 * or undefined while another run holds it.
 */
function lockCachedDataRoot(): { dataRoot: string; release: () => void } | undefined {
  const cache = dockerCacheDir();
  try {
    return { dataRoot: path.join(cache, 'engine'), release: acquireLabLock(cache).release };
  } catch (err) {
    if (err instanceof LabRunningError) return undefined;
    throw err;
  }
}

/** Starts dockerd under a new temp dir; rejects (with its log) if it does not answer in time. */
export async function startDockerEngine(): Promise<DockerEngine> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-dockerd-'));
  const cached = lockCachedDataRoot();
  const dataRoot = cached?.dataRoot ?? path.join(dir, 'data');
  const host = `unix://${dir}/docker.sock`;
  const log = fs.openSync(path.join(dir, 'dockerd.log'), 'a');
  const child = spawn(
    'dockerd',
    [
      '--data-root',
      dataRoot,
      '--exec-root',
      path.join(dir, 'exec'),
      '--pidfile',
      path.join(dir, 'dockerd.pid'),
      '--host',
      host,
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--default-address-pool',
      `base=${freeAddressPool()},size=24`,
    ],
    { stdio: ['ignore', log, log] },
  );
  fs.closeSync(log);
  const env = { ...process.env, DOCKER_HOST: host };

  const run: DockerEngine['run'] = async (program, args, opts = {}) => {
    try {
      const r = await execFileAsync(program, args, {
        env: { ...env, ...opts.env },
        cwd: opts.cwd,
        timeout: opts.timeoutMs ?? 120_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      return { code: 0, stdout: r.stdout, stderr: r.stderr };
    } catch (err) {
      const e = err as { code?: number | string; stdout?: string; stderr?: string; message: string };
      return {
        code: typeof e.code === 'number' ? e.code : -1,
        stdout: e.stdout ?? '',
        stderr: e.stderr || e.message,
      };
    }
  };

  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited(child);
      clearTimeout(t);
    }
    // dockerd stops its containerd; shims of stopped containers go with them.
    await waitFor(
      'the engine’s containerd and shims to exit',
      () => !processesUnder(dir).length && !processesUnder(dataRoot).length,
      30_000,
      250,
    );
    // dockerd keeps its own network namespace bound on EXEC_ROOT/netns/default after it stops
    // (libnetwork); anything else still mounted is a leak.
    const netns = path.join(dir, 'exec', 'netns', 'default');
    const mounts = [...mountsUnder(dir), ...(cached ? mountsUnder(dataRoot) : [])];
    for (const m of [...mounts].reverse()) spawnSync('umount', ['-l', m]);
    fs.rmSync(dir, { recursive: true, force: true });
    cached?.release();
    const leaked = mounts.filter((m) => m !== netns);
    if (leaked.length) throw new Error(`the engine left mounts behind: ${leaked.join(', ')}`);
  };

  try {
    await waitFor(
      'dockerd to answer',
      async () =>
        child.exitCode !== null ||
        (await run(DOCKER_CLI, ['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 }))
          .code === 0,
      60_000,
      250,
    );
    if (child.exitCode !== null) throw new Error(`dockerd exited with ${child.exitCode}`);
  } catch (err) {
    const tail = fs.readFileSync(path.join(dir, 'dockerd.log'), 'utf8').split('\n').slice(-20).join('\n');
    await stop().catch(() => {});
    throw new Error(`${(err as Error).message}\n--- dockerd.log ---\n${tail}`);
  }
  return { dir, host, env, run, stop };
}

/**
 * The CAs this machine trusts beyond Node.js's own roots (PEM), e.g. a TLS-inspecting proxy's:
 * what the image build needs in EXTRA_CA_CERTS to reach the npm registry from here.
 */
export function extraCaCerts(bundle = '/etc/ssl/certs/ca-certificates.crt'): string {
  if (!fs.existsSync(bundle)) return '';
  const norm = (pem: string) => pem.replace(/\s+/g, '');
  const known = new Set(tls.rootCertificates.map(norm));
  const pems = fs
    .readFileSync(bundle, 'utf8')
    .match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g);
  return (pems ?? []).filter((p) => !known.has(norm(p))).join('\n');
}
