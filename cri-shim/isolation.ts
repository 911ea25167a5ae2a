/**
 * How a container's processes are isolated: the part runc plays under containerd.
 *
 * - `bwrap` (bubblewrap): every process of a container — its main process and each exec — runs in
 *   new PID and UTS namespaces with the pod's hostname and a fresh root built from read-only binds
 *   of the host's /usr and /etc (plus the /bin, /lib… links of a merged-/usr system), a private
 *   /proc and /dev, and the container's own writable directories bound on /root, /tmp and /var.
 *   The environment is exactly the image's and the container's (`--clearenv` + `--setenv`).
 *   `--die-with-parent` ties each process to the shim: if the shim dies, its containers die too.
 *   Unlike runc, execs get their own PID namespace (they share the filesystem and hostname, not
 *   the process tree), and there are no cgroups, user namespaces or network namespaces.
 *   No `--new-session`: it would take the controlling terminal away from TTY sessions.
 * - `none`: a plain child process whose working directory is the container's root directory and
 *   whose HOME points there. Absolute paths (`ls /root`) see the HOST. For machines without
 *   bubblewrap; the shim says so loudly at start-up. In place of `--die-with-parent`, the
 *   runtime's death watch (death-watch.ts) kills each container process's group and session
 *   when the shim dies.
 *
 * `auto` picks bwrap when `bwrap --ro-bind / / true` works here, else none.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Logger } from '../shared/logging.js';

export type IsolationRequest = 'auto' | 'bwrap' | 'none';
export type IsolationMode = 'bwrap' | 'none';

/** Everything about a container that decides what its processes see. */
export interface ContainerView {
  hostname: string;
  /** Host directories bound on /root, /tmp and /var inside the container. */
  dirs: { root: string; tmp: string; var: string };
  /** Environment inside the container (image env, then the container's envs). */
  env: Record<string, string>;
  /** Working directory as the container sees it (e.g. /root). */
  workingDir: string;
}

export interface ProcessSpec {
  file: string;
  args: string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
}

/** Whether bubblewrap can build a sandbox here (it needs user namespaces or root). */
export function bwrapWorks(): boolean {
  const r = spawnSync('bwrap', ['--ro-bind', '/', '/', 'true'], { stdio: 'ignore', timeout: 5000 });
  return r.status === 0;
}

export function chooseIsolation(requested: IsolationRequest, log: Logger): IsolationMode {
  if (requested === 'none') {
    log('WARNING: --isolation none: container processes run UNISOLATED on the host (cwd = container dir)');
    return 'none';
  }
  if (bwrapWorks()) return 'bwrap';
  if (requested === 'bwrap')
    throw new Error('--isolation bwrap: `bwrap --ro-bind / / true` failed (is bubblewrap installed?)');
  log(
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
      'WARNING: bubblewrap (bwrap) is not usable here: containers are NOT isolated.\n' +
      'Processes run on the host with cwd = the container directory; `ls /root` shows the HOST.\n' +
      'Install it (Debian/Ubuntu: apt-get install bubblewrap) for real container filesystems.\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  );
  return 'none';
}

const RO_DIRS = ['/usr', '/etc', '/opt'];
const MAYBE_LINKS = ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
const WRITABLE = ['root', 'tmp', 'var'] as const;

function hostMounts(): string[] {
  const args: string[] = [];
  for (const d of RO_DIRS) if (fs.existsSync(d)) args.push('--ro-bind', d, d);
  for (const d of MAYBE_LINKS) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(d);
    } catch {
      continue;
    }
    // A merged-/usr system has /bin -> usr/bin: recreate the link rather than binding its target.
    if (st.isSymbolicLink()) args.push('--symlink', fs.readlinkSync(d), d);
    else if (st.isDirectory()) args.push('--ro-bind', d, d);
  }
  return args;
}

/** The host path behind a path as the container sees it, or undefined when it does not exist there. */
export function hostPathOf(mode: IsolationMode, view: ContainerView, p: string): string | undefined {
  if (mode === 'none') return path.resolve(view.dirs.root, p);
  const abs = path.posix.resolve(view.workingDir, p);
  for (const w of WRITABLE) {
    const top = `/${w}`;
    if (abs === top || abs.startsWith(`${top}/`)) return path.join(view.dirs[w], abs.slice(top.length));
  }
  const top = `/${abs.split('/')[1] ?? ''}`;
  if (RO_DIRS.includes(top) || MAYBE_LINKS.includes(top)) return abs;
  return undefined;
}

/**
 * Finds `argv0` as execvp would inside the container (PATH search unless it has a slash);
 * undefined when it is not an executable file there.
 */
export function resolveExecutable(
  mode: IsolationMode,
  view: ContainerView,
  argv0: string,
): string | undefined {
  const candidates = argv0.includes('/')
    ? [argv0]
    : (view.env.PATH ?? '').split(':').map((dir) => path.posix.join(dir || '.', argv0));
  for (const c of candidates) {
    const host = hostPathOf(mode, view, c);
    if (!host) continue;
    try {
      if (fs.statSync(host).isFile()) {
        fs.accessSync(host, fs.constants.X_OK);
        return c;
      }
    } catch {
      // not here: keep looking
    }
  }
  return undefined;
}

/**
 * How to spawn `argv` inside the container (never through a shell). With `tty` the spec is meant
 * for a pseudo-terminal (terminal-process.ts); under bwrap it then starts through a host `sh` that
 * binds the terminal's own `/dev/pts/N` into the container: bwrap's fresh devpts would not contain
 * it, and `tty` would answer `/dev/console` (bwrap binds the host terminal there). Only that one
 * pts node is visible, never the host's other terminals. The container's argv is still passed as
 * arguments, not through the shell.
 */
export function processSpec(
  mode: IsolationMode,
  view: ContainerView,
  argv: readonly string[],
  opts: { tty?: boolean } = {},
): ProcessSpec {
  if (argv.length === 0) throw new Error('empty command');
  // A process on a terminal gets TERM=xterm, as containerd sets for a tty container and a tty exec
  // (oci.WithTTY; internal/cri/server/container_execsync.go execInternal).
  if (opts.tty) view = { ...view, env: { ...view.env, TERM: 'xterm' } };
  if (mode === 'none') {
    const cwd = hostPathOf('none', view, '.') ?? view.dirs.root;
    return {
      file: argv[0]!,
      args: argv.slice(1),
      cwd,
      env: { ...view.env, HOME: view.dirs.root, HOSTNAME: view.hostname },
    };
  }
  const env = { ...view.env, HOSTNAME: view.hostname };
  const args = [
    '--die-with-parent',
    '--unshare-pid',
    '--unshare-uts',
    '--hostname',
    view.hostname,
    ...hostMounts(),
    '--proc',
    '/proc',
    ...(opts.tty ? [] : ['--dev', '/dev']),
    ...WRITABLE.flatMap((w) => ['--bind', view.dirs[w], `/${w}`]),
    '--chdir',
    view.workingDir,
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
    '--',
    // On a terminal the command leads its own session inside the pid namespace, with the pty as
    // its controlling terminal: otherwise the terminal's foreground group is bwrap's, outside the
    // namespace, and an interactive shell cannot hand the terminal back when it exits ("Cannot
    // set tty process group", exit 2). --wait keeps the exit code.
    ...(opts.tty ? ['setsid', '--ctty', '--wait'] : []),
    ...argv,
  ];
  // bwrap itself needs a PATH to be found; the container's env is set by --clearenv/--setenv.
  const hostEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin' };
  if (!opts.tty) return { file: 'bwrap', args, cwd: '/', env: hostEnv };
  const script = 'p=$(tty) || exit 126; exec bwrap --dev /dev --tmpfs /dev/pts --dev-bind "$p" "$p" "$@"';
  return { file: '/bin/sh', args: ['-c', script, 'sh', ...args], cwd: '/', env: hostEnv };
}
