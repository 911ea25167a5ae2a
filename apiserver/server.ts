/**
 * Starts an apiserver in this process: storage, registry, handler chain and an HTTP server whose
 * 'request' and 'upgrade' events both go through the chain. main.ts wraps it with flags; tests
 * call it directly.
 *
 * Mirrors kube-apiserver's `cmd/kube-apiserver/app/server.go` (CreateServerChain → the core
 * registry with its storage) and k8s.io/apiserver `pkg/server/secure_serving.go` (serve until
 * stopped; on shutdown stop listening and drop the open connections, long-running ones included).
 * Serves https when given a certificate (kubectl sends credentials only over TLS, see
 * serving-cert.ts), and runs the small scheduler of scheduler.ts unless told not to.
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import type { ProxyError } from '../shared/proxy/proxy-error.js';
import { answerClientError, type Status } from '../shared/status.js';
import type { KeyObject } from 'node:crypto';
import type { StaticTokenEntry } from '../shared/auth/token-file.js';
import { Authenticator } from './authn.js';
import { policyAuthorizer, type PolicyRule } from './authz-policy.js';
import { authorize, type Authorizer } from './authz.js';
import { DEFAULT_WATCH_LIMITS, type WatchLimits } from './endpoints/handlers/watch.js';
import { HandlerChain } from './handler-chain.js';
import type { BindingREST } from './registry/pod/binding-rest.js';
import type { GenericStore } from './registry/generic-store.js';
import { Scheduler } from './scheduler.js';
import { KubeletCredentials, kubeletTlsOptions, type KubeletTlsFiles } from './kubelet-client.js';
import { NamespaceREST } from './registry/namespace/namespace-rest.js';
import {
  newAPIGroups,
  newLegacyRESTStorage,
  type APIGroupVersion,
  type StorageRegistry,
} from './storage-registry.js';
import { EtcdStore } from './storage/etcd-store.js';
import { newLogger, structured, type Logger } from '../shared/logging.js';
import { newRegistry, type Registry } from '../shared/metrics/registry.js';
import { StreamSessions } from '../shared/metrics/stream-sessions.js';
import { newLogBackend } from './audit/log-backend.js';
import { ApiServerMetrics } from './endpoints/metrics/metrics.js';
import { observedRequest, RequestObserver } from './endpoints/filters/request-observer.js';
import type { KubeletProxyConfig } from './registry/pod/exec-rest.js';
import { MemoryStore } from './storage/memory-store.js';
import type { Store } from './storage/store.js';

export interface ApiServerOptions {
  /** Address to listen on; default 127.0.0.1. */
  bindAddress?: string;
  /** Port; 0 picks a free one. Default 6443. */
  port?: number;
  /** The lab's token signing key (checks client tokens, mints the kubelet token). */
  signingKey: Buffer;
  /**
   * `--kubelet-token-signing-key-file`: the RSA private key that signs the token the apiserver
   * shows kubelets without a client certificate (kubelets hold only its public half).
   */
  kubeletTokenSigningKey?: KeyObject;
  /** `--token-auth-file` entries: static bearer tokens, tried before JWTs. */
  staticTokens?: StaticTokenEntry[];
  /** `--service-account-key-file` RSA public keys that verify RS256 client tokens. */
  serviceAccountKeys?: KeyObject[];
  /** `--max-connection-bytes-per-sec` for proxied streams; 0 is unlimited. */
  maxConnectionBytesPerSec?: number;
  /** Storage backend; an in-memory store by default. */
  store?: Store;
  /**
   * `--etcd-servers` (client URLs) and `--etcd-prefix` (default `/registry`): keep objects in etcd
   * (storage/etcd-store.ts) instead of memory. Ignored when `store` is given.
   */
  etcd?: { servers: string[]; prefix?: string; tls?: { ca: Buffer; cert?: Buffer; key?: Buffer } };
  watchLimits?: Partial<WatchLimits>;
  /** Time allowed to reach a kubelet and get its response head. */
  kubeletTimeoutMs?: number;
  /** `-v`: log level; from 1 on, nodes' routine requests are logged too (handler-chain.ts). */
  verbosity?: number;
  /** One line per event; a text logger on stderr by default. */
  log?: Logger;
  /** `--audit-log-path`: audit.k8s.io/v1 Events, one JSON line each (`-` for stdout). */
  auditLogPath?: string;
  /** Add the process and Node.js runtime metrics to /metrics (when this process is the apiserver). */
  processMetrics?: boolean;
  /**
   * Serve https with this certificate (chain) and key (PEM), e.g. issued by the lab CA
   * (shared/tls). kubectl sends credentials only over TLS (serving-cert.ts); without this the
   * server speaks plain http.
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** Run the scheduler (scheduler.ts) in this process; default true. */
  scheduler?: boolean;
  /**
   * Feature gate TranslateStreamCloseWebsocketRequests (default true, as upstream since 1.30): end v5
   * WebSocket exec/attach here and speak SPDY to the kubelet (util/proxy/stream-translator.ts).
   */
  translateStreamCloseWebsocketRequests?: boolean;
  /**
   * `--authorization-policy-file` rules (authz-policy.ts), added to the built-in policy; or an
   * authorizer over files it follows (watchPolicyFiles).
   */
  authorizationPolicy?: PolicyRule[] | Authorizer;
  /**
   * `--kubelet-certificate-authority`, `--kubelet-client-certificate`, `--kubelet-client-key`:
   * with any of them kubelets are dialled over https (kubelet-client.ts).
   */
  kubeletTls?: KubeletTlsFiles;
}

export interface ApiServer {
  url: string;
  port: number;
  store: Store;
  registry: StorageRegistry;
  /** The in-process scheduler, unless disabled. */
  scheduler?: Scheduler;
  /** What `/metrics` serves. */
  metrics: Registry;
  /** The streams this apiserver carries now (the lab's dashboard lists them). */
  streams: StreamSessions;
  /** `--max-connection-bytes-per-sec` from now on (streams already open keep theirs). */
  setMaxConnectionBytesPerSec(n: number): void;
  close(): Promise<void>;
}

function authenticator(opts: ApiServerOptions): Authenticator {
  const authn = { staticTokens: opts.staticTokens, serviceAccountKeys: opts.serviceAccountKeys };
  return new Authenticator(opts.signingKey, authn);
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const log = structured(opts.log ?? newLogger({ service: 'apiserver' }));
  const metricsRegistry = newRegistry({ withProcessMetrics: opts.processMetrics });
  const metrics = new ApiServerMetrics(metricsRegistry);
  const streams = new StreamSessions('apiserver', metricsRegistry);
  const audit = opts.auditLogPath ? newLogBackend(opts.auditLogPath, log) : undefined;
  const store =
    opts.store ??
    (opts.etcd
      ? await EtcdStore.connect({
          servers: opts.etcd.servers,
          prefix: opts.etcd.prefix,
          tls: opts.etcd.tls,
          log,
        })
      : new MemoryStore());
  if (!opts.store && opts.etcd) {
    log(`storage: etcd ${opts.etcd.servers.join(',')} prefix ${opts.etcd.prefix ?? '/registry'}`);
  }
  const credentials = new KubeletCredentials(opts.kubeletTokenSigningKey ?? opts.signingKey);
  const kubeletTls = kubeletTlsOptions(opts.kubeletTls, log);
  const kubeletProxy: KubeletProxyConfig = {
    // The apiserver's client certificate is its credential when it has one; the token otherwise.
    ...(opts.kubeletTls?.cert ? {} : { authorization: () => credentials.authorization() }),
    ...(kubeletTls ? { tls: kubeletTls } : {}),
    maxBytesPerSec: opts.maxConnectionBytesPerSec ?? 0,
    backendTimeoutMs: opts.kubeletTimeoutMs,
    translateStreamCloseWebsocketRequests: opts.translateStreamCloseWebsocketRequests ?? true,
    responder: (err: ProxyError, req): Status => {
      log
        .with({ auditID: req.headers['audit-id'] })
        .warn(`kubelet proxy ${req.method} ${req.url}: ${err.code} ${err.message}`);
      const status = err.toStatus();
      observedRequest(req)?.logStatus(status);
      return status;
    },
    streams,
    metrics,
  };
  const namespaces = new NamespaceREST(store);
  const registry = newLegacyRESTStorage(store, kubeletProxy, namespaces);
  const policy =
    typeof opts.authorizationPolicy === 'function'
      ? opts.authorizationPolicy
      : opts.authorizationPolicy && policyAuthorizer(opts.authorizationPolicy);
  const apis: APIGroupVersion[] = [
    { group: '', version: 'v1', resources: registry },
    ...newAPIGroups(store, namespaces, (a) => authorize(a, policy)),
  ];
  await namespaces.ensureSystemNamespaces();

  let scheduler: Scheduler | undefined;
  if (opts.scheduler ?? true) {
    scheduler = new Scheduler({
      pods: registry.get('pods') as GenericStore,
      nodes: registry.get('nodes') as GenericStore,
      binding: registry.get('pods/binding') as BindingREST,
      events: registry.get('events') as GenericStore,
      log,
    });
    await scheduler.start();
  }

  const server = opts.tls
    ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key })
    : http.createServer();
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  let address = '';
  const chain = new HandlerChain({
    apis,
    admitNamespace: (ns) => namespaces.admitCreate(ns),
    authenticator: authenticator(opts),
    policy,
    watchLimits: { ...DEFAULT_WATCH_LIMITS, ...opts.watchLimits },
    serverAddress: () => address,
    log,
    observer: new RequestObserver({ metrics, log, audit }),
    metrics: metricsRegistry,
    debug: {
      streams,
      maxConnectionBytesPerSec: {
        get: () => kubeletProxy.maxBytesPerSec,
        set: (n) => void (kubeletProxy.maxBytesPerSec = n),
      },
    },
    verbosity: opts.verbosity,
  });
  server.on('request', (req, res) => void chain.serveHTTP(req, res));
  server.on('upgrade', (req, socket, head) => void chain.serveUpgrade(req, socket, head));
  server.on('clientError', answerClientError);

  const host = opts.bindAddress ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 6443, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  address = `${urlHost}:${port}`;

  let closing: Promise<void> | undefined;
  return {
    url: `${opts.tls ? 'https' : 'http'}://${address}`,
    port,
    store,
    registry,
    scheduler,
    metrics: metricsRegistry,
    streams,
    setMaxConnectionBytesPerSec(n) {
      kubeletProxy.maxBytesPerSec = n;
    },
    close() {
      closing ??= (async () => {
        await scheduler?.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Watches and spliced streams never end by themselves: drop every connection.
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        await closed;
        await store.close();
        await audit?.close();
      })();
      return closing;
    },
  };
}
