/**
 * A pod's sandbox: the long-lived init process that holds the pod's network, IPC and UTS
 * namespaces, which every container of the pod joins.
 *
 * Plays containerd's sandbox ("pause") container (`internal/cri/server/sandbox_run.go`,
 * `podsandbox/sandbox_run.go`) and the loopback CNI plugin: bubblewrap makes new network (with
 * `lo` up, nothing else), IPC, UTS (the pod's hostname) and PID namespaces and runs `sleep
 * infinity` as their PID 1 under `kexec-nsexec init` with no capabilities and the seccomp
 * profile; the init lives in the pod's cgroup (its pids limit). `hostNetwork` keeps the host's
 * network and UTS namespaces, as the kubelet asks with NamespaceMode NODE.
 *
 * Differences, on purpose: no pod IP or CNI (a pod reaches only its own loopback; the cluster
 * has no pod network), and the init is `sleep` from the host's /usr rather than a pause image.
 */
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { BWRAP_INIT, hostMounts, INIT_PATH, READY_FD, SECCOMP_FD } from './isolation.js';
import { privilegeArgs, type Privileges } from './security-context.js';
import { spawnGroup } from './process-group.js';

/** How long a container or pod init may take to report its pid. */
export const INIT_START_TIMEOUT_MS = 10_000;

export interface PodInitOptions {
  helper: string;
  hostname: string;
  hostNetwork: boolean;
  cgroupDirs: string[];
  pidFile: string;
  /** The compiled seccomp filter of POD_INIT_PRIVILEGES (SeccompPrograms). */
  seccompFile: string;
}

/** The pod init runs with nothing: no capabilities, the default seccomp profile. */
export const POD_INIT_PRIVILEGES: Privileges = {
  uid: 0,
  gid: 0,
  groups: [],
  capabilities: [],
  seccomp: 'runtime-default',
  privileged: false,
  readOnlyRootFilesystem: true,
};

export function startPodInit(o: PodInitOptions): ChildProcess {
  const args = [
    'join',
    ...o.cgroupDirs.flatMap((d) => ['--cgroup', d]),
    '--pid-file',
    o.pidFile,
    '--seccomp-pass',
    o.seccompFile,
    '--',
    ...BWRAP_INIT,
    '--unshare-ipc',
    ...(o.hostNetwork ? [] : ['--unshare-net', '--unshare-uts', '--hostname', o.hostname]),
    ...hostMounts(),
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--ro-bind',
    o.helper,
    INIT_PATH,
    '--remount-ro',
    '/',
    '--clearenv',
    '--',
    INIT_PATH,
    'init',
    '--ready-fd',
    String(READY_FD),
    ...privilegeArgs(POD_INIT_PRIVILEGES, { fd: SECCOMP_FD }),
    '--',
    'sleep',
    'infinity',
  ];
  return spawnGroup({ file: o.helper, args, cwd: '/', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } }, [
    'ignore',
    'ignore',
    'pipe',
  ]);
}

/**
 * The pid the helper wrote to `pidFile` (bubblewrap's child: the init inside the new namespaces),
 * once it is there; rejects when `proc` exits first or after INIT_START_TIMEOUT_MS.
 */
export async function waitForInitPid(
  proc: Pick<ChildProcess, 'pid' | 'exitCode' | 'signalCode'> & { stderr: NodeJS.ReadableStream | null },
  pidFile: string,
  what: string,
): Promise<number> {
  let stderr = '';
  proc.stderr?.on('data', (c: Buffer) => {
    if (stderr.length < 4096) stderr += c.toString();
  });
  const deadline = Date.now() + INIT_START_TIMEOUT_MS;
  for (let delay = 2; ; delay = Math.min(delay * 2, 10)) {
    try {
      const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) return pid;
    } catch {
      // not written yet
    }
    if (proc.exitCode !== null || proc.signalCode !== null || proc.pid === undefined) {
      throw new Error(
        `${what} exited before it started: ${stderr.trim() || `exit ${proc.exitCode ?? proc.signalCode}`}`,
      );
    }
    if (Date.now() > deadline) throw new Error(`${what} did not start within ${INIT_START_TIMEOUT_MS} ms`);
    await sleep(delay);
  }
}
