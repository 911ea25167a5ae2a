/**
 * A real containerd as the lab's container runtime (`npm start -- --runtime containerd`): Debian's
 * `containerd` with `runc`, its own config, root, state and socket under `dir` (no systemd, no
 * /etc/containerd, no /var/lib/containerd), a CNI bridge network from `containernetworking-plugins`
 * (bridge + host-local + loopback in /usr/lib/cni), and the lab's images built from
 * `cri-shim/images/*` (oci-image.ts) and imported with `ctr -n k8s.io images import` — no registry.
 *
 * What it sets, and why:
 * - `restrict_oom_score_adj = true`: these VMs refuse a negative `oom_score_adj`, and without it
 *   every sandbox start fails with runc's "can't get final child's PID from pipe";
 * - the pause image is the busybox image under `kexec.local/pause:lab` (`sleep infinity` as PID 1
 *   of the sandbox; StopPodSandbox SIGKILLs it), imported before the first sandbox;
 * - the CNI network: a bridge `kx<hash>` with a /24 in 10.200.0.0–10.249.255.0 that no route of
 *   the host overlaps, `isGateway` (the host reaches pods through it), `ipMasq: false` and no
 *   routes in the pods beyond their subnet: nothing a pod sends can leave the machine;
 * - `HTTP_PROXY`/`HTTPS_PROXY` of containerd point at 127.0.0.1:1, where nothing listens: a pull
 *   (`imagePullPolicy: Always`, an unknown image) fails at once on loopback instead of reaching a
 *   registry, and is reported as ErrImagePull;
 * - the streaming server on 127.0.0.1 (a free port), over https with the lab CA's certificate when
 *   given (containerd's `x509_key_pair_streaming`), as the cri-shim's;
 * - runc's state in `dir/runc`, the CNI host-local leases in `dir/cni/ipam`.
 *
 * `stop()` removes every pod sandbox through CRI (containerd then stops the containers, deletes
 * their network namespaces and releases their IPs), stops containerd, kills any shim of ours left
 * over with every process under it (shims run in their own process groups and outlive containerd
 * on purpose; a sandbox whose removal failed keeps its containers under its shim), deletes the
 * network namespaces of sandboxes it could not remove, unmounts what is still mounted under
 * `dir`, and deletes the bridge. Mirrors what a node's containerd.service does
 * with kubeadm's CNI, at lab scale.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connectRuntime } from '../shared/cri/client.js';
import { BUSYBOX, buildOciImage, normalizeRef } from './oci-image.js';
import { defaultLog, startService, type Service } from './supervisor.js';

const run = promisify(execFile);

export const CNI_BIN_DIR = '/usr/lib/cni';
/** The sandbox (pause) image every pod's sandbox runs. */
export const PAUSE_IMAGE = 'kexec.local/pause:lab';
/** A proxy address on loopback where nothing listens: every registry request fails there. */
const NO_REGISTRY_PROXY = 'http://127.0.0.1:1';
/** The unix socket path limit (sun_path) is 108 bytes. */
const MAX_SOCKET_PATH = 100;

export interface ContainerdOptions {
  /** containerd's own directory: config, root, state, socket, CNI config and leases, images. */
  dir: string;
  /** The lab's image templates (`cri-shim/images`): each becomes `docker.io/library/<name>:latest`. */
  imagesDir: string;
  /** Log prefix. Default `containerd`. */
  name?: string;
  /** Every output line, prefixed `[name] `. Default: stderr. */
  log?: (line: string) => void;
  readyTimeoutMs?: number;
  /** Serve the streaming server over https with this certificate (PEM files). */
  streamingTls?: { certFile: string; keyFile: string };
  signal?: AbortSignal;
  /**
   * Awaited by `stop()` before it removes the pods: the lab stops the node's kubelet there, which
   * would otherwise start a removed pod again (its PLEG sees the sandbox go).
   */
  beforeStop?: () => Promise<unknown>;
}

export interface CniNetwork {
  name: string;
  bridge: string;
  subnet: string;
}

export interface ContainerdProcess extends Service {
  /** `unix:///…/containerd.sock`: what the kubelet-sim's `--container-runtime-endpoint` takes. */
  readonly endpoint: string;
  readonly network: CniNetwork;
  /** Image references imported, e.g. `docker.io/library/busybox:latest`. */
  readonly images: string[];
}

/**
 * Why containerd cannot run here (a missing binary, not root), or undefined when it can. Tests
 * skip their containerd runs with this reason, loudly.
 */
export function containerdUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'containerd runs on Linux only';
  if (process.getuid?.() !== 0) return 'containerd needs root (network namespaces, mounts, cgroups)';
  const missing = [
    ...['containerd', 'containerd-shim-runc-v2', 'runc', 'ctr', 'ip'].filter((b) => !onPath(b)),
    ...['bridge', 'host-local', 'loopback']
      .map((p) => path.join(CNI_BIN_DIR, p))
      .filter((p) => !fs.existsSync(p)),
    ...(fs.existsSync(BUSYBOX) ? [] : [BUSYBOX]),
  ];
  if (missing.length) {
    return `missing ${missing.join(', ')} (Debian packages containerd, runc, containernetworking-plugins, busybox-static, iproute2)`;
  }
  return undefined;
}

function onPath(bin: string): boolean {
  return (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':').some((d) => {
    try {
      fs.accessSync(path.join(d, bin), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** The socket path: under `dir` when it fits in sun_path, else in /tmp under a hash of `dir`. */
function socketPath(dir: string): string {
  const inDir = path.join(dir, 'containerd.sock');
  if (inDir.length + '.ttrpc'.length <= MAX_SOCKET_PATH) return inDir;
  return path.join('/tmp', `kexec-containerd-${hashOf(dir).slice(0, 12)}`, 'containerd.sock');
}

const hashOf = (s: string): string => createHash('sha256').update(s).digest('hex');

/** `10.1.2.0/24` → first address and prefix length (a bare address is a /32). */
function parseCidr(cidr: string): { base: number; bits: number } {
  const [addr, bits] = cidr.split('/');
  const base = (addr ?? '').split('.').reduce((a, o) => a * 256 + (Number(o) || 0), 0);
  return { base, bits: bits === undefined ? 32 : Number(bits) };
}

function overlaps(a: { base: number; bits: number }, b: { base: number; bits: number }): boolean {
  const bits = Math.min(a.bits, b.bits);
  const size = 2 ** (32 - bits);
  return Math.floor(a.base / size) === Math.floor(b.base / size);
}

/**
 * The CNI network of `dir`: a bridge name and a 10.x.y.0/24 derived from the directory (the same
 * after a restart), moved on while a route or address of the host already covers it.
 */
export async function chooseNetwork(dir: string): Promise<CniNetwork> {
  const h = hashOf(dir);
  const bridge = `kx${h.slice(0, 8)}`;
  const { stdout } = await run('ip', ['-4', '-o', 'route', 'show', 'table', 'all']);
  // Every destination the host routes somewhere else than our own bridge (after a restart it has one).
  const taken = stdout
    .split('\n')
    .filter((l) => l && !l.includes(`dev ${bridge} `))
    .map((l) =>
      l.split(' ')[0] === 'local' || l.split(' ')[0] === 'broadcast' ? l.split(' ')[1]! : l.split(' ')[0]!,
    )
    .filter((d) => d !== 'default')
    .map(parseCidr);
  const start = parseInt(h.slice(8, 12), 16) % (50 * 256);
  for (let i = 0; i < 50 * 256; i++) {
    const n = (start + i) % (50 * 256);
    const subnet = `10.${200 + Math.floor(n / 256)}.${n % 256}.0/24`;
    const mine = parseCidr(subnet);
    if (!taken.some((t) => overlaps(t, mine))) return { name: `kexec-lab-${h.slice(0, 8)}`, bridge, subnet };
  }
  throw new Error('no free 10.200-249.x.0/24 subnet for the CNI bridge');
}

function cniConfig(net: CniNetwork, ipamDir: string): string {
  return JSON.stringify(
    {
      cniVersion: '1.0.0',
      name: net.name,
      plugins: [
        {
          type: 'bridge',
          bridge: net.bridge,
          isGateway: true,
          ipMasq: false,
          // host-local with no `routes`: a pod reaches its subnet (and the host on the bridge), nothing else.
          ipam: { type: 'host-local', ranges: [[{ subnet: net.subnet }]], dataDir: ipamDir },
        },
        { type: 'loopback' },
      ],
    },
    null,
    2,
  );
}

const toml = (s: string): string => JSON.stringify(s);

function containerdConfig(dir: string, sock: string, opts: ContainerdOptions): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const tls = opts.streamingTls;
  return [
    'version = 2',
    `root = ${toml(path.join(dir, 'root'))}`,
    `state = ${toml(path.join(dir, 'state'))}`,
    '[grpc]',
    `  address = ${toml(sock)}`,
    '[ttrpc]',
    `  address = ${toml(`${sock}.ttrpc`)}`,
    '[debug]',
    '  address = ""',
    '  level = "warn"',
    '[metrics]',
    '  address = ""',
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = ${toml(path.join(dir, 'opt'))}`,
    `[${cri}]`,
    `  sandbox_image = ${toml(PAUSE_IMAGE)}`,
    '  restrict_oom_score_adj = true',
    '  disable_apparmor = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    `  enable_tls_streaming = ${tls ? 'true' : 'false'}`,
    ...(tls
      ? [
          `  [${cri}.x509_key_pair_streaming]`,
          `    tls_cert_file = ${toml(tls.certFile)}`,
          `    tls_key_file = ${toml(tls.keyFile)}`,
        ]
      : []),
    `  [${cri}.cni]`,
    `    bin_dir = ${toml(CNI_BIN_DIR)}`,
    `    conf_dir = ${toml(path.join(dir, 'cni', 'net.d'))}`,
    `  [${cri}.containerd]`,
    '    snapshotter = "overlayfs"',
    '    default_runtime_name = "runc"',
    `    [${cri}.containerd.runtimes.runc]`,
    '      runtime_type = "io.containerd.runc.v2"',
    `      [${cri}.containerd.runtimes.runc.options]`,
    `        Root = ${toml(path.join(dir, 'runc'))}`,
    '',
  ].join('\n');
}

export async function startContainerd(opts: ContainerdOptions): Promise<ContainerdProcess> {
  const name = opts.name ?? 'containerd';
  const log = opts.log ?? defaultLog;
  const say = (line: string) => log(`[${name}] ${line}`);
  const dir = path.resolve(opts.dir);
  const sock = socketPath(dir);
  fs.mkdirSync(path.dirname(sock), { recursive: true, mode: 0o700 });
  for (const sub of ['root', 'state', 'cni/net.d', 'cni/ipam', 'images']) {
    fs.mkdirSync(path.join(dir, sub), { recursive: true, mode: 0o700 });
  }
  const network = await chooseNetwork(dir);
  fs.writeFileSync(
    path.join(dir, 'cni', 'net.d', '10-kexec-lab.conflist'),
    cniConfig(network, path.join(dir, 'cni', 'ipam')),
  );
  const configFile = path.join(dir, 'config.toml');
  fs.writeFileSync(configFile, containerdConfig(dir, sock, opts));

  // The images build while containerd starts.
  const templates = fs
    .readdirSync(opts.imagesDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && fs.existsSync(path.join(opts.imagesDir, d.name, 'image.json')))
    .map((d) => d.name);
  const archives = Promise.all([
    ...templates.map((t) =>
      buildOciImage(
        path.join(opts.imagesDir, t),
        normalizeRef(t),
        path.join(dir, 'images', `${t}.tar`),
        path.join(dir, 'images', `${t}.work`),
      ),
    ),
    templates.includes('busybox')
      ? buildOciImage(
          path.join(opts.imagesDir, 'busybox'),
          PAUSE_IMAGE,
          path.join(dir, 'images', 'pause.tar'),
          path.join(dir, 'images', 'pause.work'),
        )
      : Promise.reject(new Error(`no busybox template in ${opts.imagesDir} for the pause image`)),
  ]);
  archives.catch(() => {});

  const endpoint = `unix://${sock}`;
  const service = startService({
    name,
    program: 'containerd',
    args: ['--config', configFile, '--log-level', 'warn'],
    env: { ...process.env, HTTP_PROXY: NO_REGISTRY_PROXY, HTTPS_PROXY: NO_REGISTRY_PROXY, NO_PROXY: '' },
    log,
    readyTimeoutMs: opts.readyTimeoutMs,
    probe: async (gaveUp) => {
      const signal = opts.signal ? AbortSignal.any([gaveUp, opts.signal]) : gaveUp;
      const rt = connectRuntime(endpoint, { callTimeoutMs: 2000 });
      try {
        while (!signal.aborted) {
          try {
            const v = await rt.version({});
            return { service: name, endpoint, version: `${v.runtime_name}://${v.runtime_version}` };
          } catch {
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      } finally {
        rt.close();
      }
      throw new Error(opts.signal?.aborted ? `${name}: start-up interrupted` : `${name} is not ready`);
    },
  });

  const stopService = service.stop.bind(service);
  let stopping: Promise<Awaited<ReturnType<Service['stop']>>> | undefined;
  const stop = (graceMs?: number) =>
    (stopping ??= (async () => {
      await opts.beforeStop?.().catch(() => undefined);
      await removeAllSandboxes(endpoint, say);
      const exit = await stopService(graceMs);
      await killLeftoverShims(sock, say);
      await unmountUnder(dir, say);
      await run('ip', ['link', 'del', network.bridge]).catch(() => undefined);
      return exit;
    })());
  const images: string[] = [];
  const proc = Object.assign(service, { endpoint, network, images, stop });
  try {
    await service.ready;
    const built = await archives;
    for (const img of built) {
      await run('ctr', ['--address', sock, '--namespace', 'k8s.io', 'images', 'import', img.file]);
      images.push(img.ref);
    }
    say(`images ${images.join(', ')} imported; pods on ${network.bridge} ${network.subnet}`);
    return proc;
  } catch (err) {
    await stop();
    throw err;
  }
}

/** Stops and removes every sandbox the runtime holds, each tried twice (a call under load can time out). */
async function removeAllSandboxes(endpoint: string, say: (l: string) => void): Promise<void> {
  const rt = connectRuntime(endpoint, { callTimeoutMs: 30_000 });
  try {
    const { items } = await rt.listPodSandbox({});
    let removed = 0;
    for (const s of items) {
      for (let attempt = 1; attempt <= 2; attempt++) {
        try {
          await rt.stopPodSandbox({ pod_sandbox_id: s.id });
          await rt.removePodSandbox({ pod_sandbox_id: s.id });
          removed++;
          break;
        } catch (err) {
          if (attempt === 2) say(`could not remove pod sandbox ${s.id}: ${(err as Error).message}`);
        }
      }
    }
    if (items.length) say(`removed ${removed} of ${items.length} pod sandbox(es)`);
  } catch (err) {
    say(`could not list the pod sandboxes: ${(err as Error).message}`);
  } finally {
    rt.close();
  }
}

/** pid → parent pid of every process (a snapshot of /proc). */
function parentPids(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  return parents;
}

/**
 * SIGKILLs every containerd-shim started for this containerd (its `-address` is our socket) with
 * every process under it, the containers' first: a shim killed alone would leave its containers
 * running, reparented to init.
 */
async function killLeftoverShims(sock: string, say: (l: string) => void): Promise<void> {
  const shims: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv: string[];
    try {
      argv = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    const at = argv.indexOf('-address');
    if (argv[0]?.includes('containerd-shim') && at >= 0 && argv[at + 1] === sock) shims.push(Number(entry));
  }
  if (!shims.length) return;
  const parents = parentPids();
  const tree = new Set(shims);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, ppid] of parents) {
      if (!tree.has(pid) && tree.has(ppid)) {
        tree.add(pid);
        grew = true;
      }
    }
  }
  // The network namespaces those processes are in (their sandboxes' `cni-…` files, which
  // containerd would have deleted with the sandbox).
  const netnsInodes = new Set<string>();
  for (const pid of tree) {
    try {
      netnsInodes.add(fs.readlinkSync(`/proc/${pid}/ns/net`));
    } catch {
      // gone meanwhile
    }
  }
  // The shims last, so none is left to report a container's death to nobody.
  for (const pid of [...tree].filter((p) => !shims.includes(p)).concat(shims)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  say(`killed ${shims.length} left-over shim(s) and ${tree.size - shims.length} process(es) under them`);
  for (const name of fs.existsSync(NETNS_DIR) ? fs.readdirSync(NETNS_DIR) : []) {
    if (!name.startsWith('cni-')) continue;
    let inode: string;
    try {
      inode = `net:[${fs.statSync(path.join(NETNS_DIR, name)).ino}]`;
    } catch {
      continue;
    }
    if (!netnsInodes.has(inode)) continue;
    await run('ip', ['netns', 'delete', name]).then(
      () => say(`deleted left-over network namespace ${name}`),
      () => undefined,
    );
  }
}

/** Where containerd's CNI network namespaces are bind-mounted (iproute2's netns directory). */
const NETNS_DIR = '/var/run/netns';

/** Lazily unmounts whatever is still mounted under `dir` (overlay rootfs, shm), deepest first. */
async function unmountUnder(dir: string, say: (l: string) => void): Promise<void> {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((p): p is string => !!p && (p === dir || p.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length);
  for (const m of mounts) {
    await run('umount', ['-l', m]).then(
      () => say(`unmounted ${m}`),
      () => undefined,
    );
  }
}
