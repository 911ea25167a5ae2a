/**
 * What a container's processes may do: its user, capabilities and seccomp profile, from the CRI
 * `LinuxContainerSecurityContext` the kubelet sends.
 *
 * Mirrors containerd's CRI plugin (`internal/cri/server/container_create_linux.go`,
 * `pkg/oci/spec_opts.go` WithCapabilities/WithAddedCapabilities/WithDroppedCapabilities) and the
 * OCI defaults of `pkg/oci/spec.go`: the 14 default capabilities below, `capabilities.add` then
 * `capabilities.drop` applied to them (`ALL` allowed in either), `privileged` = every capability
 * and no seccomp filter, the user from `run_as_user`/`run_as_group` (image default root),
 * `readonly_rootfs`. The seccomp profile: RuntimeDefault or Unconfined.
 *
 * Differences, on purpose: `no_new_privs` is always set (bubblewrap sets it for every sandbox, so
 * `allowPrivilegeEscalation: true` cannot be honoured and the apiserver refuses it); a Localhost
 * seccomp profile, `run_as_username` and namespace options other than the pod's are refused
 * (INVALID_ARGUMENT) rather than ignored.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type * as T from '../shared/cri/types.js';
import { CriError } from './errors.js';

/** containerd's and Docker's default set (containerd pkg/oci/spec.go defaultUnixCaps). */
export const DEFAULT_CAPABILITIES = [
  'CHOWN',
  'DAC_OVERRIDE',
  'FSETID',
  'FOWNER',
  'MKNOD',
  'NET_RAW',
  'SETGID',
  'SETUID',
  'SETFCAP',
  'SETPCAP',
  'NET_BIND_SERVICE',
  'SYS_CHROOT',
  'KILL',
  'AUDIT_WRITE',
] as const;

/** Every capability name Linux knows (linux/capability.h), for checking what a pod asks for. */
const KNOWN_CAPABILITIES = new Set([
  ...DEFAULT_CAPABILITIES,
  'DAC_READ_SEARCH',
  'LINUX_IMMUTABLE',
  'NET_BROADCAST',
  'NET_ADMIN',
  'IPC_LOCK',
  'IPC_OWNER',
  'SYS_MODULE',
  'SYS_RAWIO',
  'SYS_PTRACE',
  'SYS_PACCT',
  'SYS_ADMIN',
  'SYS_BOOT',
  'SYS_NICE',
  'SYS_RESOURCE',
  'SYS_TIME',
  'SYS_TTY_CONFIG',
  'LEASE',
  'AUDIT_CONTROL',
  'MAC_OVERRIDE',
  'MAC_ADMIN',
  'SYSLOG',
  'WAKE_ALARM',
  'BLOCK_SUSPEND',
  'AUDIT_READ',
  'PERFMON',
  'BPF',
  'CHECKPOINT_RESTORE',
]);

export interface Privileges {
  uid: number;
  gid: number;
  groups: number[];
  /** Capability names without `CAP_`, or ['ALL']. */
  capabilities: string[];
  seccomp: 'runtime-default' | 'unconfined';
  privileged: boolean;
  readOnlyRootFilesystem: boolean;
}

/** `CAP_SYS_ADMIN`, `sys_admin` → `SYS_ADMIN`; INVALID_ARGUMENT for a name Linux does not know. */
function capName(raw: string): string {
  const name = raw.toUpperCase().replace(/^CAP_/, '');
  if (name !== 'ALL' && !KNOWN_CAPABILITIES.has(name)) throw CriError.invalid(`unknown capability "${raw}"`);
  return name;
}

/** The privileges of a container's processes (its main process and every exec). */
export function privilegesOf(sc: T.LinuxContainerSecurityContext | null | undefined): Privileges {
  // The network namespace is the sandbox's to choose (hostNetwork, pod-sandbox.ts); a container
  // cannot have the host's or another container's pid or ipc namespace here.
  const ns = sc?.namespace_options;
  if (ns && (ns.ipc === 'NODE' || ns.pid === 'NODE' || ns.pid === 'POD' || ns.pid === 'TARGET'))
    throw CriError.invalid('host or target pid/ipc namespaces are not supported by this runtime');
  if (sc?.run_as_username) throw CriError.invalid('run_as_username is not supported by this runtime');
  if (sc?.seccomp?.profile_type === 'Localhost')
    throw CriError.invalid('Localhost seccomp profiles are not supported by this runtime');
  if (sc?.run_as_group && !sc.run_as_user)
    throw CriError.invalid('run_as_group should only be specified when run_as_user is specified');
  const privileged = !!sc?.privileged;
  let caps: Set<string>;
  if (privileged) {
    caps = new Set(['ALL']);
  } else {
    caps = new Set(DEFAULT_CAPABILITIES);
    const add = (sc?.capabilities?.add_capabilities ?? []).map(capName);
    const drop = (sc?.capabilities?.drop_capabilities ?? []).map(capName);
    // containerd: add first (ALL = every known one), then drop (ALL = none left).
    if (add.includes('ALL')) caps = new Set(KNOWN_CAPABILITIES);
    else for (const c of add) caps.add(c);
    if (drop.includes('ALL')) caps.clear();
    else for (const c of drop) caps.delete(c);
    // …except what was explicitly added after dropping ALL, as containerd does.
    if (drop.includes('ALL')) for (const c of add) if (c !== 'ALL') caps.add(c);
  }
  const unconfined = privileged || sc?.seccomp?.profile_type === 'Unconfined';
  const uid = sc?.run_as_user ? Number(sc.run_as_user.value) : 0;
  const gid = sc?.run_as_group ? Number(sc.run_as_group.value) : 0;
  for (const [what, id] of [
    ['run_as_user', uid],
    ['run_as_group', gid],
  ] as const) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe)
      throw CriError.invalid(`${what} ${id} is out of range`);
  }
  return {
    uid,
    gid,
    groups: (sc?.supplemental_groups ?? []).map(Number).filter((g) => Number.isInteger(g) && g >= 0),
    capabilities: [...caps],
    seccomp: unconfined ? 'unconfined' : 'runtime-default',
    privileged,
    readOnlyRootFilesystem: !!sc?.readonly_rootfs,
  };
}

/**
 * The runtime-default filter of each capability set (the profile allows more to a container with
 * more capabilities), compiled once by `kexec-nsexec profile --export` into `dir`: libseccomp
 * takes tens of milliseconds to build it, too long to pay on every exec.
 */
export class SeccompPrograms {
  private readonly files = new Map<string, string>();

  constructor(
    private readonly helper: string,
    private readonly dir: string,
  ) {}

  /** The compiled filter for `p`, or undefined when it runs unconfined. */
  fileFor(p: Privileges): string | undefined {
    if (p.seccomp !== 'runtime-default') return undefined;
    const key = [...p.capabilities].sort().join(',');
    const known = this.files.get(key);
    if (known) return known;
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const file = path.join(this.dir, `${createHash('sha256').update(key).digest('hex').slice(0, 16)}.bpf`);
    const r = spawnSync(this.helper, ['profile', '--caps', key, '--export', file], {
      encoding: 'utf8',
      timeout: 10_000,
    });
    if (r.status !== 0) throw new Error(`compiling the seccomp profile: ${r.stderr || r.error?.message}`);
    this.files.set(key, file);
    return file;
  }
}

/**
 * The helper's flags for these privileges (kexec-nsexec's FINAL options); the filter from a file
 * (an exec reads it on the host) or from fd 5 (a container's init, handed on by `join`).
 */
export function privilegeArgs(p: Privileges, seccomp: { file?: string; fd?: number } = {}): string[] {
  const filter =
    p.seccomp === 'unconfined'
      ? ['--seccomp', 'unconfined']
      : seccomp.fd !== undefined
        ? ['--seccomp-fd', String(seccomp.fd)]
        : seccomp.file
          ? ['--seccomp-file', seccomp.file]
          : ['--seccomp', 'runtime-default'];
  return [
    '--uid',
    String(p.uid),
    '--gid',
    String(p.gid),
    ...(p.groups.length ? ['--groups', p.groups.join(',')] : []),
    '--caps',
    p.capabilities.join(','),
    ...filter,
  ];
}
