/**
 * docker-compose.yml on a real Docker engine (Debian's docker.io and docker-compose 1.29), from
 * nothing: a dockerd of its own under a temp dir (support/docker.ts), a local stand-in for the
 * Dockerfile's base image (scripts/docker-base-image.sh: debootstrap + this machine's node), the
 * project's image from its own Dockerfile (both kept in the engine's cached data root,
 * ~/.cache/kexec-lab/docker, so a second run rebuilds only what changed), then
 * `docker-compose up` and what a user does with it: read demo's `ls /root`, exec from the host with
 * real kubectl through the published port, a shell on a terminal through `docker-compose run`, a
 * kubelet fault drill, and `docker-compose down -v` leaving nothing. The engine is stopped and its
 * temp dir removed at the end.
 *
 * Skipped, loudly, only where the engine cannot run (no dockerd / docker-compose / debootstrap, or
 * not root). Cold (no base image cached), it takes a few minutes: debootstrap and the image's
 * `npm ci` and apt installs go to the network.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lab/etcd.js';
import pty from 'node-pty';
import { packageRoot } from '../shared/package-root.js';
import { kubectlPath } from '../shared/test-support/kubectl.js';
import { waitFor } from '../shared/test-support/poll.js';
import {
  DOCKER_CLI,
  dockerUnavailable,
  dockerCacheDir,
  extraCaCerts,
  startDockerEngine,
  type DockerEngine,
} from './support/docker.js';

const root = packageRoot();
const PROJECT = 'kexeccompose';
const IMAGE = 'kexec-lab:local';
const BUILD_STAGE_IMAGE = 'kexec-lab:build-stage';
const unavailable = dockerUnavailable();

if (unavailable) {
  process.stderr.write(
    `\n${'!'.repeat(90)}\nSKIPPING e2e/compose.test.ts: no Docker engine can run here: ${unavailable}\n${'!'.repeat(90)}\n\n`,
  );
}
const describeDocker = unavailable ? describe.skip : describe;

describeDocker('docker-compose.yml on a real Docker engine', () => {
  let engine: DockerEngine | undefined;
  let hostPort = 0;
  let work = '';
  const timings: string[] = [];

  const compose = (args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000) =>
    engine!.run('docker-compose', ['--project-name', PROJECT, ...args], {
      cwd: root,
      env: { KEXEC_LAB_HOST_PORT: String(hostPort), ...env },
      timeoutMs,
    });
  const docker = (args: string[], timeoutMs = 60_000) => engine!.run(DOCKER_CLI, args, { timeoutMs });
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t0 = Date.now();
    const r = await f();
    timings.push(`${what} ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    process.stderr.write(`[compose e2e] ${timings.at(-1)}\n`);
    return r;
  };
  /** A shell script in a fresh container of the image, with Docker's defaults. */
  const inImage = (script: string) => docker(['run', '--rm', IMAGE, 'sh', '-c', script]);
  const containerOf = async (service: string) => (await compose(['ps', '-q', service])).stdout.trim();
  const healthOf = async (id: string) =>
    (await docker(['inspect', '-f', '{{.State.Health.Status}}', id])).stdout.trim();

  beforeAll(async () => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-compose-'));
    hostPort = await freePort();
    engine = await timed('dockerd start', startDockerEngine);
    const base = await timed('base image stand-in', () =>
      engine!.run(path.join(root, 'scripts', 'docker-base-image.sh'), [], {
        cwd: root,
        env: { DOCKER: DOCKER_CLI, KEXEC_DOCKER_CACHE: dockerCacheDir() },
        timeoutMs: 600_000,
      }),
    );
    if (base.code !== 0) throw new Error(`docker-base-image.sh failed:\n${base.stderr}`);
    // The project's own Dockerfile; the build stage's npm trusts this machine's extra CAs (the
    // TLS-inspecting proxy's), which never reach the final image.
    const buildArgs = ['build', '--network', 'host', '--build-arg', `EXTRA_CA_CERTS=${extraCaCerts()}`];
    const build = await timed('docker build', () => docker([...buildArgs, '-t', IMAGE, root], 900_000));
    if (build.code !== 0)
      throw new Error(`docker build failed:\n${build.stdout.slice(-4000)}\n${build.stderr}`);
    // Name the build stage too (all cached by now), so that pruning older builds at the end keeps
    // its layers (toolchain, npm ci) for the next run.
    const stage = await docker([...buildArgs, '--target', 'build', '-t', BUILD_STAGE_IMAGE, root], 300_000);
    if (stage.code !== 0) throw new Error(`docker build --target build failed:\n${stage.stderr}`);
    const up = await timed('docker-compose up -d', () => compose(['up', '-d', '--no-build']));
    if (up.code !== 0) throw new Error(`docker-compose up failed:\n${up.stderr}`);
  }, 1_200_000);

  afterAll(async () => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
    if (!engine) return;
    await compose(['down', '-v', '--remove-orphans']);
    // The engine's data root is a cache (support/docker.ts): keep this run's images, drop older builds.
    await docker(['image', 'prune', '--force'], 300_000);
    await timed('dockerd stop', () => engine!.stop());
  }, 120_000);

  it('the final image has no compiler, no dev dependencies, no TypeScript sources and runs as `node`', async () => {
    const r = await inImage(
      'id -un; for p in cc gcc g++ make python3 tsc; do command -v $p; done; ls node_modules/typescript node_modules/jest 2>&1 | head -2; find . -name "*.ts" -not -path "./node_modules/*" -not -name "*.d.ts" | head -3; ls node_modules/node-pty/build/Release/pty.node',
    );
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n').filter(Boolean)).toEqual([
      'node',
      expect.stringMatching(/typescript.*No such file/),
      expect.stringMatching(/jest.*No such file/),
      'node_modules/node-pty/build/Release/pty.node',
    ]);
    // The build arg with the CA lived in the build stage only.
    expect((await docker(['image', 'inspect', IMAGE])).stdout).not.toMatch(
      /EXTRA_CA_CERTS|BEGIN CERTIFICATE/,
    );
  });

  it('brings up apiserver and node healthy, and demo prints the container’s /root', async () => {
    for (const service of ['apiserver', 'node'])
      expect(await healthOf(await containerOf(service))).toBe('healthy');
    const demo = await containerOf('demo');
    expect((await docker(['wait', demo], 180_000)).stdout.trim()).toBe('0');
    const logs = await compose(['logs', '--no-color', 'demo']);
    expect(logs.stdout).toMatch(/README\.txt\s[\s\S]*hello\.sh\s[\s\S]*notes/);
    const node = await compose(['logs', '--no-color', 'node']);
    // Pods are isolated in compose too: bubblewrap works in the node container.
    expect(node.stdout).toMatch(/\[cri-shim\] .*CRI on .* isolation bwrap/);
    expect(node.stdout).not.toMatch(/NOT isolated/);
    expect(node.stdout).toMatch(/READY \{"service":"node".*"kubeletUrl":"https:/);
  });

  it('without the node service’s options, the cri-shim says loudly that pods are NOT isolated', async () => {
    // Docker's defaults (the image's `node` user, default seccomp, no capability): bwrap cannot
    // build a sandbox, `--isolation auto` falls back to none, and the banner is the first thing said.
    const r = await inImage(
      'timeout 60 node dist/cri-shim/main.js --listen unix:///tmp/cri.sock --root /tmp/cri 2>&1 | grep -m1 -e "NOT isolated" -e READY',
    );
    expect(r.stdout).toContain('Containers are NOT isolated: processes run on the host');
  });

  it('real kubectl on the host execs through the published port (the certificate names localhost)', async () => {
    const kubeconfig = path.join(work, 'kubeconfig');
    const cat = await compose(['run', '--rm', '--no-deps', '-T', 'demo', 'cat', '/lab/kubeconfig']);
    expect(cat.code).toBe(0);
    fs.writeFileSync(kubeconfig, cat.stdout, { mode: 0o600 });
    for (const server of [`https://localhost:${hostPort}`, `https://127.0.0.1:${hostPort}`]) {
      const out = execFileSync(
        kubectlPath('v1.35'),
        ['--kubeconfig', kubeconfig, '--server', server, 'exec', 'demo', '--', 'ls', '/root'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      expect(out.split('\n').filter(Boolean)).toEqual(['README.txt', 'hello.sh', 'notes']);
    }
  });

  it('`docker-compose run --rm demo … -it demo -- sh` gives a terminal', async () => {
    const term = pty.spawn(
      'docker-compose',
      [
        '--project-name',
        PROJECT,
        'run',
        '--rm',
        '--no-deps',
        'demo',
        'node',
        'bin/kexec.js',
        '--kubeconfig',
        '/lab/kubeconfig',
        '-it',
        'demo',
        '--',
        'sh',
      ],
      {
        cwd: root,
        env: { ...engine!.env, KEXEC_LAB_HOST_PORT: String(hostPort) } as Record<string, string>,
        cols: 100,
        rows: 30,
      },
    );
    let seen = '';
    term.onData((d) => (seen += d));
    const exit = new Promise<number>((r) => term.onExit(({ exitCode }) => r(exitCode)));
    const onTerminal = (re: RegExp) =>
      waitFor(
        `${re} on the terminal`,
        () => {
          if (re.test(seen)) return true;
          throw new Error(`saw: ${JSON.stringify(seen.slice(-500))}`);
        },
        90_000,
        100,
      );
    try {
      await onTerminal(/# $/m);
      term.write('echo $((6*7)); tty\r');
      await onTerminal(/^42\r?$/m);
      await onTerminal(/\/dev\/pts\/\d+/);
      term.write('exit 3\r');
      expect(await exit).toBe(3);
    } finally {
      term.kill();
    }
  }, 120_000);

  it('KEXEC_LAB_KUBELET_FAULT switches the drill on in the node container', async () => {
    const up = await compose(['up', '-d', '--no-build', '--no-deps', 'node'], {
      KEXEC_LAB_KUBELET_FAULT: 'refuse-400',
    });
    expect(up.code).toBe(0);
    const node = await containerOf('node');
    const deadline = Date.now() + 90_000;
    while ((await healthOf(node)) !== 'healthy') {
      if (Date.now() > deadline) throw new Error('the node with a fault drill never became healthy');
      await new Promise((r) => setTimeout(r, 500));
    }
    const demo = await compose(['run', '--rm', '--no-deps', '-T', 'demo']);
    expect(demo.code).not.toBe(0);
    expect(demo.stdout + demo.stderr).toContain('upgrade refused by kubelet-sim --fault refuse-400');
  }, 180_000);

  it('`docker-compose down -v` leaves no container, network or volume', async () => {
    const down = await compose(['down', '-v', '--remove-orphans']);
    expect(down.code).toBe(0);
    expect((await docker(['ps', '-aq'])).stdout.trim()).toBe('');
    expect((await docker(['volume', 'ls', '-q'])).stdout.trim()).toBe('');
    // What an engine without the default bridge always has.
    expect(
      (await docker(['network', 'ls', '--format', '{{.Name}}'])).stdout.split('\n').filter(Boolean).sort(),
    ).toEqual(['host', 'none']);
  });
});
