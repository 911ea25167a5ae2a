/**
 * One lab per state directory: `DIR/lab.pid` holds the pid of the process running it, created
 * exclusively (O_EXCL) before the lab touches anything else in DIR. A second `npm start` on the
 * same DIR finds the first one alive and stops with a message, touching nothing (issue #13: it
 * replaced the running lab's signing key, deleted its CRI socket, then failed on EADDRINUSE). A
 * pid file whose process is gone (a SIGKILLed lab) is stale and taken over.
 *
 * Upstream has no counterpart (kubeadm init refuses a node whose ports and manifests are taken).
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';

export const LOCK_FILE = 'lab.pid';

export class LabRunningError extends Error {
  override name = 'LabRunningError';
}

export interface LabLock {
  release(): void;
}

/** Takes DIR for this process, or throws LabRunningError naming the lab that holds it. */
export function acquireLabLock(dir: string): LabLock {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx', mode: 0o600 });
      return {
        release: () => {
          if (readPid(file) === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const pid = readPid(file);
    if (pid !== undefined && alive(pid)) {
      const server = kubeconfigServer(dir);
      throw new LabRunningError(
        `a lab is already running in ${dir} (pid ${pid}${server ? `, apiserver ${server}` : ''}): ` +
          `use it, stop it first (Ctrl-C where it runs, or kill ${pid}), or start another with --dir`,
      );
    }
    // Left by a lab that died without cleaning up: take it over.
    fs.rmSync(file, { force: true });
  }
  throw new LabRunningError(`${file}: another lab is starting in ${dir} at the same time`);
}

function readPid(file: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Running (not a zombie). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

function kubeconfigServer(dir: string): string | undefined {
  try {
    const doc = YAML.parse(fs.readFileSync(path.join(dir, 'kubeconfig'), 'utf8')) as {
      clusters?: { cluster?: { server?: string } }[];
    };
    return doc.clusters?.[0]?.cluster?.server;
  } catch {
    return undefined;
  }
}
