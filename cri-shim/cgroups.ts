/**
 * Resource limits for pods and containers through cgroups: a pids limit on every pod, the memory
 * limit of a container, and the OOM-kill count that turns an exit 137 into `OOMKilled`.
 *
 * Plays the kubelet's pod cgroup (`pkg/kubelet/cm/pod_container_manager_linux.go`, with
 * `--pod-max-pids` as `pids.max`) and runc's cgroup managers (`libcontainer/cgroups/fs`
 * memory.go and pids.go for v1, `fs2` for v2), and containerd's OOM event that sets the
 * container's reason to `OOMKilled` (`internal/cri/server/events.go`). Layout:
 *
 *   <the shim's own cgroup>/kexec-cri-<pid>-<random>/pod-<sandbox>/             pids.max
 *   <the shim's own cgroup>/kexec-cri-<pid>-<random>/pod-<sandbox>/<container>/ memory limit
 *
 * Differences, on purpose: the runtime (not the kubelet) makes the pod cgroup, because the
 * kubelet-sim has no cgroup manager; everything nests under the cri-shim's own cgroup rather
 * than the hierarchy's root, so a lab started inside another supervisor (a CI job, a container)
 * stays inside that supervisor's accounting. cgroup v1 needs the `memory` and `pids` controllers;
 * v2 needs them delegated to the shim's cgroup (true in a container with its own cgroup
 * namespace, not under a systemd service that has processes in it); otherwise the shim warns
 * and runs pods without limits.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

const ROOT = '/sys/fs/cgroup';
/** How long `remove` waits for the processes of a killed cgroup to be gone. */
const REMOVE_WAIT_MS = 5000;

export interface CgroupLimits {
  /** memory.limit_in_bytes (v1) / memory.max (v2); unset = unlimited. */
  memoryBytes?: number;
  /** pids.max; unset = unlimited. */
  pids?: number;
}

/** One cgroup in every controller the runtime uses: the directories a process joins. */
export interface Cgroup {
  dirs: string[];
}

export class CgroupManager {
  private constructor(
    readonly version: 1 | 2,
    /** Per controller (v1: memory, pids; v2: the one unified directory): the runtime's root. */
    private readonly roots: { memory: string; pids: string },
  ) {}

  /** The manager for this machine, or a reason why there is none. */
  static detect(): CgroupManager | string {
    let own: string;
    try {
      own = fs.readFileSync('/proc/self/cgroup', 'utf8');
    } catch {
      return 'no /proc/self/cgroup';
    }
    const pathOf = (controller: string): string | undefined => {
      for (const line of own.split('\n')) {
        const [, ctrls, p] = line.split(':');
        if (ctrls !== undefined && p !== undefined && ctrls.split(',').includes(controller)) return p;
      }
      return undefined;
    };
    // One root per runtime instance (tests run several shims in one process).
    const name = `kexec-cri-${process.pid}-${randomBytes(4).toString('hex')}`;
    if (fs.existsSync(path.join(ROOT, 'memory', 'memory.limit_in_bytes'))) {
      const mem = pathOf('memory');
      const pids = pathOf('pids');
      if (mem === undefined || pids === undefined) return 'cgroup v1 without the memory and pids controllers';
      const roots = {
        memory: path.join(ROOT, 'memory', mem, name),
        pids: path.join(ROOT, 'pids', pids, name),
      };
      for (const r of Object.values(roots)) removeStale(path.dirname(r));
      try {
        for (const r of Object.values(roots)) fs.mkdirSync(r, { recursive: true });
      } catch (err) {
        return `cannot create ${roots.memory}: ${(err as Error).message}`;
      }
      return new CgroupManager(1, roots);
    }
    if (fs.existsSync(path.join(ROOT, 'cgroup.controllers'))) {
      const unified = pathOf('');
      if (unified === undefined) return 'no cgroup v2 path in /proc/self/cgroup';
      const parent = path.join(ROOT, unified);
      const root = path.join(parent, name);
      removeStale(parent);
      try {
        fs.writeFileSync(path.join(parent, 'cgroup.subtree_control'), '+memory +pids');
        fs.mkdirSync(root, { recursive: true });
        fs.writeFileSync(path.join(root, 'cgroup.subtree_control'), '+memory +pids');
      } catch (err) {
        return `cgroup v2: memory and pids are not delegated to ${parent}: ${(err as Error).message}`;
      }
      return new CgroupManager(2, { memory: root, pids: root });
    }
    return 'no cgroup hierarchy at /sys/fs/cgroup';
  }

  /** Creates the cgroup at `rel` (e.g. `pod-abc/def`) and applies `limits`. */
  create(rel: string, limits: CgroupLimits): Cgroup {
    const dirs = this.dirsOf(rel);
    for (const d of dirs) fs.mkdirSync(d, { recursive: true });
    if (this.version === 1) {
      if (limits.memoryBytes) {
        fs.writeFileSync(path.join(dirs[0]!, 'memory.limit_in_bytes'), String(limits.memoryBytes));
        // No swap beyond the limit, as the kubelet asks (memory_swap_limit_in_bytes = the limit).
        const memsw = path.join(dirs[0]!, 'memory.memsw.limit_in_bytes');
        if (fs.existsSync(memsw)) fs.writeFileSync(memsw, String(limits.memoryBytes));
      }
      if (limits.pids) fs.writeFileSync(path.join(dirs[1]!, 'pids.max'), String(limits.pids));
    } else {
      if (limits.memoryBytes) {
        fs.writeFileSync(path.join(dirs[0]!, 'memory.max'), String(limits.memoryBytes));
        fs.writeFileSync(path.join(dirs[0]!, 'memory.swap.max'), '0');
      }
      if (limits.pids) fs.writeFileSync(path.join(dirs[0]!, 'pids.max'), String(limits.pids));
      // Leaves only below: the pod's cgroup holds processes only through its containers' cgroups.
      if (!rel.includes('/'))
        fs.writeFileSync(path.join(dirs[0]!, 'cgroup.subtree_control'), '+memory +pids');
    }
    return { dirs };
  }

  /** How many processes the kernel's OOM killer has killed in the cgroup at `rel`. */
  oomKills(rel: string): number {
    const [mem] = this.dirsOf(rel);
    const file = this.version === 1 ? 'memory.oom_control' : 'memory.events';
    try {
      const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(path.join(mem!, file), 'utf8'));
      return m ? Number(m[1]) : 0;
    } catch {
      return 0;
    }
  }

  /** The number of processes in the cgroup at `rel` (pids.current). */
  pids(rel: string): number {
    const dirs = this.dirsOf(rel);
    try {
      return Number(fs.readFileSync(path.join(dirs[dirs.length - 1]!, 'pids.current'), 'utf8'));
    } catch {
      return 0;
    }
  }

  /**
   * Kills whatever is left in the cgroup at `rel` (and below) and removes it, waiting a bounded
   * time for the processes to be gone (a cgroup with processes cannot be removed).
   */
  async remove(rel: string): Promise<void> {
    const deadline = Date.now() + REMOVE_WAIT_MS;
    for (const dir of this.dirsOf(rel)) {
      for (;;) {
        killAll(dir);
        try {
          removeTree(dir);
          break;
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'ENOENT') break;
          if (code !== 'EBUSY' || Date.now() > deadline) throw err;
          await sleep(20);
        }
      }
    }
  }

  /** Removes the runtime's own root (shim shutdown), after every pod's cgroup is gone. */
  async close(): Promise<void> {
    await this.remove('');
  }

  private dirsOf(rel: string): string[] {
    if (this.version === 2) return [path.join(this.roots.memory, rel)];
    return [path.join(this.roots.memory, rel), path.join(this.roots.pids, rel)];
  }
}

/**
 * Removes the roots of runtimes that are gone (a cri-shim killed by SIGKILL cannot remove its
 * own): `kexec-cri-<pid>-…` whose process no longer runs. Their containers died with them
 * (bubblewrap's --die-with-parent); whatever is left is killed first.
 */
function removeStale(parent: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^kexec-cri-(\d+)-[0-9a-f]+$/.exec(n);
    if (!m || pidRuns(Number(m[1]))) continue;
    try {
      killAll(path.join(parent, n));
      removeTree(path.join(parent, n));
    } catch {
      // still busy (its last processes exiting): the next start tries again
    }
  }
}

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** SIGKILLs every process in `dir` and its sub-cgroups. */
function killAll(dir: string): void {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) killAll(path.join(dir, e.name));
  let procs: string;
  try {
    procs = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
  } catch {
    return;
  }
  for (const pid of procs.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone already
    }
  }
}

/** rmdir, children first (cgroup directories cannot be removed recursively in one call). */
function removeTree(dir: string): void {
  for (const e of fs.readdirSync(dir, { withFileTypes: true }))
    if (e.isDirectory()) removeTree(path.join(dir, e.name));
  fs.rmdirSync(dir);
}
