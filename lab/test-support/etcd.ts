/**
 * Test helper: a real etcd (../etcd.ts) on loopback with free ports and its data in a temp dir,
 * ready (bounded wait on /health) before the test goes on. `stop()` stops it and removes the
 * dir; `restart()` stops it and starts it again on the same ports and data, as after a crash.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEtcd, type EtcdProcess } from '../etcd.js';
import { errorMessage } from '../../shared/logging.js';

export interface TestEtcd {
  /** The client URL, for `--etcd-servers`. */
  endpoint: string;
  dataDir: string;
  /** Its output so far (for failure messages). */
  logs: string[];
  /** SIGKILL (default) or SIGTERM, then the same member again on the same ports and data. */
  restart(signal?: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestEtcd(readyTimeoutMs = 20_000): Promise<TestEtcd> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-test-'));
  const dataDir = path.join(dir, 'data');
  const logs: string[] = [];
  const log = (line: string) => void logs.push(line);
  let proc: EtcdProcess;
  try {
    proc = await startEtcd({ dataDir, log, readyTimeoutMs });
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw new Error(`${errorMessage(err)}\n${logs.join('\n')}`);
  }
  const clientPort = Number(new URL(proc.endpoint).port);
  const peerPort = Number(new URL(proc.peerEndpoint).port);
  return {
    endpoint: proc.endpoint,
    dataDir,
    logs,
    async restart(signal: NodeJS.Signals = 'SIGKILL') {
      process.kill(-proc.pid, signal);
      await proc.exited;
      proc = await startEtcd({ dataDir, log, readyTimeoutMs, clientPort, peerPort });
    },
    async stop() {
      await proc.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
