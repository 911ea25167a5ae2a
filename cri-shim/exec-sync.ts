/**
 * ExecSync: run a command in a container to completion and return its output and exit code
 * (what the kubelet uses for exec probes).
 *
 * Mirrors containerd's CRI `container_execsync.go`: output is capped at 16 MiB per stream — the
 * rest is discarded while the command keeps running (CVE-2022-1708, CVE-2022-31030: an unbounded
 * buffer let a container exhaust the runtime's memory); a timeout kills the process group and is
 * reported as DEADLINE_EXCEEDED; stdin is empty.
 */
import grpc from '@grpc/grpc-js';
import type { ExecSyncResponse } from '../shared/cri/types.js';
import { CriError } from './errors.js';
import { exitCodeOf, killGroup } from './process-group.js';
import type { ContainerRuntime } from './runtime.js';

export const EXEC_SYNC_OUTPUT_LIMIT = 16 * 1024 * 1024;

export function execSync(
  runtime: ContainerRuntime,
  containerId: string,
  cmd: string[],
  timeoutSec: number,
): Promise<ExecSyncResponse> {
  const child = runtime.spawnExec(containerId, cmd, ['ignore', 'pipe', 'pipe']);
  const collect = (stream: NodeJS.ReadableStream | null): (() => Buffer) => {
    const chunks: Buffer[] = [];
    let size = 0;
    stream?.on('data', (c: Buffer) => {
      if (size >= EXEC_SYNC_OUTPUT_LIMIT) return;
      const part = c.subarray(0, EXEC_SYNC_OUTPUT_LIMIT - size);
      chunks.push(part);
      size += part.length;
    });
    return () => Buffer.concat(chunks);
  };
  const stdout = collect(child.stdout);
  const stderr = collect(child.stderr);
  return new Promise((resolve, reject) => {
    let timedOut = false;
    const timer =
      timeoutSec > 0
        ? setTimeout(() => {
            timedOut = true;
            killGroup(child.pid);
          }, timeoutSec * 1000)
        : undefined;
    child.once('error', (err) => {
      clearTimeout(timer);
      if (child.pid === undefined) reject(CriError.internal(`failed to exec in container: ${err.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new CriError(
            grpc.status.DEADLINE_EXCEEDED,
            `command ${JSON.stringify(cmd)} timed out after ${timeoutSec}s`,
          ),
        );
        return;
      }
      resolve({ stdout: stdout(), stderr: stderr(), exit_code: exitCodeOf(code, signal) });
    });
  });
}
