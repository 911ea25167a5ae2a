/**
 * Container logs end to end inside the shim: the main process's stdout and stderr land in the CRI
 * log file at `log_directory`/`log_path`, ContainerStatus reports that path, and the shared reader
 * follows it until the container exits (its `isRunning` asks CRI ContainerStatus, as the kubelet's).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectRuntime, type RuntimeServiceClient } from '../shared/cri/client.js';
import { parseLogLine } from '../shared/cri/log-format.js';
import { readCriLog } from '../shared/cri/logs.js';
import { startCriShim, type CriShim } from './server.js';

let tmp: string;
let shim: CriShim;
let rt: RuntimeServiceClient;
let sandboxId: string;
let logDir: string;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-logs-'));
  logDir = path.join(tmp, 'pods', 'default_logs_uid-1');
  shim = await startCriShim({
    listen: `unix://${tmp}/cri.sock`,
    root: path.join(tmp, 'root'),
    isolation: 'none',
    log: () => {},
    maxLogLineBytes: 16,
  });
  rt = connectRuntime(shim.endpoint);
  ({ pod_sandbox_id: sandboxId } = await rt.runPodSandbox({
    config: { metadata: { name: 'logs', namespace: 'default', uid: 'uid-1' }, log_directory: logDir },
  }));
});

afterAll(async () => {
  rt?.close();
  await shim?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

async function run(name: string, script: string, extra: { log_path?: string; stdin?: boolean } = {}) {
  const { container_id } = await rt.createContainer({
    pod_sandbox_id: sandboxId,
    config: { metadata: { name }, image: { image: 'busybox' }, command: ['sh', '-c', script], ...extra },
  });
  await rt.startContainer({ container_id });
  return container_id;
}

const isRunning = (id: string) => async () =>
  (await rt.containerStatus({ container_id: id })).status?.state === 'CONTAINER_RUNNING';

/** The whole log per stream, once the container has exited (follow ends then: that is the wait). */
async function exited(id: string): Promise<{ stdout: string; stderr: string }> {
  const { status } = await rt.containerStatus({ container_id: id });
  const out = { stdout: '', stderr: '' };
  const opts = { follow: true, isRunning: isRunning(id), pollIntervalMs: 100 };
  for await (const c of readCriLog(status!.log_path, opts)) out[c.stream] += c.data.toString();
  return out;
}

test('stdout and stderr lines in the CRI format at log_directory/log_path, reported by ContainerStatus', async () => {
  const id = await run(
    'writer',
    'echo out-1; echo err-1 >&2; printf "abcdefghijklmnopqrst\\n"; printf tail',
    {
      log_path: 'writer/0.log',
    },
  );
  // Two pipes: the order between stdout and stderr is not defined, within each stream it is.
  expect(await exited(id)).toEqual({ stdout: 'out-1\nabcdefghijklmnopqrst\ntail', stderr: 'err-1\n' });
  const { status } = await rt.containerStatus({ container_id: id });
  expect(status!.log_path).toBe(path.join(logDir, 'writer', '0.log'));
  const lines = fs.readFileSync(status!.log_path, 'utf8').split('\n').slice(0, -1);
  for (const l of lines) {
    expect(l).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z (stdout|stderr) [FP] /);
  }
  const parsed = lines.map((l) => parseLogLine(Buffer.from(`${l}\n`))!);
  const byStream = (s: string) =>
    parsed.filter((p) => p.stream === s).map((p) => `${p.partial ? 'P' : 'F'}:${p.content.toString()}`);
  expect(byStream('stdout')).toEqual(['F:out-1\n', 'P:abcdefghijklmnop', 'F:qrst\n', 'P:tail']);
  expect(byStream('stderr')).toEqual(['F:err-1\n']);
});

test('follow sees lines as the container writes them and ends when it exits', async () => {
  const id = await run('talker', 'echo started; read x; echo "got $x"; echo bye >&2', {
    log_path: 'talker/0.log',
    stdin: true,
  });
  const { status } = await rt.containerStatus({ container_id: id });
  const seen: string[] = [];
  for await (const c of readCriLog(status!.log_path, {
    follow: true,
    timestamps: true,
    isRunning: isRunning(id),
    pollIntervalMs: 100,
  })) {
    seen.push(c.data.toString());
    // Only once the first line was read does the container get its input.
    if (seen.length === 1) shim.runtime.containers.get(id)!.main!.stdin!.end('hello\n');
  }
  expect(seen.map((s) => s.replace(/^\S+ /, ''))).toEqual(['started\n', 'got hello\n', 'bye\n']);
  expect(seen[0]).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z started\n$/);
});

test('without log_path the log still exists, under the container directory', async () => {
  const id = await run('nolog', 'echo fallback');
  expect(await exited(id)).toEqual({ stdout: 'fallback\n', stderr: '' });
  const { status } = await rt.containerStatus({ container_id: id });
  expect(status!.log_path).toBe(path.join(tmp, 'root', 'containers', id, 'container.log'));
});
