/**
 * How a container's processes are isolated: the part runc plays under containerd, with
 * bubblewrap building each container's filesystem and the native helper `kexec-nsexec`
 * (cri-shim/native/) joining namespaces and dropping privileges.
 *
 * - `bwrap`: one sandbox per pod, as runc/containerd give. The pod's init (pod-sandbox.ts) holds
 *   its network, IPC and UTS namespaces. A container's main process is bubblewrap's PID 1
 *   (`--as-pid-1`) in new PID and mount namespaces, started inside the pod's other namespaces and
 *   the container's cgroup by `kexec-nsexec join`: a fresh root of read-only binds of the host's
 *   /usr, /etc, /opt (and /bin, /lib… links), its own /proc with the runtime's read-only and
 *   masked paths (runc/containerd defaults: /proc/sys, /proc/irq, /proc/bus, /proc/fs,
 *   /proc/sysrq-trigger read-only; /proc/kcore, /proc/keys, /proc/timer_list, /proc/acpi …
 *   masked), a minimal /dev, and the container's writable /root, /tmp and /var. Bubblewrap then
 *   runs `kexec-nsexec init` (bound read-only at INIT_PATH), which takes the container's user,
 *   capabilities, no_new_privs and seccomp profile (security-context.ts) and execs the command.
 *   Every exec JOINS that container (`kexec-nsexec exec --target PID`, as `runc exec`): same pid,
 *   mount, network, IPC and UTS namespaces and cgroup, same privileges, so `ps` shows the main
 *   process and a daemon an exec started outlives it. A terminal is made inside the container
 *   (its own devpts) and relayed, as runc's console. `--die-with-parent` and the helpers'
 *   parent-death signal tie everything to the shim.
 * - `none`: a plain child process whose working directory is the container's root directory and
 *   whose HOME points there. Absolute paths (`ls /root`) see the HOST; no namespaces, no limits,
 *   no privilege drop. The documented unsafe mode, for machines without bubblewrap; the shim says
 *   so loudly at start-up. In place of `--die-with-parent`, the runtime's death watch
 *   (death-watch.ts) kills each container process's group and session when the shim dies.
 *
 * `auto` picks bwrap when `bwrap --ro-bind / / true` works here and the helper is built, else none.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { type Logger } from '../shared/logging.js';
import { fromPackageRoot } from '../shared/package-root.js';
import { privilegeArgs, type Privileges } from './security-context.js';

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

/** The native helper (scripts/build-native.sh builds it into dist/native/). */
export function nsexecPath(): string {
  return fromPackageRoot('dist', 'native', 'kexec-nsexec');
}

/** Why a bubblewrap sandbox cannot be built here, or undefined when it can. */
export function bwrapProblem(): string | undefined {
  const r = spawnSync('bwrap', ['--ro-bind', '/', '/', 'true'], { stdio: 'ignore', timeout: 5000 });
  if (r.status !== 0) return '`bwrap --ro-bind / / true` failed (is bubblewrap installed?)';
  if (!fs.existsSync(nsexecPath()))
    return `the native helper ${nsexecPath()} is missing (run \`npm run build:native\`; it needs gcc and libseccomp-dev)`;
  return undefined;
}

/** Whether pods can be real sandboxes here (bubblewrap works and the helper is built). */
export function bwrapWorks(): boolean {
  return bwrapProblem() === undefined;
}

export function chooseIsolation(requested: IsolationRequest, log: Logger): IsolationMode {
  if (requested === 'none') {
    log(
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
        'WARNING: --isolation none: container processes run UNISOLATED on the host as the\n' +
        "shim's user (cwd = container dir): no namespaces, no capability drop, no seccomp, no\n" +
        "limits, port-forward reaches the host's loopback. Anyone with exec rights owns this host.\n" +
        '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
    );
    return 'none';
  }
  const problem = bwrapProblem();
  if (!problem) return 'bwrap';
  if (requested === 'bwrap') throw new Error(`--isolation bwrap: ${problem}`);
  log(
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' +
      `WARNING: no container isolation here: ${problem}.\n` +
      'Containers are NOT isolated: processes run on the host with cwd = the container\n' +
      'directory; `ls /root` shows the HOST. Install bubblewrap, gcc and libseccomp-dev\n' +
      '(Debian/Ubuntu) and run `npm run build` for real pod sandboxes.\n' +
      '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  );
  return 'none';
}

const RO_DIRS = ['/usr', '/etc', '/opt'];
const MAYBE_LINKS = ['/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32'];
const WRITABLE = ['root', 'tmp', 'var'] as const;

export function hostMounts(): string[] {
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

/** Where the helper is bound inside every container, for bubblewrap to run as PID 1. */
export const INIT_PATH = '/dev/.kexec-init';

/**
 * How every pod and container init starts: bubblewrap with a pid namespace whose PID 1 is the
 * command itself (no reaper of bubblewrap's in between, as a container's entrypoint), killed with
 * its parent, reporting that PID 1's host pid on fd 4 (`kexec-nsexec join --pid-file`).
 */
/** The fd on which `kexec-nsexec join --seccomp-pass` hands the filter to the container's init. */
export const SECCOMP_FD = 5;
/** The fd on which a container's init tells `join` it is set up (then the pid file appears). */
export const READY_FD = 6;

export const BWRAP_INIT = ['bwrap', '--info-fd', '4', '--die-with-parent', '--unshare-pid', '--as-pid-1'];

/** The runtime default's read-only and masked /proc paths (runc/containerd, moby's MaskedPaths). */
const READONLY_PROC = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];
const MASKED_PROC = [
  '/proc/acpi',
  '/proc/asound',
  '/proc/interrupts',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
];

/**
 * /proc hardening as bubblewrap arguments. Read-only: the path bound on itself read-only (the
 * kernel's /proc/sys etc. are the same in every pid namespace). Masked: a file is covered by
 * /dev/null (unreadable there: bubblewrap's binds are nodev), a directory by an empty read-only
 * tmpfs. Paths this kernel does not have are skipped (a bind needs its target).
 */
function procHardening(): string[] {
  const args: string[] = [];
  for (const p of READONLY_PROC) if (fs.existsSync(p)) args.push('--ro-bind', p, p);
  for (const p of MASKED_PROC) {
    let st: fs.Stats;
    try {
      st = fs.statSync(p);
    } catch {
      continue;
    }
    if (st.isDirectory()) args.push('--tmpfs', p, '--remount-ro', p);
    else args.push('--ro-bind', '/dev/null', p);
  }
  return args;
}

/** How a bubblewrap container's processes start: its cgroup and what it joins. */
export interface SandboxContext {
  helper: string;
  privileges: Privileges;
  /** The container's cgroup directories (cgroups.ts), joined by the main process and every exec. */
  cgroupDirs: string[];
  /** main: the pod's init (network, IPC, UTS); exec: the container's init (everything). */
  target: number;
  /** main: where the helper writes the container init's pid. */
  pidFile?: string;
  /** The compiled seccomp filter of these privileges (SeccompPrograms), unless unconfined. */
  seccompFile?: string;
}

/**
 * How to spawn a container's main process or an exec (never through a shell). With `tty` the spec
 * is meant for a pseudo-terminal (terminal-process.ts): the helper then makes the container's own
 * terminal inside it and relays to ours, as runc's console.
 */
export function processSpec(
  mode: IsolationMode,
  view: ContainerView,
  argv: readonly string[],
  opts: { tty?: boolean; sandbox?: SandboxContext } = {},
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
  const sb = opts.sandbox;
  if (!sb) throw new Error('a bubblewrap process needs its sandbox context');
  const env = { ...view.env, HOSTNAME: view.hostname };
  const cgroups = sb.cgroupDirs.flatMap((d) => ['--cgroup', d]);
  if (!sb.pidFile) {
    // An exec: join the running container. The environment is the container's, passed as ours.
    const args = ['exec', '--target', String(sb.target), ...cgroups, ...(opts.tty ? ['--tty'] : [])];
    args.push(
      ...privilegeArgs(sb.privileges, { file: sb.seccompFile }),
      '--cwd',
      view.workingDir,
      '--',
      ...argv,
    );
    return { file: sb.helper, args, cwd: '/', env };
  }
  const p = sb.privileges;
  const ro = p.readOnlyRootFilesystem;
  const bwrap = [
    ...BWRAP_INIT,
    ...hostMounts(),
    '--proc',
    '/proc',
    // A privileged container keeps /proc writable and unmasked, as upstream.
    ...(p.privileged ? [] : procHardening()),
    '--dev',
    '/dev',
    ...WRITABLE.flatMap((w) => [ro ? '--ro-bind' : '--bind', view.dirs[w], `/${w}`]),
    '--ro-bind',
    sb.helper,
    INIT_PATH,
    ...(ro ? ['--remount-ro', '/'] : []),
    '--chdir',
    view.workingDir,
    '--clearenv',
    ...Object.entries(env).flatMap(([k, v]) => ['--setenv', k, v]),
    '--',
    INIT_PATH,
    'init',
    '--ready-fd',
    String(READY_FD),
    ...(opts.tty ? ['--console-fd', '3'] : []),
    ...privilegeArgs(p, { fd: sb.seccompFile ? SECCOMP_FD : undefined }),
    '--',
    ...argv,
  ];
  const args = [
    'join',
    '--target',
    String(sb.target),
    '--ns',
    'net,ipc,uts',
    ...cgroups,
    '--pid-file',
    sb.pidFile,
    ...(sb.seccompFile ? ['--seccomp-pass', sb.seccompFile] : []),
    ...(opts.tty ? ['--console'] : []),
    '--',
    ...bwrap,
  ];
  // bwrap itself needs a PATH to be found; the container's env is set by --clearenv/--setenv.
  return { file: sb.helper, args, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } };
}
