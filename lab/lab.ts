/**
 * The lab: cri-shim, apiserver and kubelet-sim as three separate child processes, wired as
 * docs/wiring.md says, plus credentials, a kubeconfig and a running `demo` pod.
 *
 * TLS by default, on both hops a client's credentials cross: the lab CA in `DIR/pki` (made at
 * first start, kept after) issues the apiserver's serving certificate, each kubelet's, and the
 * apiserver's client certificate for kubelets; the kubeconfig carries the CA and the kubelet-sim
 * trusts it through NODE_EXTRA_CA_CERTS (pki.ts). `insecureHttp` keeps plain http on both, e.g. to
 * read the exchange in a packet capture; real kubectl then sends no credentials (see tryCommands).
 *
 * Start-up waits for each READY line (never sleeps), then creates the pod through the API and polls
 * it (bounded) until Running. `stop()` stops the kubelet, then the apiserver and the runtime, and
 * waits for every exit (bounded, then SIGKILL). A service that exits on its own is reported through
 * `failed`; `main.ts` then stops everything and exits 1.
 *
 * `etcd` (`npm start -- --etcd`): a real etcd (etcd.ts, data in `DIR/etcd`) is started first and
 * healthy before the apiserver, which gets `--etcd-servers`; Nodes and Pods then outlive an
 * apiserver restart (and a lab restart on the same DIR). It is stopped last. Over https with
 * client certificates from an etcd CA of its own (pki.ts ensureEtcdPki), unless insecureHttp.
 *
 * `runtime: 'containerd'` (`npm start -- --runtime containerd`): each node's runtime is a real
 * containerd started by the lab (containerd.ts: own config and directory under `DIR/containerd`,
 * CNI bridge, the lab's images built as OCI images and imported) instead of a cri-shim; the
 * kubelet-sim drives it over the same CRI. `stop()` removes its pods and its network.
 *
 * `startLab` reads as its steps; what is decided before anything starts is in plan.ts, the
 * services' command lines in argv.ts (shared with node-main.ts), and the group of running
 * services (start, watch, guard a step, stop in order) in service-group.ts.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadClientConfig } from '../kexec/client.js';
import { errorMessage, type Logger } from '../shared/logging.js';
import { acquireLabLock } from './lab-lock.js';
import { apiserverArgv, criShimArgv, kubeletArgv, loggingArgv } from './argv.js';
import { LabLogView } from './log-view.js';
import { writeKexecBin } from './kexec-bin.js';
import { startContainerd } from './containerd.js';
import {
  KUBECONFIG_FILE,
  writeCredentials,
  writeKubeconfig,
  writeKubeletTokenKeys,
  type LabCredentials,
} from './credentials.js';
import { startEtcd } from './etcd.js';
import {
  apiserverKubeletTlsArgs,
  criShimStreamingTlsArgs,
  ensureEtcdPki,
  runtimeStreamingCert,
  ensureLabPki,
  kubeletTlsArgs,
  trustEnv,
  type LabPki,
} from './pki.js';
import {
  auditLogPath,
  planLab,
  type LabOptions,
  type LabPlan,
  type LabRuntime,
  type NodePlan,
} from './plan.js';
import { demoPod, ensurePod, waitForPodRunning } from './pods.js';
import { ServiceGroup, type ServiceFailure } from './service-group.js';
import { defaultLog } from './supervisor.js';
import { startDashboard, type Dashboard } from './dashboard/server.js';
import type { ReadyInfo } from '../shared/ready-line.js';
import { fromPackageRoot } from '../shared/package-root.js';
import { tlsKeylogEnv } from './tls-keylog.js';
import { ensureKubeletApiPolicy } from './kubelet-api-policy.js';

export type { LabOptions } from './plan.js';
export type { ServiceFailure } from './service-group.js';

/** One kubelet-sim + runtime pair. */
export interface LabNode {
  name: string;
  kubeletUrl: string;
  /** `cri-shim` or `containerd`. */
  runtime: LabRuntime;
  /** The runtime's CRI endpoint (`unix://…` or `tcp://…`). */
  criEndpoint: string;
  /**
   * The cri-shim's `--root` (`containers/<id>` and `sandboxes/<id>` live there), or containerd's
   * directory.
   */
  criRoot: string;
  /** Keys of `Lab.pids` for this node's services. */
  services: { criShim: string; kubelet: string };
}

export interface Lab {
  dir: string;
  kubeconfigPath: string;
  /** Holds `kexec` (kexec-bin.ts): the CLI of this checkout with the lab's kubeconfig. */
  kexecBinDir: string;
  apiserverUrl: string;
  /** The lab CA (`DIR/pki/ca.crt`) the kubeconfig trusts; undefined with insecureHttp. */
  caFile?: string;
  /** The first node's kubelet. */
  kubeletUrl: string;
  /** The etcd client URL the apiserver uses (`--etcd-servers`), with `etcd`. */
  etcdUrl?: string;
  adminToken: string;
  /** The apiserver's `--audit-log-path`: `DIR/audit.log`. */
  auditLogPath: string;
  /** The services' log records as they come (the dashboard listens). */
  logs: LabLogView;
  /** The live dashboard (lab/dashboard/), on loopback; undefined with `dashboard: false`. */
  dashboard?: Dashboard;
  /** Every node, node 1 first. */
  nodes: LabNode[];
  /**
   * pid of each service process: `apiserver`, `etcd` (with `etcd`), node 1's `cri-shim` and `kubelet-sim`, and node k's
   * `cri-shim-k` and `kubelet-sim-k` for k ≥ 2.
   */
  pids: Record<string, number>;
  /** Resolves when a service exits without being asked to (the lab is then broken). */
  failed: Promise<ServiceFailure>;
  /** Stops every service and waits for them to exit. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts the lab: plan, credentials, PKI, etcd (optional), the runtimes and the apiserver, the
 * kubelets, the kubeconfig, the demo pod. Each step waits for what the next one needs (READY
 * lines, never sleeps); a failure anywhere stops what started and rejects.
 */
export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const view = new LabLogView(opts.log ?? defaultLog, opts.loggingFormat);
  const log = view.log;
  const say = (line: string) => log(`[lab] ${line}`);
  const plan = planLab(opts);
  // Before anything in DIR is touched: a lab already running there stays as it is.
  const lock = acquireLabLock(plan.dir);
  const creds: LabCredentials = {
    ...writeCredentials(
      plan.dir,
      plan.nodes.map((n) => n.name),
    ),
    // Without TLS no client certificate names the apiserver to kubelets: a token it signs does.
    ...(opts.insecureHttp ? { kubeletTokenKeys: writeKubeletTokenKeys(plan.dir) } : {}),
  };
  const group = new ServiceGroup({
    dist: plan.dist,
    cwd: plan.root,
    log,
    readyTimeoutMs: opts.readyTimeoutMs,
    signal: opts.signal,
    env: opts.tlsKeylog ? tlsKeylogEnv(path.resolve(opts.tlsKeylog)) : undefined,
  });
  try {
    const pki = opts.insecureHttp ? undefined : await preparePki(group, plan, say);
    const etcd = opts.etcd ? await startLabEtcd(group, plan, pki, log, opts.readyTimeoutMs, say) : undefined;
    const { apiserverUrl, criEndpoints } = await startRuntimesAndApiServer(
      group,
      plan,
      opts,
      creds,
      pki,
      etcd,
      say,
    );
    const nodes = await startKubelets(
      group,
      plan,
      creds,
      pki,
      apiserverUrl,
      criEndpoints,
      say,
      opts.verbosity,
    );
    // Written under another name first and put in place once the demo pod runs: whoever finds
    // DIR/kubeconfig finds a lab ready to exec into (issue #13).
    const kubeconfigPath = path.join(plan.dir, KUBECONFIG_FILE);
    const starting = writeKubeconfig(`${kubeconfigPath}.starting`, apiserverUrl, creds.adminToken, {
      caPem: pki?.caPem,
    });
    const kexecBinDir = writeKexecBin(plan.dir, kubeconfigPath);
    if (opts.demoPod ?? true) {
      await runDemoPod(group, starting, plan.nodes[0]!.name, opts.podTimeoutMs ?? 60_000, say);
    }
    fs.renameSync(starting, kubeconfigPath);
    if (!opts.etcd) {
      group.onRestarted('apiserver', () => {
        void recreateApiObjects(group, plan, kubeconfigPath, opts.demoPod ?? true, say);
      });
    }
    const dashboard =
      opts.dashboard === false
        ? undefined
        : await group.guard(
            startDashboard({
              client: await loadClientConfig({ kubeconfig: kubeconfigPath }),
              adminToken: creds.adminToken,
              auditLogPath: auditLogPath(plan.dir),
              logs: view,
              port: opts.dashboardPort,
            }),
          );
    return {
      dir: plan.dir,
      kubeconfigPath,
      kexecBinDir,
      apiserverUrl,
      caFile: pki?.caFile,
      kubeletUrl: nodes[0]!.kubeletUrl,
      etcdUrl: etcd?.url,
      adminToken: creds.adminToken,
      auditLogPath: auditLogPath(plan.dir),
      logs: view,
      dashboard,
      nodes,
      pids: group.pids(),
      failed: group.failed,
      stop: async () => {
        await dashboard?.close();
        await group.stop().finally(() => lock.release());
        removeSocketDir(plan);
      },
    };
  } catch (err) {
    await group.abandon();
    lock.release();
    removeSocketDir(plan);
    throw err;
  }
}

/** The private directory of the CRI sockets of a long lab dir (plan.ts), once the shims are gone. */
function removeSocketDir(plan: LabPlan): void {
  if (plan.socketDir) fs.rmSync(plan.socketDir, { recursive: true, force: true });
}

/** The lab CA in `DIR/pki` (made at first start, kept after) and the apiserver's serving certificate. */
async function preparePki(group: ServiceGroup, plan: LabPlan, say: Logger): Promise<LabPki> {
  const pki = await group.guard(ensureLabPki(plan.dir));
  say(`lab CA ${pki.caFile}; apiserver serving certificate ${pki.apiserverCertFile}`);
  return pki;
}

interface LabEtcd {
  url: string;
  /** `--etcd-servers` and the client certificate flags, for the apiserver. */
  apiserverArgs: string[];
}

/** A real etcd, data in `DIR/etcd`, healthy before the apiserver starts. */
async function startLabEtcd(
  group: ServiceGroup,
  plan: LabPlan,
  pki: LabPki | undefined,
  log: Logger,
  readyTimeoutMs: number | undefined,
  say: Logger,
): Promise<LabEtcd> {
  const etcdDir = path.join(plan.dir, 'etcd');
  fs.mkdirSync(plan.dir, { recursive: true });
  // https with client certificates from an etcd CA of its own (pki.ts), unless insecureHttp.
  const etcdPki = pki ? await group.guard(ensureEtcdPki(plan.dir)) : undefined;
  const etcd = await group.guard(
    group.starting(
      startEtcd({ dataDir: etcdDir, tls: etcdPki?.tls, log, readyTimeoutMs, signal: group.signal }),
    ),
  );
  group.adopt(etcd);
  say(`etcd ready at ${etcd.endpoint}, data in ${etcdDir}`);
  return {
    url: etcd.endpoint,
    apiserverArgs: ['--etcd-servers', etcd.endpoint, ...(etcdPki?.apiserverArgs ?? [])],
  };
}

/** Every node's runtime (cri-shim or containerd) and the apiserver, started together; resolves once all are READY. */
async function startRuntimesAndApiServer(
  group: ServiceGroup,
  plan: LabPlan,
  opts: LabOptions,
  creds: LabCredentials,
  pki: LabPki | undefined,
  etcd: LabEtcd | undefined,
  say: Logger,
): Promise<{ apiserverUrl: string; criEndpoints: string[] }> {
  // Each cri-shim's streaming server serves https with a certificate from the lab CA (pki.ts),
  // which its kubelet-sim trusts through NODE_EXTRA_CA_CERTS; plain http with insecureHttp.
  const streamingTls = await group.guard(
    Promise.all(
      plan.nodes.map((n) =>
        pki && n.runtime === 'cri-shim' ? criShimStreamingTlsArgs(plan.dir, n.name) : [],
      ),
    ),
  );
  if (opts.isolation === 'none') {
    say(
      'WARNING: --isolation none: pods are NOT isolated; anyone who can exec into a pod is root on this host',
    );
  }
  const runtimesReady = plan.nodes.map((n, i) =>
    n.runtime === 'containerd'
      ? startLabContainerd(group, plan, n, pki, opts)
      : group.start(
          n.criShim,
          'cri-shim',
          criShimArgv({
            listen: n.criListen,
            root: n.criRoot,
            isolation: opts.isolation ?? 'auto',
            spdyOnly: opts.spdyOnlyRuntime,
            streamingTls: streamingTls[i]!,
            logging: loggingArgv(opts.verbosity),
          }),
        ).ready,
  );
  const apiserver = group.start(
    'apiserver',
    'apiserver',
    apiserverArgv({
      port: opts.port ?? 6443,
      signingKeyFile: creds.keyFile,
      kubeletTokenSigningKeyFile: creds.kubeletTokenKeys?.keyFile,
      maxConnectionBytesPerSec: opts.maxConnectionBytesPerSec ?? 0,
      // The kubelets ask (Webhook) whether the apiserver may use their API: the lab's grant says yes.
      authorizationPolicyFiles: [
        ensureKubeletApiPolicy(plan.dir),
        ...(opts.authorizationPolicyFile ? [path.resolve(opts.authorizationPolicyFile)] : []),
      ],
      etcd: etcd?.apiserverArgs,
      streamTranslation: opts.streamTranslation,
      verbosity: opts.verbosity,
      auditLogPath: auditLogPath(plan.dir),
      logging: loggingArgv(),
      tls: pki && {
        certFile: pki.apiserverCertFile,
        keyFile: pki.apiserverKeyFile,
        kubeletArgs: apiserverKubeletTlsArgs(pki),
      },
    }),
  );
  const [apiReady, ...criReadies] = await group.guard(Promise.all([apiserver.ready, ...runtimesReady]));
  const apiserverUrl = String(apiReady.url);
  const criEndpoints = criReadies.map((r) => String(r.endpoint));
  say(`apiserver ready at ${apiserverUrl}; ${plan.nodes[0]!.runtime} ready at ${criEndpoints.join(', ')}`);
  return { apiserverUrl, criEndpoints };
}

/**
 * A node's containerd (containerd.ts) in `criRoot`, its streaming server on https from the lab CA
 * (unless insecureHttp), the lab's image templates imported; a Service of the group once ready.
 */
async function startLabContainerd(
  group: ServiceGroup,
  plan: LabPlan,
  n: NodePlan,
  pki: LabPki | undefined,
  opts: LabOptions,
): Promise<ReadyInfo> {
  const streamingTls = pki ? await runtimeStreamingCert(plan.dir, n.name) : undefined;
  const proc = await group.starting(
    startContainerd({
      dir: n.criRoot,
      name: n.criShim,
      imagesDir: fromPackageRoot('cri-shim', 'images'),
      log: opts.log ?? defaultLog,
      readyTimeoutMs: opts.readyTimeoutMs,
      streamingTls,
      signal: group.signal,
      // The group stops everything at once; the pods go only once this node's kubelet has.
      beforeStop: () => Promise.all(group.services.filter((s) => s.name === n.kubelet).map((s) => s.stop())),
    }),
  );
  group.adopt(proc);
  return { service: n.criShim, endpoint: proc.endpoint };
}

/** Every node's kubelet-sim, each on its cri-shim; resolves once each has registered its Node. */
async function startKubelets(
  group: ServiceGroup,
  plan: LabPlan,
  creds: LabCredentials,
  pki: LabPki | undefined,
  apiserverUrl: string,
  criEndpoints: string[],
  say: Logger,
  verbosity?: number,
): Promise<LabNode[]> {
  // The kubelet-sim dials the https apiserver with Node's fetch: the CA reaches it by environment.
  // It serves https itself with a certificate from the lab CA, and takes the apiserver's client
  // certificate (pki.ts).
  const kubeletTls = await group.guard(
    Promise.all(plan.nodes.map((n) => (pki ? kubeletTlsArgs(plan.dir, n.name, ['127.0.0.1']) : []))),
  );
  const kubelets = plan.nodes.map((n, i) =>
    group.start(
      n.kubelet,
      'kubelet-sim',
      kubeletArgv({
        apiserver: apiserverUrl,
        tokenFile: creds.nodeTokenFiles[n.name]!,
        apiserverTokenKeyFile: creds.kubeletTokenKeys?.publicKeyFile,
        nodeName: n.name,
        address: '127.0.0.1',
        port: 0,
        criEndpoint: criEndpoints[i]!,
        podLogsDir: plan.podLogsDir,
        fault: plan.kubeletFault,
        authorizationMode: 'Webhook',
        // Upstream keeps answers 5 min / 30 s; a student who edits the grant sees it within ~1.5 s.
        authorizationWebhookCacheTtl: '1s',
        tls: kubeletTls[i]!,
        logging: loggingArgv(verbosity),
      }),
      pki && trustEnv(pki),
    ),
  );
  const kubeletReadies = await group.guard(Promise.all(kubelets.map((k) => k.ready)));
  const nodes: LabNode[] = plan.nodes.map((n, i) => ({
    name: n.name,
    kubeletUrl: String(kubeletReadies[i]!.url),
    runtime: n.runtime,
    criEndpoint: criEndpoints[i]!,
    criRoot: n.criRoot,
    services: { criShim: n.criShim, kubelet: n.kubelet },
  }));
  for (const [i, n] of nodes.entries()) {
    say(`kubelet-sim ready at ${n.kubeletUrl}, node ${String(kubeletReadies[i]!.node ?? n.name)} registered`);
  }
  return nodes;
}

/** The `demo` pod on node 1, created through the kubeconfig just written (proving its CA works), Running. */
async function runDemoPod(
  group: ServiceGroup,
  kubeconfigPath: string,
  nodeName: string,
  timeoutMs: number,
  say: Logger,
): Promise<void> {
  const cfg = await loadClientConfig({ kubeconfig: kubeconfigPath });
  const how = await group.guard(ensurePod(cfg, demoPod({ nodeName })));
  say(`pod default/demo ${how === 'created' ? 'created' : 'already exists'}; waiting for it to run`);
  await group.guard(waitForPodRunning(cfg, 'default', 'demo', { timeoutMs, signal: group.signal }));
  say('pod default/demo is Running');
}

/**
 * After an apiserver restart with objects kept in memory (no `--etcd`) the cluster is empty: the
 * kubelets start again so their Nodes register again, and the demo pod is created again, as
 * kubeadm would rejoin nodes to a fresh control plane. With etcd nothing is lost.
 */
async function recreateApiObjects(
  group: ServiceGroup,
  plan: LabPlan,
  kubeconfigPath: string,
  demo: boolean,
  say: Logger,
): Promise<void> {
  say('the apiserver kept its objects in memory: its kubelets start again to register their Nodes');
  try {
    await Promise.all(plan.nodes.map((n) => group.restart(n.kubelet)));
    if (demo) {
      const cfg = await loadClientConfig({ kubeconfig: kubeconfigPath });
      await ensurePod(cfg, demoPod({ nodeName: plan.nodes[0]!.name }));
      say('pod default/demo created again');
    }
  } catch (err) {
    say(`could not recreate the lab's objects after the apiserver restart: ${errorMessage(err)}`);
  }
}

/** What to try once the lab is up (paths relative to the cwd when they are inside it). */
export function tryCommands(kubeconfigPath: string, apiserverUrl: string, cwd = process.cwd()): string[] {
  const rel = path.relative(cwd, kubeconfigPath);
  const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : kubeconfigPath;
  const kubectl = `KUBECONFIG=${shown} kubectl exec demo -- ls /root`;
  return [
    'kexec demo -- ls /root',
    'kexec -it demo -- sh',
    apiserverUrl.startsWith('https:')
      ? kubectl
      : `${kubectl}   # needs https (start without --insecure-http): kubectl sends no token over plain http`,
  ];
}
