/**
 * Our CRI conformance checks, run against every runtime the lab can use (e2e/cri-conformance.test.ts):
 * the calls the kubelet-sim makes must behave the same on the cri-shim and on containerd.
 *
 * Modelled on cri-tools `pkg/validate` (critest): runtime info (Version, Status), images
 * (ImageStatus of present and absent images, ListImages, a failed pull, idempotent RemoveImage),
 * pod sandboxes (run, list with id/label/state filters, status, stop, remove, idempotence,
 * NOT_FOUND after removal), containers (create, start, stop, remove, list filters, exit codes,
 * env, working dir, hostname), container logs in the CRI format at `log_directory`/`log_path`,
 * ExecSync, streaming Exec over SPDY (what the kubelet proxies to), PortForward into the pod's
 * network, and the pod's network (its IP reaches the container; hostNetwork shares the node's).
 * Written for this lab: the images are the lab's (`busybox`), nothing is pulled from a registry,
 * and each check names what a kubelet relies on.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import {
  GrpcStatus,
  isGrpcError,
  type ContainerConfigIn,
  type ImageServiceClient,
  type PodSandboxConfigIn,
  type RuntimeServiceClient,
} from '../../shared/cri/client.js';
import { dialSpdyPortForward } from '../../shared/portforward/spdy-client.js';
import { waitFor } from '../../shared/test-support/poll.js';
import { runSpdyClient } from '../../shared/remotecommand/spdy-client.js';

export interface CriTarget {
  name: string;
  rt: RuntimeServiceClient;
  images: ImageServiceClient;
  /** A directory for the sandboxes' log directories. */
  logRoot: string;
}

const BUSYBOX_TAG = 'docker.io/library/busybox:latest';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** Connects to host:port and returns what the server sends before it closes (bounded). */
function readFrom(host: string, port: number, timeoutMs = 3000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, host);
    let out = '';
    const timer = setTimeout(() => sock.destroy(new Error(`no answer from ${host}:${port}`)), timeoutMs);
    sock.on('data', (c: Buffer) => (out += c.toString()));
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** Registers the checks (jest `it`s) for the target `get()` returns once the suite's beforeAll ran. */
export function validateRuntime(get: () => CriTarget): void {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  });

  let seq = 0;
  /** A sandbox config with fresh metadata and labels, and a log directory of its own. */
  const sandboxConfig = (extra: Partial<PodSandboxConfigIn> = {}): PodSandboxConfigIn => {
    const n = `${++seq}-${randomBytes(3).toString('hex')}`;
    const logDir = path.join(get().logRoot, `default_p${n}_uid-${n}`);
    return {
      metadata: { name: `p${n}`, namespace: 'default', uid: `uid-${n}`, attempt: 0 },
      hostname: `host-${n}`,
      log_directory: logDir,
      labels: { 'kexec.test/suite': 'cri-validate', 'kexec.test/seq': n },
      annotations: { 'kexec.test/a': 'b' },
      ...extra,
    };
  };
  const runSandbox = async (extra: Partial<PodSandboxConfigIn> = {}) => {
    const config = sandboxConfig(extra);
    fs.mkdirSync(config.log_directory!, { recursive: true });
    const { pod_sandbox_id: id } = await get().rt.runPodSandbox({ config });
    cleanups.push(async () => {
      await get().rt.stopPodSandbox({ pod_sandbox_id: id });
      await get().rt.removePodSandbox({ pod_sandbox_id: id });
    });
    return { id, config };
  };
  const container = async (
    sandbox: { id: string; config: PodSandboxConfigIn },
    command: string[],
    extra: Partial<ContainerConfigIn> = {},
  ) => {
    const { container_id } = await get().rt.createContainer({
      pod_sandbox_id: sandbox.id,
      sandbox_config: sandbox.config,
      config: {
        metadata: { name: 'c', attempt: 0 },
        image: { image: 'busybox', user_specified_image: 'busybox' },
        command,
        log_path: 'c/0.log',
        ...extra,
      },
    });
    return container_id;
  };
  const started = async (
    sandbox: { id: string; config: PodSandboxConfigIn },
    command: string[],
    extra = {},
  ) => {
    const id = await container(sandbox, command, extra);
    await get().rt.startContainer({ container_id: id });
    return id;
  };
  const exited = (id: string) =>
    waitFor(`container ${id} to exit`, async () => {
      const { status } = await get().rt.containerStatus({ container_id: id });
      return status?.state === 'CONTAINER_EXITED' && status;
    });

  describe('runtime info', () => {
    it('Version names the runtime and CRI v1', async () => {
      const v = await get().rt.version({ version: 'v1' });
      expect(v.runtime_api_version).toBe('v1');
      expect(v.runtime_name).toMatch(/\S/);
      expect(v.runtime_version).toMatch(/\S/);
    });

    it('Status reports RuntimeReady and NetworkReady', async () => {
      const { status } = await get().rt.status({});
      const conds = Object.fromEntries((status?.conditions ?? []).map((c) => [c.type, c.status]));
      expect(conds).toMatchObject({ RuntimeReady: true, NetworkReady: true });
    });
  });

  describe('images', () => {
    it('ImageStatus finds the lab image by the name a pod uses, with an ID and its tag', async () => {
      const { image } = await get().images.imageStatus({ image: { image: 'busybox' } });
      expect(image?.id).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(image?.repo_tags).toContain(BUSYBOX_TAG);
      // The same image by its full reference and by its ID.
      const full = await get().images.imageStatus({ image: { image: BUSYBOX_TAG } });
      const byId = await get().images.imageStatus({ image: { image: image!.id } });
      expect(full.image?.id).toBe(image!.id);
      expect(byId.image?.id).toBe(image!.id);
    });

    it('ImageStatus of an image the runtime lacks is an empty answer, not an error', async () => {
      const { image } = await get().images.imageStatus({ image: { image: 'kexec.invalid/absent:1.0' } });
      expect(image).toBeNull();
    });

    it('ListImages lists the lab images (with a filter too: containerd 1.6 ignores it)', async () => {
      const { images } = await get().images.listImages({});
      expect(images.flatMap((i) => i.repo_tags)).toEqual(
        expect.arrayContaining([BUSYBOX_TAG, 'docker.io/library/evil-tar:latest']),
      );
      const filtered = await get().images.listImages({ filter: { image: { image: 'busybox' } } });
      expect(filtered.images.flatMap((i) => i.repo_tags)).toContain(BUSYBOX_TAG);
    });

    it('PullImage of an image no registry here has fails, naming it', async () => {
      const err = await get()
        .images.pullImage({ image: { image: '127.0.0.1:1/kexec/absent:1.0' } })
        .catch((e: unknown) => e);
      expect(isGrpcError(err)).toBe(true);
      expect((err as { details: string }).details).toContain('127.0.0.1:1/kexec/absent:1.0');
    });

    it('RemoveImage of an image that is not there succeeds', async () => {
      await expect(
        get().images.removeImage({ image: { image: 'kexec.invalid/absent:1.0' } }),
      ).resolves.toEqual({});
    });
  });

  describe('pod sandboxes', () => {
    it('RunPodSandbox → ready, listed by id, label and state, with its metadata and an IP', async () => {
      const { id, config } = await runSandbox();
      const { items: byId } = await get().rt.listPodSandbox({ filter: { id } });
      expect(byId).toEqual([
        expect.objectContaining({
          id,
          state: 'SANDBOX_READY',
          metadata: expect.objectContaining({
            name: config.metadata.name,
            uid: config.metadata.uid,
            attempt: 0,
          }),
          labels: expect.objectContaining(config.labels),
        }),
      ]);
      const { items: byLabel } = await get().rt.listPodSandbox({
        filter: { label_selector: { 'kexec.test/seq': config.labels!['kexec.test/seq']! } },
      });
      expect(byLabel.map((s) => s.id)).toEqual([id]);
      const { items: notReady } = await get().rt.listPodSandbox({
        filter: { id, state: { state: 'SANDBOX_NOTREADY' } },
      });
      expect(notReady).toEqual([]);
      const { status } = await get().rt.podSandboxStatus({ pod_sandbox_id: id });
      expect(status).toMatchObject({
        id,
        state: 'SANDBOX_READY',
        annotations: expect.objectContaining(config.annotations),
      });
      expect(status!.created_at).toBeGreaterThan(0);
      expect(net.isIPv4(status!.network?.ip ?? '')).toBe(true);
    });

    it('StopPodSandbox → not ready (twice is fine); RemovePodSandbox → gone (twice is fine), then NOT_FOUND', async () => {
      const { id } = await runSandbox();
      await get().rt.stopPodSandbox({ pod_sandbox_id: id });
      await get().rt.stopPodSandbox({ pod_sandbox_id: id });
      const { status } = await get().rt.podSandboxStatus({ pod_sandbox_id: id });
      expect(status!.state).toBe('SANDBOX_NOTREADY');
      await get().rt.removePodSandbox({ pod_sandbox_id: id });
      await get().rt.removePodSandbox({ pod_sandbox_id: id });
      expect((await get().rt.listPodSandbox({ filter: { id } })).items).toEqual([]);
      const err = await get()
        .rt.podSandboxStatus({ pod_sandbox_id: id })
        .catch((e: unknown) => e);
      expect(isGrpcError(err, GrpcStatus.NOT_FOUND)).toBe(true);
    });
  });

  describe('containers', () => {
    it('create → CREATED, start → RUNNING, stop → EXITED, remove → gone (twice is fine)', async () => {
      const sb = await runSandbox();
      const id = await container(sb, ['sleep', '3600']);
      const state = async () => (await get().rt.containerStatus({ container_id: id })).status!;
      expect((await state()).state).toBe('CONTAINER_CREATED');
      await get().rt.startContainer({ container_id: id });
      const running = await state();
      expect(running).toMatchObject({ state: 'CONTAINER_RUNNING', metadata: { name: 'c', attempt: 0 } });
      expect(running.started_at).toBeGreaterThan(0);
      expect(running.image_ref).toMatch(/\S/);
      const listed = await get().rt.listContainers({
        filter: { pod_sandbox_id: sb.id, state: { state: 'CONTAINER_RUNNING' } },
      });
      expect(listed.containers.map((c) => c.id)).toEqual([id]);
      await get().rt.stopContainer({ container_id: id, timeout: 0 });
      expect((await state()).state).toBe('CONTAINER_EXITED');
      await get().rt.removeContainer({ container_id: id });
      await get().rt.removeContainer({ container_id: id });
      expect((await get().rt.listContainers({ filter: { id } })).containers).toEqual([]);
    });

    it('reports the exit code and the finish time of a container that ends', async () => {
      const sb = await runSandbox();
      const id = await started(sb, ['sh', '-c', 'exit 3']);
      const st = await exited(id);
      expect(st.exit_code).toBe(3);
      // Not compared with started_at: containerd stamps the start after runc's start returns, and
      // a command this short has often exited by then (finished_at a few µs before started_at).
      expect(st.finished_at).toBeGreaterThanOrEqual(st.created_at);
    });

    it('writes stdout and stderr to <log_directory>/<log_path> in the CRI log format', async () => {
      const sb = await runSandbox();
      const id = await started(sb, ['sh', '-c', 'echo hello; echo oops >&2']);
      const st = await exited(id);
      const file = path.join(sb.config.log_directory!, 'c/0.log');
      expect(st.log_path).toBe(file);
      const lines = await waitFor('both log lines', async () => {
        const l = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
        return l.length >= 2 && l;
      });
      const ts = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2}) /;
      expect(lines.every((l) => ts.test(l))).toBe(true);
      expect(lines.map((l) => l.replace(ts, '')).sort()).toEqual(['stderr F oops', 'stdout F hello']);
    });

    it('runs with the env, working dir and the sandbox hostname it was given', async () => {
      const sb = await runSandbox();
      const id = await started(sb, ['sh', '-c', 'echo "$FOO"; pwd; hostname'], {
        envs: [{ key: 'FOO', value: 'bar baz' }],
        working_dir: '/tmp',
      });
      await exited(id);
      const out = fs
        .readFileSync(path.join(sb.config.log_directory!, 'c/0.log'), 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ').slice(3).join(' '));
      expect(out).toEqual(['bar baz', '/tmp', sb.config.hostname]);
    });
  });

  describe('exec, streaming and networking', () => {
    let sb: { id: string; config: PodSandboxConfigIn };
    let cid = '';
    beforeAll(async () => {
      sb = await runSandbox();
      cid = await started(sb, ['sleep', '3600']);
    });

    it('ExecSync returns stdout, stderr and the exit code', async () => {
      const ok = await get().rt.execSync({ container_id: cid, cmd: ['echo', 'hi'], timeout: 10 });
      expect({ out: ok.stdout.toString(), code: ok.exit_code }).toEqual({ out: 'hi\n', code: 0 });
      const bad = await get().rt.execSync({
        container_id: cid,
        cmd: ['sh', '-c', 'echo e >&2; exit 7'],
        timeout: 10,
      });
      expect({ err: bad.stderr.toString(), code: bad.exit_code }).toEqual({ err: 'e\n', code: 7 });
    });

    it('Exec hands out a URL whose SPDY session carries stdin to the command and its exit code back', async () => {
      const { url } = await get().rt.exec({
        container_id: cid,
        cmd: ['sh', '-c', 'cat; exit 5'],
        stdin: true,
        stdout: true,
        stderr: true,
      });
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      const chunks: Buffer[] = [];
      stdout.on('data', (c: Buffer) => chunks.push(c));
      stdin.end('through the runtime\n');
      const res = await runSpdyClient({ url, stdin, stdout, stderr: new PassThrough() });
      expect(Buffer.concat(chunks).toString()).toBe('through the runtime\n');
      expect(res.exitCode).toBe(5);
    });

    it('Exec into a container that is not running is refused', async () => {
      const id = await container(await runSandbox(), ['sleep', '3600']);
      const err = await get()
        .rt.exec({ container_id: id, cmd: ['true'], stdout: true })
        .catch((e: unknown) => e);
      expect(isGrpcError(err)).toBe(true);
    });

    it("the pod IP reaches a server in the pod, and PortForward reaches it on the pod's loopback", async () => {
      const port = await freePort();
      const server = await started(
        sb,
        ['busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', 'hello from the pod'],
        {
          metadata: { name: 'server', attempt: 0 },
          log_path: 'server/0.log',
        },
      );
      const { status } = await get().rt.podSandboxStatus({ pod_sandbox_id: sb.id });
      const ip = status!.network!.ip;
      // A runtime with pod networking (containerd + CNI) gives an address the node reaches; the
      // cri-shim's pods have a loopback-only network namespace and it reports the node's loopback,
      // which must NOT reach the pod (the pod's server is invisible from the host).
      if (ip.startsWith('127.')) {
        // Ready once the pod itself reaches the server on its own loopback.
        const inPod = async () =>
          (
            await get().rt.execSync({
              container_id: server,
              cmd: ['busybox', 'nc', '127.0.0.1', String(port)],
              timeout: 5,
            })
          ).stdout.toString() || undefined;
        expect(await waitFor('the server to answer inside the pod', inPod)).toBe('hello from the pod\n');
        expect(await readFrom(ip, port).catch(() => '')).toBe('');
      } else {
        expect(
          await waitFor('the server to answer', () => readFrom(ip, port).then((s) => s || undefined)),
        ).toBe('hello from the pod\n');
      }
      const { url } = await get().rt.portForward({ pod_sandbox_id: sb.id, port: [port] });
      const pf = await dialSpdyPortForward({ url });
      try {
        const conn = await pf.forward(port);
        const got: Buffer[] = [];
        conn.data.on('data', (c: Buffer) => got.push(c));
        await waitFor('forwarded bytes', async () => Buffer.concat(got).toString().includes('\n'));
        expect(Buffer.concat(got).toString()).toBe('hello from the pod\n');
        conn.data.end();
      } finally {
        await pf.close();
      }
    });

    it("a hostNetwork sandbox shares the node's network: the host reaches its server on 127.0.0.1", async () => {
      // No hostname: a sandbox in the node's UTS namespace cannot set one (runc refuses), so the
      // kubelet sends none for hostNetwork pods (generatePodSandboxConfig).
      const host = await runSandbox({
        hostname: '',
        linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
      });
      const port = await freePort();
      await started(host, ['busybox', 'nc', '-ll', '-p', String(port), '-e', 'echo', 'hello from the node'], {
        linux: { security_context: { namespace_options: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
      });
      expect(
        await waitFor('the server to answer', () => readFrom('127.0.0.1', port).then((s) => s || undefined)),
      ).toBe('hello from the node\n');
    });
  });
}
