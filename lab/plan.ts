/**
 * The plan of a lab: from the options `startLab` is given, everything decided before a process
 * starts — the state directory, where the compiled services live, and for each node its name,
 * the names of its two services and where its cri-shim keeps state and listens. Bad options fail
 * here, before anything runs.
 *
 * Upstream has no counterpart (kubeadm's init phases come closest: a configuration settled and
 * checked before the first component starts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseKubeletFault, formatKubeletFault } from '../kubelet-sim/fault-injection.js';
import type { Logger, LoggingFormat } from '../shared/logging.js';
import { packageRoot } from '../shared/package-root.js';

export interface LabOptions {
  /** State directory: key, tokens, kubeconfig, runtime state. Default `.lab` (in the cwd). */
  dir?: string;
  /** apiserver port; 0 picks a free one (the kubeconfig records the real one). Default 6443. */
  port?: number;
  /** Serve the live dashboard (lab/dashboard/). Default true. */
  dashboard?: boolean;
  /** The dashboard's port on 127.0.0.1; 0 (the default) picks a free one. */
  dashboardPort?: number;
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
  /**
   * The container runtime of every node: the `cri-shim` (default) or a real `containerd` (Debian's
   * containerd + runc, CNI bridge; containerd.ts), started by the lab with its own directory.
   */
  runtime?: LabRuntime;
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
  /**
   * Every service's `-v` (`npm start -- -v`): from 1 on, nodes' heartbeats are logged too, from 2
   * the hops' detail lines (V(2)).
   */
  verbosity?: number;
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
  /** How the services' lines are shown: klog `text` (default) or their `json`. */
  loggingFormat?: LoggingFormat;
  /**
   * `--tls-keylog FILE`: every service appends its TLS session secrets to FILE (NSS key log
   * format, tls-keylog.ts), so a capture of the https hops can be decrypted. Unset: none written.
   */
  tlsKeylog?: string;
}

/** Where the lab's apiserver writes its audit log (`--audit-log-path`). */
export function auditLogPath(dir: string): string {
  return path.join(dir, 'audit.log');
}

export type LabRuntime = 'cri-shim' | 'containerd';
export const LAB_RUNTIMES: readonly LabRuntime[] = ['cri-shim', 'containerd'];

/**
 * The unix socket path limit (sun_path) is 108 bytes. A lab dir too long for it gets its sockets
 * in a private directory (mkdtemp: 0700, owner only) under the temp dir instead: the CRI is never
 * served over TCP, which any local user and any pod on the host network could reach without
 * credentials (whoever speaks CRI runs commands as root in every container).
 */
const MAX_UNIX_SOCKET_PATH = 100;

/** One kubelet-sim + runtime pair, before it starts. */
export interface NodePlan {
  name: string;
  runtime: LabRuntime;
  /**
   * Service names: `cri-shim` (or `containerd`) and `kubelet-sim` for node 1, `cri-shim-k` (or
   * `containerd-k`) and `kubelet-sim-k` for node k.
   */
  criShim: string;
  kubelet: string;
  /** The cri-shim's `--root`, or containerd's own directory (config, root, state, socket). */
  criRoot: string;
  /** The cri-shim's `--listen`: a unix socket in the lab dir, or in `socketDir` when that path is too long. */
  criListen: string;
}

export interface LabPlan {
  /** The state directory, absolute. */
  dir: string;
  /** The package root: the services' working directory. */
  root: string;
  /** Where the compiled services live (`<dist>/<service>/main.js`). */
  dist: string;
  /** Every node, node 1 first. */
  nodes: NodePlan[];
  /** The kubelet-sim's `--fault`, checked and spelled as the flag takes it; undefined when off. */
  kubeletFault?: string;
  /** The private directory holding the CRI sockets of a long lab dir (removed when the lab stops). */
  socketDir?: string;
  /** The pods' log directories (kubelet-sim `--pod-logs-dir`): `DIR/pod-logs`. */
  podLogsDir: string;
}

export function planLab(opts: LabOptions): LabPlan {
  const dir = path.resolve(opts.dir ?? '.lab');
  const nodeName = opts.nodeName ?? 'node-1';
  const nodeCount = opts.nodes ?? 1;
  if (!Number.isInteger(nodeCount) || nodeCount < 1) throw new Error(`nodes must be an integer ≥ 1`);
  // A bad fault mode fails here, before anything starts, rather than as a kubelet dying.
  const fault = opts.kubeletFault === undefined ? undefined : parseKubeletFault(opts.kubeletFault);
  const runtime = opts.runtime ?? 'cri-shim';
  if (!LAB_RUNTIMES.includes(runtime)) {
    throw new Error(`runtime must be one of ${LAB_RUNTIMES.join(', ')}, not ${JSON.stringify(runtime)}`);
  }
  const nodes = Array.from({ length: nodeCount }, (_, i): NodePlan => {
    const suffix = i === 0 ? '' : `-${i + 1}`;
    return {
      name: i === 0 ? nodeName : `node-${i + 1}`,
      runtime,
      criShim: `${runtime}${suffix}`,
      kubelet: `kubelet-sim${suffix}`,
      criRoot: path.join(dir, `${runtime}${suffix}`),
      criListen: `unix://${path.join(dir, `cri-shim${suffix}.sock`)}`,
    };
  });
  if (new Set(nodes.map((n) => n.name)).size !== nodes.length) {
    throw new Error(`node names clash: ${nodes.map((n) => n.name).join(', ')}`);
  }
  const root = packageRoot();
  const dist = opts.distDir ?? path.join(root, 'dist');
  for (const svc of ['apiserver', 'kubelet-sim', 'cri-shim']) {
    const main = path.join(dist, svc, 'main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  }
  // Last, once nothing can fail any more: the private socket directory of a long lab dir.
  let socketDir: string | undefined;
  if (nodes.some((n) => n.criListen.length - 'unix://'.length > MAX_UNIX_SOCKET_PATH)) {
    const tmp = os.tmpdir().length <= 40 ? os.tmpdir() : '/tmp';
    socketDir = fs.mkdtempSync(path.join(tmp, 'kexec-cri-'));
    for (const n of nodes) n.criListen = `unix://${path.join(socketDir, path.basename(n.criListen))}`;
  }
  return {
    dir,
    root,
    dist,
    nodes,
    socketDir,
    kubeletFault: fault && fault.mode !== 'none' ? formatKubeletFault(fault) : undefined,
    podLogsDir: path.join(dir, 'pod-logs'),
  };
}
