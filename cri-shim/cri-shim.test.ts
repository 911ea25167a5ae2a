/**
 * Drives the cri-shim over its real unix socket with the shared CRI client, and its streaming
 * server with a raw `ws` client speaking v5.channel.k8s.io. Runs once per isolation mode that
 * works on this machine: `bwrap` (asserting the isolation) where bubblewrap works, and always
 * `none` (asserting the documented fallback).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { connectRuntime, GrpcStatus, isGrpcError, type RuntimeServiceClient } from '../shared/cri/client.js';
import { bwrapWorks, chooseIsolation, type IsolationMode } from './isolation.js';
import { RequestCache } from './request-cache.js';
import { startCriShim, type CriShim } from './server.js';
import { waitFor } from '../shared/test-support/poll.js';
import { wsExec, wsRefusal } from '../shared/test-support/ws-exec.js';
import { alive, groupMembers } from '../shared/test-support/procfs.js';

const HAVE_BWRAP = bwrapWorks();
const MODES: IsolationMode[] = HAVE_BWRAP ? ['bwrap', 'none'] : ['none'];

async function grpcError(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    if (isGrpcError(e)) return { code: e.code, details: e.details };
    throw e;
  }
  throw new Error('expected the call to fail');
}

test('isolation auto: bwrap when it works, else none with a loud warning', () => {
  const lines: string[] = [];
  const mode = chooseIsolation('auto', (l) => lines.push(l));
  if (HAVE_BWRAP) {
    expect(mode).toBe('bwrap');
    expect(lines).toEqual([]);
  } else {
    expect(mode).toBe('none');
    expect(lines.join('\n')).toMatch(/NOT isolated/);
  }
});

describe.each(MODES)('cri-shim with isolation %s', (mode) => {
  let tmp: string;
  let shim: CriShim;
  let rt: RuntimeServiceClient;
  let sandboxId: string;
  let containerId: string;
  const podName = `demo-${mode}`;
  const labels = {
    'io.kubernetes.pod.namespace': 'default',
    'io.kubernetes.pod.name': podName,
    'io.kubernetes.container.name': 'main',
  };

  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-test-'));
    shim = await startCriShim({
      listen: `unix://${tmp}/cri.sock`,
      root: path.join(tmp, 'root'),
      isolation: mode,
      log: () => {},
      requestCache: new RequestCache(60_000, 5),
    });
    expect(shim.isolation).toBe(mode);
    rt = connectRuntime(shim.endpoint);
    await rt.waitForReady(5000);
    ({ pod_sandbox_id: sandboxId } = await rt.runPodSandbox({
      config: { metadata: { name: podName, namespace: 'default', uid: 'uid-1' }, labels: { app: 'demo' } },
    }));
    ({ container_id: containerId } = await rt.createContainer({
      pod_sandbox_id: sandboxId,
      config: { metadata: { name: 'main' }, image: { image: 'docker.io/library/busybox:latest' }, labels },
    }));
    await rt.startContainer({ container_id: containerId });
  });

  afterAll(async () => {
    rt?.close();
    await shim?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const exec = async (cmd: string[], flags: { stdin?: boolean; stderr?: boolean; tty?: boolean } = {}) =>
    (await rt.exec({ container_id: containerId, cmd, stdout: true, stderr: true, ...flags })).url;

  test('Version names the runtime', async () => {
    const v = await rt.version({ version: 'v1' });
    expect(v).toMatchObject({ runtime_name: 'kexec-cri-shim', runtime_api_version: 'v1' });
  });

  test('the kubelet finds the container by its labels; status shows it running', async () => {
    const { containers } = await rt.listContainers({ filter: { label_selector: labels } });
    expect(containers.map((c) => c.id)).toEqual([containerId]);
    expect(containers[0]).toMatchObject({
      pod_sandbox_id: sandboxId,
      state: 'CONTAINER_RUNNING',
      metadata: { name: 'main' },
    });
    const other = await rt.listContainers({
      filter: { label_selector: { ...labels, 'io.kubernetes.pod.name': 'x' } },
    });
    expect(other.containers).toEqual([]);
    const { status } = await rt.containerStatus({ container_id: containerId });
    expect(status).toMatchObject({ state: 'CONTAINER_RUNNING', exit_code: 0, finished_at: 0 });
    expect(status!.started_at).toBeGreaterThan(0);
    const sb = await rt.podSandboxStatus({ pod_sandbox_id: sandboxId });
    expect(sb.status).toMatchObject({ state: 'SANDBOX_READY', metadata: { name: podName } });
    const { items } = await rt.listPodSandbox({ filter: { label_selector: { app: 'demo' } } });
    expect(items.map((i) => i.id)).toEqual([sandboxId]);
  });

  test('exec streams stdout over v5 and ends with a Success status', async () => {
    const r = await wsExec(await exec(['echo', 'hello world']));
    expect(r.protocol).toBe('v5.channel.k8s.io');
    expect(r.stdout).toBe('hello world\n');
    expect(r.status).toEqual({ metadata: {}, status: 'Success' });
    expect(r.channels[0]).toBe(1); // the empty "ready" message on stdout comes first
  });

  test("the container's filesystem: the image's demo files, its own writable dirs", async () => {
    if (mode === 'bwrap') {
      const ls = await wsExec(await exec(['ls', '/root']));
      expect(ls.stdout.split('\n').filter(Boolean).sort()).toEqual(['README.txt', 'hello.sh', 'notes']);
      const todo = await wsExec(await exec(['cat', '/root/notes/todo.txt']));
      expect(todo.stdout).toMatch(/kexec demo/);
      const pwd = await wsExec(await exec(['pwd']));
      expect(pwd.stdout).toBe('/root\n');
      // Writes land in the container's directory on the host, nowhere else.
      await wsExec(await exec(['sh', '-c', 'echo scratch > /tmp/f && echo kept > /root/new.txt']));
      const dir = path.join(tmp, 'root', 'containers', containerId);
      expect(fs.readFileSync(path.join(dir, 'tmp', 'f'), 'utf8')).toBe('scratch\n');
      expect(fs.readFileSync(path.join(dir, 'root', 'new.txt'), 'utf8')).toBe('kept\n');
    } else {
      // Fallback: cwd (and HOME) is the container's root directory; absolute paths are the host's.
      const ls = await wsExec(await exec(['ls']));
      expect(ls.stdout.split('\n').filter(Boolean)).toEqual(
        expect.arrayContaining(['README.txt', 'hello.sh', 'notes']),
      );
      const pwd = await wsExec(await exec(['sh', '-c', 'pwd; echo $HOME']));
      const dir = fs.realpathSync(path.join(tmp, 'root', 'containers', containerId, 'root'));
      expect(pwd.stdout).toBe(`${dir}\n${dir}\n`);
    }
  });

  test('the sandbox hostname is the pod name', async () => {
    const env = await wsExec(await exec(['sh', '-c', 'echo $HOSTNAME']));
    expect(env.stdout).toBe(`${podName}\n`);
    if (mode === 'bwrap') {
      const h = await wsExec(await exec(['hostname']));
      expect(h.stdout).toBe(`${podName}\n`);
    }
  });

  test('a non-zero exit code arrives as a NonZeroExitCode Status with the code', async () => {
    const r = await wsExec(await exec(['sh', '-c', 'echo out; echo err >&2; exit 3']));
    expect(r.stdout).toBe('out\n');
    expect(r.stderr).toBe('err\n');
    expect(r.status).toMatchObject({
      status: 'Failure',
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
  });

  test('stdin is streamed to the process and the v5 CLOSE ends it', async () => {
    const r = await wsExec(await exec(['cat'], { stdin: true }), { stdin: 'line one\nline two\n' });
    expect(r.stdout).toBe('line one\nline two\n');
    expect(r.status?.status).toBe('Success');
  });

  test('a larger output arrives intact (backpressure, no loss)', async () => {
    const r = await wsExec(
      await exec(['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do echo line-$i; i=$((i+1)); done']),
    );
    const lines = r.stdout.split('\n').filter(Boolean);
    expect(lines).toHaveLength(20000);
    expect(lines[19999]).toBe('line-19999');
    expect(r.status?.status).toBe('Success');
  });

  test('with tty, stderr is not a separate stream: it is merged into stdout', async () => {
    const r = await wsExec(await exec(['sh', '-c', 'echo to-stderr >&2'], { tty: true, stderr: true }));
    expect(r.channels).not.toContain(2);
    expect(r.stdout).toBe('to-stderr\r\n'); // a terminal's output mode turns \n into \r\n
  });

  test('a command that does not exist ends with an InternalError Status', async () => {
    const r = await wsExec(await exec(['no-such-command']));
    expect(r.status).toMatchObject({
      status: 'Failure',
      reason: 'InternalError',
      message: 'exec: "no-such-command": executable file not found in $PATH',
    });
  });

  test('tokens are single use: the second upgrade gets a 404 Status', async () => {
    const url = await exec(['true']);
    expect((await wsExec(url)).status?.status).toBe('Success');
    const refusal = await wsRefusal(url);
    expect(refusal.code).toBe(404);
    expect(JSON.parse(refusal.body)).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      reason: 'NotFound',
      code: 404,
    });
    expect((await wsRefusal(`${shim.streamingUrl}/exec/not-a-token`)).code).toBe(404);
    // An exec token does not open an attach.
    const execUrl = await exec(['true']);
    expect((await wsRefusal(execUrl.replace('/exec/', '/attach/'))).code).toBe(404);
  });

  test('a SPDY POST is refused with a Status, not spliced', async () => {
    const url = new URL(await exec(['true']));
    const res = await fetch(url, { method: 'POST' });
    // No upgrade headers: a plain request on a streaming route.
    expect(res.status).toBe(400);
    expect(((await res.json()) as { status: string }).status).toBe('Failure');
  });

  test('at most N outstanding tokens: then RESOURCE_EXHAUSTED', async () => {
    const urls: string[] = [];
    for (let i = 0; i < 5; i++) {
      try {
        urls.push(await exec(['true']));
      } catch (e) {
        expect(isGrpcError(e, GrpcStatus.RESOURCE_EXHAUSTED)).toBe(true);
        break;
      }
    }
    const err = await grpcError(exec(['true']));
    expect(err.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    for (const u of urls) await wsExec(u); // using them frees the slots
    expect((await wsExec(await exec(['true']))).status?.status).toBe('Success');
  });

  test('Exec validation: no streams, empty command, unknown container', async () => {
    expect((await grpcError(rt.exec({ container_id: containerId, cmd: ['true'] }))).code).toBe(
      GrpcStatus.INVALID_ARGUMENT,
    );
    expect((await grpcError(rt.exec({ container_id: containerId, cmd: [], stdout: true }))).code).toBe(
      GrpcStatus.INVALID_ARGUMENT,
    );
    const nf = await grpcError(rt.exec({ container_id: 'nope', cmd: ['true'], stdout: true }));
    expect(nf.code).toBe(GrpcStatus.NOT_FOUND);
    expect((await grpcError(rt.containerStatus({ container_id: 'nope' }))).code).toBe(GrpcStatus.NOT_FOUND);
    expect((await grpcError(rt.startContainer({ container_id: 'nope' }))).code).toBe(GrpcStatus.NOT_FOUND);
    expect((await grpcError(rt.podSandboxStatus({ pod_sandbox_id: 'nope' }))).code).toBe(
      GrpcStatus.NOT_FOUND,
    );
    expect((await grpcError(rt.portForward({ pod_sandbox_id: 'nope', port: [80] }))).code).toBe(
      GrpcStatus.NOT_FOUND,
    );
  });

  test('an unknown image fails CreateContainer with NOT_FOUND', async () => {
    const err = await grpcError(
      rt.createContainer({
        pod_sandbox_id: sandboxId,
        config: { metadata: { name: 'x' }, image: { image: 'nope:1.0' } },
      }),
    );
    expect(err.code).toBe(GrpcStatus.NOT_FOUND);
    expect(err.details).toMatch(/^image "nope:1.0" not found/);
  });

  test('ExecSync returns output and exit code', async () => {
    const r = await rt.execSync({
      container_id: containerId,
      cmd: ['sh', '-c', 'echo hi; echo oops >&2; exit 2'],
    });
    expect(r.stdout.toString()).toBe('hi\n');
    expect(r.stderr.toString()).toBe('oops\n');
    expect(r.exit_code).toBe(2);
  });

  test('the client going away kills the exec process group', async () => {
    const c = shim.runtime.containers.get(containerId)!;
    const before = new Set(c.execs);
    let pid = 0;
    await wsExec(await exec(['sh', '-c', 'sleep 1000 & sleep 1000']), {
      onOpen: (ws) => {
        // The process is spawned before the handshake completes.
        const child = [...c.execs].find((p) => !before.has(p))!;
        pid = child.pid!;
        expect(alive(pid)).toBe(true);
        ws.terminate();
      },
    }).catch(() => {});
    expect(pid).toBeGreaterThan(0);
    await waitFor('exec group to die', () => !alive(pid) && groupMembers(pid).length === 0, 5000);
  });

  test('a stopped container refuses exec with FAILED_PRECONDITION; RemovePodSandbox leaves nothing', async () => {
    const { container_id: id2 } = await rt.createContainer({
      pod_sandbox_id: sandboxId,
      config: { metadata: { name: 'second' }, image: { image: 'busybox' }, command: ['sleep', '1000'] },
    });
    await rt.startContainer({ container_id: id2 });
    const info = JSON.parse((await rt.containerStatus({ container_id: id2, verbose: true })).info.info!) as {
      pid: number;
    };
    expect(alive(info.pid)).toBe(true);
    await rt.stopContainer({ container_id: id2, timeout: 0 });
    const { status } = await rt.containerStatus({ container_id: id2 });
    expect(status).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 137 });
    expect(status!.finished_at).toBeGreaterThan(0);
    expect(alive(info.pid)).toBe(false);
    const err = await grpcError(rt.exec({ container_id: id2, cmd: ['true'], stdout: true }));
    expect(err.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(err.details).toMatch(/is not running \(state: exited\)/);

    const mainInfo = JSON.parse(
      (await rt.containerStatus({ container_id: containerId, verbose: true })).info.info!,
    ) as {
      pid: number;
    };
    expect(alive(mainInfo.pid)).toBe(true);
    await rt.stopPodSandbox({ pod_sandbox_id: sandboxId });
    await rt.removePodSandbox({ pod_sandbox_id: sandboxId });
    expect(alive(mainInfo.pid)).toBe(false);
    expect(groupMembers(mainInfo.pid)).toEqual([]);
    expect(fs.existsSync(path.join(tmp, 'root', 'containers', containerId))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'root', 'containers', id2))).toBe(false);
    expect(fs.existsSync(path.join(tmp, 'root', 'sandboxes', sandboxId))).toBe(false);
    expect((await rt.listContainers({})).containers).toEqual([]);
    expect((await rt.listPodSandbox({})).items).toEqual([]);
    await rt.removePodSandbox({ pod_sandbox_id: sandboxId }); // idempotent
  });
});

test('listens on tcp:// too, and close() removes nothing it did not create', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-tcp-'));
  const shim = await startCriShim({
    listen: 'tcp://127.0.0.1:0',
    root: tmp,
    isolation: 'none',
    log: () => {},
  });
  try {
    expect(shim.endpoint).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(shim.endpoint).not.toBe('tcp://127.0.0.1:0');
    const rt = connectRuntime(shim.endpoint);
    expect((await rt.version()).runtime_name).toBe('kexec-cri-shim');
    rt.close();
  } finally {
    await shim.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
