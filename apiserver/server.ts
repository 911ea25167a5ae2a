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
import { DEFAULT_WATCH_LIMITS, type WatchLimits } from './endpoints/handlers/watch.js';
import { HandlerChain } from './handler-chain.js';
import type { BindingREST } from './registry/pod/binding-rest.js';
import type { GenericStore } from './registry/generic-store.js';
import { Scheduler } from './scheduler.js';
import { KubeletCredentials, kubeletTlsOptions, type KubeletTlsFiles } from './kubelet-client.js';
import { newLegacyRESTStorage, type StorageRegistry } from './storage-registry.js';
import { EtcdStore } from './storage/etcd-store.js';
import { MemoryStore } from './storage/memory-store.js';
import type { Store } from './storage/store.js';
import { stderrLogger, type Logger } from '../shared/logging.js';

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
  /** One line per event; stderr by default. */
  log?: Logger;
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
  /** `--authorization-policy-file` rules (authz-policy.ts), added to the built-in policy. */
  authorizationPolicy?: PolicyRule[];
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
  close(): Promise<void>;
}

function authenticator(opts: ApiServerOptions): Authenticator {
  const authn = { staticTokens: opts.staticTokens, serviceAccountKeys: opts.serviceAccountKeys };
  return new Authenticator(opts.signingKey, authn);
}

export async function startApiServer(opts: ApiServerOptions): Promise<ApiServer> {
  const log = opts.log ?? stderrLogger('apiserver');
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
  const registry = newLegacyRESTStorage(store, {
    // The apiserver's client certificate is its credential when it has one; the token otherwise.
    ...(opts.kubeletTls?.cert ? {} : { authorization: () => credentials.authorization() }),
    ...(kubeletTls ? { tls: kubeletTls } : {}),
    maxBytesPerSec: opts.maxConnectionBytesPerSec ?? 0,
    backendTimeoutMs: opts.kubeletTimeoutMs,
    translateStreamCloseWebsocketRequests: opts.translateStreamCloseWebsocketRequests ?? true,
    responder: (err: ProxyError, req): Status => {
      log(`kubelet proxy ${req.method} ${req.url}: ${err.code} ${err.message}`);
      return err.toStatus();
    },
  });

  let scheduler: Scheduler | undefined;
  if (opts.scheduler ?? true) {
    scheduler = new Scheduler({
      pods: registry.get('pods') as GenericStore,
      nodes: registry.get('nodes') as GenericStore,
      binding: registry.get('pods/binding') as BindingREST,
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
    registry,
    authenticator: authenticator(opts),
    policy: opts.authorizationPolicy && policyAuthorizer(opts.authorizationPolicy),
    watchLimits: { ...DEFAULT_WATCH_LIMITS, ...opts.watchLimits },
    serverAddress: () => address,
    log,
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
    close() {
      closing ??= (async () => {
        await scheduler?.stop();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Watches and spliced streams never end by themselves: drop every connection.
        server.closeAllConnections();
        for (const s of sockets) s.destroy();
        await closed;
        await store.close();
      })();
      return closing;
    },
  };
}
