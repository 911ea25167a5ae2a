/**
 * The lab: cri-shim, apiserver and kubelet-sim as three separate child processes, wired as
 * docs/wiring.md says, plus credentials, a kubeconfig and a running `demo` pod.
 *
 * TLS by default: the lab CA in `DIR/pki` (made at first start, kept after) issues the apiserver's
 * serving certificate; the kubeconfig carries the CA and the kubelet-sim trusts it through
 * NODE_EXTRA_CA_CERTS (pki.ts). `insecureHttp` keeps plain http, e.g. to read the exchange in a
 * packet capture; real kubectl then sends no credentials (see tryCommands).
 *
 * Start-up waits for each READY line (never sleeps), then creates the pod through the API and polls
 * it (bounded) until Running. `stop()` stops the kubelet, then the apiserver and the runtime, and
 * waits for every exit (bounded, then SIGKILL). A service that exits on its own is reported through
 * `failed`; `main.ts` then stops everything and exits 1.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../shared/cri/package-root.js';
import { loadClientConfig } from '../kexec/client.js';
import { KUBECONFIG_FILE, writeCredentials, writeKubeconfig } from './credentials.js';
import { ensureLabPki, trustEnv, type LabPki } from './pki.js';
import { demoPod, ensurePod, waitForPodRunning } from './pods.js';
import { defaultLog, describeExit, startService, type ExitInfo, type Service } from './supervisor.js';

export interface LabOptions {
  /** State directory: key, tokens, kubeconfig, runtime state. Default `.lab` (in the cwd). */
  dir?: string;
  /** apiserver port; 0 picks a free one (the kubeconfig records the real one). Default 6443. */
  port?: number;
  /** The apiserver's `--max-connection-bytes-per-sec` (0 = unlimited). */
  maxConnectionBytesPerSec?: number;
  nodeName?: string;
  /** Serve the apiserver over plain http instead of https from the lab CA. Default false. */
  insecureHttp?: boolean;
  /** cri-shim `--isolation`. */
  isolation?: 'auto' | 'bwrap' | 'none';
  /** Create the demo pod and wait for it (default true). */
  demoPod?: boolean;
  /** Where the compiled services live. Default `<package root>/dist`. */
  distDir?: string;
  /** Every service output line, prefixed `[service] `, and the lab's own `[lab] ` lines. Default: stderr. */
  log?: (line: string) => void;
  readyTimeoutMs?: number;
  podTimeoutMs?: number;
  /** Aborting it during start-up stops what has started and rejects. */
  signal?: AbortSignal;
}

export interface ServiceFailure extends ExitInfo {
  service: string;
}

export interface Lab {
  dir: string;
  kubeconfigPath: string;
  apiserverUrl: string;
  /** The lab CA (`DIR/pki/ca.crt`) the kubeconfig trusts; undefined with insecureHttp. */
  caFile?: string;
  kubeletUrl: string;
  adminToken: string;
  /** pid of each service process. */
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
  const root = packageRoot();
  const dist = opts.distDir ?? path.join(root, 'dist');
  for (const svc of ['apiserver', 'kubelet-sim', 'cri-shim']) {
    const main = path.join(dist, svc, 'main.js');
    if (!fs.existsSync(main)) throw new Error(`${main} is missing: run \`npm run build\` first`);
  }

  const creds = writeCredentials(dir, [nodeName]);
  const services: Service[] = [];
  let stopping = false;
  let reportFailure!: (f: ServiceFailure) => void;
  const failed = new Promise<ServiceFailure>((r) => (reportFailure = r));
  const start = (name: string, args: string[], env?: NodeJS.ProcessEnv): Service => {
    const svc = startService({
      name,
      script: path.join(dist, name, 'main.js'),
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
      const byName = (n: string) => services.filter((s) => s.name === n);
      // The kubelet first, so it does not log errors about a vanished apiserver or runtime.
      await Promise.all(byName('kubelet-sim').map((s) => s.stop()));
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

  try {
    let pki: LabPki | undefined;
    if (!opts.insecureHttp) {
      pki = await orDied(ensureLabPki(dir));
      say(`lab CA ${pki.caFile}; apiserver serving certificate ${pki.apiserverCertFile}`);
    }
    const sock = path.join(dir, 'cri-shim.sock');
    const listen = sock.length <= MAX_UNIX_SOCKET_PATH ? `unix://${sock}` : 'tcp://127.0.0.1:0';
    const criShim = start('cri-shim', [
      '--listen',
      listen,
      '--streaming-address',
      '127.0.0.1',
      '--streaming-port',
      '0',
      '--root',
      path.join(dir, 'cri-shim'),
      '--isolation',
      opts.isolation ?? 'auto',
    ]);
    const apiserver = start('apiserver', [
      '--bind-address',
      '127.0.0.1',
      '--port',
      String(opts.port ?? 6443),
      '--token-signing-key-file',
      creds.keyFile,
      '--max-connection-bytes-per-sec',
      String(opts.maxConnectionBytesPerSec ?? 0),
      ...(pki
        ? ['--tls-cert-file', pki.apiserverCertFile, '--tls-private-key-file', pki.apiserverKeyFile]
        : []),
    ]);
    const [criReady, apiReady] = await orDied(Promise.all([criShim.ready, apiserver.ready]));
    const endpoint = String(criReady.endpoint);
    const apiserverUrl = String(apiReady.url);
    say(`cri-shim ready at ${endpoint}, apiserver ready at ${apiserverUrl}`);

    // The kubelet-sim dials the https apiserver with Node's fetch: the CA reaches it by environment.
    const kubelet = start(
      'kubelet-sim',
      [
        '--apiserver',
        apiserverUrl,
        '--token-file',
        creds.nodeTokenFiles[nodeName],
        '--token-signing-key-file',
        creds.keyFile,
        '--node-name',
        nodeName,
        '--address',
        '127.0.0.1',
        '--port',
        '0',
        '--container-runtime-endpoint',
        endpoint,
      ],
      pki && trustEnv(pki),
    );
    const kubeletReady = await orDied(kubelet.ready);
    const kubeletUrl = String(kubeletReady.url);
    say(`kubelet-sim ready at ${kubeletUrl}, node ${String(kubeletReady.node ?? nodeName)} registered`);

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
      adminToken: creds.adminToken,
      pids: Object.fromEntries(services.map((s) => [s.name, s.pid])),
      failed,
      stop,
    };
  } catch (err) {
    abort.abort();
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
