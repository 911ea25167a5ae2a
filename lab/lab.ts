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
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { loadClientConfig } from '../kexec/client.js';
import { KUBECONFIG_FILE, writeCredentials, writeKubeconfig } from './credentials.js';
import {
  apiserverKubeletTlsArgs,
  criShimStreamingTlsArgs,
  ensureEtcdPki,
  ensureLabPki,
  kubeletTlsArgs,
  trustEnv,
  type LabPki,
} from './pki.js';
import { formatKubeletFault, parseKubeletFault } from '../kubelet-sim/fault-injection.js';
import { startEtcd, type EtcdProcess } from './etcd.js';
import { demoPod, ensurePod, waitForPodRunning } from './pods.js';
import { defaultLog, describeExit, startService, type ExitInfo, type Service } from './supervisor.js';
import { type Logger } from '../shared/logging.js';

export interface LabOptions {
  /** State directory: key, tokens, kubeconfig, runtime state. Default `.lab` (in the cwd). */
  dir?: string;
  /** apiserver port; 0 picks a free one (the kubeconfig records the real one). Default 6443. */
  port?: number;
  /** The apiserver's `--max-connection-bytes-per-sec` (0 = unlimited). */
  maxConnectionBytesPerSec?: number;
  /**
   * The apiserver's `--authorization-policy-file`: RBAC-like rules for lab users (users.ts),
   * added to the built-in policy.
   */
  authorizationPolicyFile?: string;
  /** Name of the first node (the demo pod's). Default `node-1`. */
  nodeName?: string;
  /**
   * How many kubelet-sim + cri-shim pairs to start (default 1). Node 1 is `nodeName`, node k ≥ 2 is
   * `node-k`, each with its own cri-shim root and socket (`DIR/cri-shim-k`) and kubelet port.
   */
  nodes?: number;
  /** Serve the apiserver over plain http instead of https from the lab CA. Default false. */
  insecureHttp?: boolean;
  /** cri-shim `--isolation`. */
  isolation?: 'auto' | 'bwrap' | 'none';
  /**
   * The runtime speaks SPDY only (cri-shim `--spdy-only`), like containerd and CRI-O: WebSocket
   * clients then depend on the apiserver's StreamTranslator. Default false.
   */
  spdyOnlyRuntime?: boolean;
  /**
   * The apiserver's StreamTranslator (feature gate TranslateStreamCloseWebsocketRequests, default
   * true as upstream). False splices v5 WebSocket sessions all the way to the runtime.
   */
  streamTranslation?: boolean;
  /**
   * kubelet-sim `--fault` for every node (kubelet-sim/fault-injection.ts): `redirect[=URL]`,
   * `ok-200`, `refuse-400`, `refuse-500`, `wrong-protocol`, `garbage`; `none` or unset is a normal
   * kubelet. exec, attach and port-forward then fail; everything else keeps working.
   */
  kubeletFault?: string;
  /**
   * Keep the apiserver's objects in a real etcd (`etcd` from the Debian package etcd-server), data
   * in `DIR/etcd`, instead of in memory. Default false (in memory starts faster).
   */
  etcd?: boolean;
  /** Create the demo pod and wait for it (default true). */
  demoPod?: boolean;
  /** Where the compiled services live. Default `<package root>/dist`. */
  distDir?: string;
  /** Every service output line, prefixed `[service] `, and the lab's own `[lab] ` lines. Default: stderr. */
  log?: Logger;
  readyTimeoutMs?: number;
  podTimeoutMs?: number;
  /** Aborting it during start-up stops what has started and rejects. */
  signal?: AbortSignal;
}

export interface ServiceFailure extends ExitInfo {
  service: string;
}

/** One kubelet-sim + cri-shim pair. */
export interface LabNode {
  name: string;
  kubeletUrl: string;
  /** The cri-shim's CRI endpoint (`unix://…` or `tcp://…`). */
  criEndpoint: string;
  /** The cri-shim's `--root`: `containers/<id>` and `sandboxes/<id>` live there. */
  criRoot: string;
  /** Keys of `Lab.pids` for this node's services. */
  services: { criShim: string; kubelet: string };
}

export interface Lab {
  dir: string;
  kubeconfigPath: string;
  apiserverUrl: string;
  /** The lab CA (`DIR/pki/ca.crt`) the kubeconfig trusts; undefined with insecureHttp. */
  caFile?: string;
  /** The first node's kubelet. */
  kubeletUrl: string;
  /** The etcd client URL the apiserver uses (`--etcd-servers`), with `etcd`. */
  etcdUrl?: string;
  adminToken: string;
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

/** The unix socket path limit (sun_path) is 108 bytes; stay below it or use loopback TCP. */
const MAX_UNIX_SOCKET_PATH = 100;

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const log = opts.log ?? defaultLog;
  const say = (line: string) => log(`[lab] ${line}`);
  const dir = path.resolve(opts.dir ?? '.lab');
  const nodeName = opts.nodeName ?? 'node-1';
  const nodeCount = opts.nodes ?? 1;
  if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new Error(`nodes must be an integer ≥ 1`);
  // A bad fault mode fails here, before anything starts, rather than as a kubelet dying.
  const kubeletFault = opts.kubeletFault === undefined ? undefined : parseKubeletFault(opts.kubeletFault);
  const nodePlan = Array.from({ length: nodeCount }, (_, i) => {
    const suffix = i === 0 ? '' : `-${i + 1}`;
    return {
      name: i === 0 ? nodeName : `node-${i + 1}`,
      criShim: `cri-shim${suffix}`,
      kubelet: `kubelet-sim${suffix}`,
      criRoot: path.join(dir, `cri-shim${suffix}`),
      sock: path.join(dir, `cri-shim${suffix}.sock`),
    };
  });
  if (new Set(nodePlan.map((n) => n.name)).size !== nodePlan.length) {
    throw new Error(`node names clash: ${nodePlan.map((n) => n.name).join(', ')}`);
  }
  const root = packageRoot();
  const dist = opts.distDir ?? path.join(root, 'dist');
  for (const svc of ['apiserver', 'kubelet-sim', 'cri-shim']) {
    const main = path.join(dist, svc, 'main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  }

  const creds = writeCredentials(
    dir,
    nodePlan.map((n) => n.name),
  );
  const services: Service[] = [];
  let stopping = false;
  let reportFailure!: (f: ServiceFailure) => void;
  const failed = new Promise<ServiceFailure>((r) => (reportFailure = r));
  const start = (
    name: string,
    args: string[],
    env?: NodeJS.ProcessEnv,
    program: 'apiserver' | 'kubelet-sim' | 'cri-shim' = name as 'apiserver',
  ): Service => {
    const svc = startService({
      name,
      script: path.join(dist, program, 'main.js'),
      args,
      cwd: root,
      env: env && { ...process.env, ...env },
      log,
      readyTimeoutMs: opts.readyTimeoutMs,
    });
    services.push(svc);
    void svc.exited.then((e) => {
      if (!stopping && !svc.stopping) reportFailure({ service: name, ...e });
    });
    return svc;
  };

  let stopPromise: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping = true;
    stopPromise ??= (async () => {
      // The kubelets first, so they do not log errors about a vanished apiserver or runtime.
      await Promise.all(services.filter((s) => s.name.startsWith('kubelet-sim')).map((s) => s.stop()));
      // etcd last: the apiserver may still write while it shuts down.
      await Promise.all(services.filter((s) => s.name !== 'etcd').map((s) => s.stop()));
      await Promise.all(services.map((s) => s.stop()));
    })();
    return stopPromise;
  };

  // A service dying during start-up fails the start at once instead of waiting for a timeout.
  const abort = new AbortController();
  const died = failed.then((f) => {
    abort.abort();
    throw new Error(`${f.service} exited unexpectedly (${describeExit(f)}) during start-up`);
  });
  died.catch(() => {});
  const interrupted = new Promise<never>((_, reject) => {
    const onAbort = () => {
      abort.abort();
      reject(new Error('start-up interrupted'));
    };
    if (opts.signal?.aborted) onAbort();
    else opts.signal?.addEventListener('abort', onAbort, { once: true });
  });
  interrupted.catch(() => {});
  const orDied = <T>(p: Promise<T>): Promise<T> => Promise.race([p, died, interrupted]);

  let etcdStarting: Promise<EtcdProcess> | undefined;
  try {
    let pki: LabPki | undefined;
    if (!opts.insecureHttp) {
      pki = await orDied(ensureLabPki(dir));
      say(`lab CA ${pki.caFile}; apiserver serving certificate ${pki.apiserverCertFile}`);
    }
    let etcdUrl: string | undefined;
    let etcdArgs: string[] = [];
    if (opts.etcd) {
      const etcdDir = path.join(dir, 'etcd');
      fs.mkdirSync(dir, { recursive: true });
      // https with client certificates from an etcd CA of its own (pki.ts), unless insecureHttp.
      const etcdPki = pki ? await orDied(ensureEtcdPki(dir)) : undefined;
      etcdStarting = startEtcd({
        dataDir: etcdDir,
        tls: etcdPki?.tls,
        log,
        readyTimeoutMs: opts.readyTimeoutMs,
        signal: abort.signal,
      });
      const etcd = await orDied(etcdStarting);
      services.push(etcd);
      void etcd.exited.then((e) => {
        if (!stopping && !etcd.stopping) reportFailure({ service: 'etcd', ...e });
      });
      etcdUrl = etcd.endpoint;
      etcdArgs = ['--etcd-servers', etcdUrl, ...(etcdPki?.apiserverArgs ?? [])];
      say(`etcd ready at ${etcdUrl}, data in ${etcdDir}`);
    }
    // Each cri-shim's streaming server serves https with a certificate from the lab CA (pki.ts),
    // which its kubelet-sim trusts through NODE_EXTRA_CA_CERTS; plain http with insecureHttp.
    const streamingTls = await orDied(
      Promise.all(nodePlan.map((n) => (pki ? criShimStreamingTlsArgs(dir, n.name) : []))),
    );
    const criShims = nodePlan.map((n, i) => {
      const listen = n.sock.length <= MAX_UNIX_SOCKET_PATH ? `unix://${n.sock}` : 'tcp://127.0.0.1:0';
      return start(
        n.criShim,
        [
          '--listen',
          listen,
          '--streaming-address',
          '127.0.0.1',
          '--streaming-port',
          '0',
          '--root',
          n.criRoot,
          '--isolation',
          opts.isolation ?? 'auto',
          ...(opts.spdyOnlyRuntime ? ['--spdy-only'] : []),
          ...streamingTls[i]!,
        ],
        undefined,
        'cri-shim',
      );
    });
    const apiserver = start('apiserver', [
      '--bind-address',
      '127.0.0.1',
      '--port',
      String(opts.port ?? 6443),
      '--token-signing-key-file',
      creds.keyFile,
      '--max-connection-bytes-per-sec',
      String(opts.maxConnectionBytesPerSec ?? 0),
      ...(opts.authorizationPolicyFile
        ? ['--authorization-policy-file', path.resolve(opts.authorizationPolicyFile)]
        : []),
      ...etcdArgs,
      ...(opts.streamTranslation === false
        ? ['--feature-gates', 'TranslateStreamCloseWebsocketRequests=false']
        : []),
      ...(pki
        ? [
            '--tls-cert-file',
            pki.apiserverCertFile,
            '--tls-private-key-file',
            pki.apiserverKeyFile,
            ...apiserverKubeletTlsArgs(pki),
          ]
        : []),
    ]);
    const [apiReady, ...criReadies] = await orDied(
      Promise.all([apiserver.ready, ...criShims.map((c) => c.ready)]),
    );
    const apiserverUrl = String(apiReady.url);
    const endpoints = criReadies.map((r) => String(r.endpoint));
    say(`apiserver ready at ${apiserverUrl}; cri-shim ready at ${endpoints.join(', ')}`);

    // The kubelet-sim dials the https apiserver with Node's fetch: the CA reaches it by environment.
    // It serves https itself with a certificate from the lab CA, and takes the apiserver's client
    // certificate (pki.ts).
    const kubeletTls = await orDied(
      Promise.all(nodePlan.map((n) => (pki ? kubeletTlsArgs(dir, n.name, ['127.0.0.1']) : []))),
    );
    const kubelets = nodePlan.map((n, i) =>
      start(
        n.kubelet,
        [
          '--apiserver',
          apiserverUrl,
          '--token-file',
          creds.nodeTokenFiles[n.name]!,
          '--token-signing-key-file',
          creds.keyFile,
          '--node-name',
          n.name,
          '--address',
          '127.0.0.1',
          '--port',
          '0',
          '--container-runtime-endpoint',
          endpoints[i]!,
          ...(kubeletFault && kubeletFault.mode !== 'none'
            ? ['--fault', formatKubeletFault(kubeletFault)]
            : []),
          ...kubeletTls[i]!,
        ],
        pki && trustEnv(pki),
        'kubelet-sim',
      ),
    );
    const kubeletReadies = await orDied(Promise.all(kubelets.map((k) => k.ready)));
    const nodes: LabNode[] = nodePlan.map((n, i) => ({
      name: n.name,
      kubeletUrl: String(kubeletReadies[i]!.url),
      criEndpoint: endpoints[i]!,
      criRoot: n.criRoot,
      services: { criShim: n.criShim, kubelet: n.kubelet },
    }));
    for (const [i, n] of nodes.entries()) {
      say(
        `kubelet-sim ready at ${n.kubeletUrl}, node ${String(kubeletReadies[i]!.node ?? n.name)} registered`,
      );
    }
    const kubeletUrl = nodes[0]!.kubeletUrl;

    const kubeconfigPath = writeKubeconfig(path.join(dir, KUBECONFIG_FILE), apiserverUrl, creds.adminToken, {
      caPem: pki?.caPem,
    });
    if (opts.demoPod ?? true) {
      // Through the kubeconfig just written, as any client: it proves the CA in it works.
      const cfg = await loadClientConfig({ kubeconfig: kubeconfigPath });
      const pod = demoPod({ nodeName });
      const how = await orDied(ensurePod(cfg, pod));
      say(`pod default/demo ${how === 'created' ? 'created' : 'already exists'}; waiting for it to run`);
      await orDied(
        waitForPodRunning(cfg, 'default', 'demo', {
          timeoutMs: opts.podTimeoutMs ?? 60_000,
          signal: abort.signal,
        }),
      );
      say('pod default/demo is Running');
    }
    return {
      dir,
      kubeconfigPath,
      apiserverUrl,
      caFile: pki?.caFile,
      kubeletUrl,
      etcdUrl,
      adminToken: creds.adminToken,
      nodes,
      pids: Object.fromEntries(services.map((s) => [s.name, s.pid])),
      failed,
      stop,
    };
  } catch (err) {
    abort.abort();
    // An etcd still starting when start-up failed is stopped with the rest.
    const etcd = await etcdStarting?.catch(() => undefined);
    if (etcd && !services.includes(etcd)) services.push(etcd);
    await stop();
    throw err;
  }
}

/** What to try once the lab is up (paths relative to the cwd when they are inside it). */
export function tryCommands(kubeconfigPath: string, apiserverUrl: string, cwd = process.cwd()): string[] {
  const rel = path.relative(cwd, kubeconfigPath);
  const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : kubeconfigPath;
  const kubectl = `KUBECONFIG=${shown} kubectl exec demo -- ls /root`;
  return [
    `npx kexec --kubeconfig ${shown} demo -- ls /root`,
    `npx kexec --kubeconfig ${shown} -it demo -- sh`,
    apiserverUrl.startsWith('https:')
      ? kubectl
      : `${kubectl}   # needs https (start without --insecure-http): kubectl sends no token over plain http`,
  ];
}
