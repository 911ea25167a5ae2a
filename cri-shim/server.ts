/**
 * Wires the cri-shim together: image store, runtime, request cache, the CRI gRPC server and the
 * streaming server. `startCriShim` is what `main.ts` runs and what tests start in-process.
 *
 * The gRPC server listens on a unix socket (`unix:///abs/path`; a stale socket file from a
 * previous run is replaced) or TCP (`tcp://host:port`, port 0 picks one). `close()` kills every
 * container process, closes both servers and removes the socket file; container directories
 * under `--root` stay for inspection.
 *
 * `streamingTls` (main.ts `--streaming-tls-cert-file` + `--streaming-tls-private-key-file`) makes
 * the streaming server https: the files are read once at start, and a missing or unreadable one,
 * or a key that does not match the certificate, fails the start (containerd: "failed to load x509
 * key pair for stream server").
 */
import fs from 'node:fs';
import path from 'node:path';
import { createSecureContext } from 'node:tls';
import grpc from '@grpc/grpc-js';
import { imageServiceDefinition, runtimeServiceDefinition } from '../shared/cri/proto.js';
import { fromPackageRoot } from '../shared/package-root.js';
import { criServiceImplementation } from './cri-service.js';
import { imageServiceImplementation } from './image-service.js';
import { ImageStore } from './images.js';
import { chooseIsolation, type IsolationMode, type IsolationRequest } from './isolation.js';
import { RequestCache } from './request-cache.js';
import { CgroupManager } from './cgroups.js';
import { CriShimMetrics } from './metrics.js';
import { ContainerRuntime } from './runtime.js';
import { StreamingServer, type StreamingTlsOptions } from './streaming-server.js';
import { errorMessage, stderrLogger, type Logger } from '../shared/logging.js';

export interface CriShimOptions {
  /** `unix:///abs/path` or `tcp://host:port`. */
  listen: string;
  streamingAddress?: string;
  streamingPort?: number;
  /** State directory: sandboxes, container filesystems, logs. */
  root: string;
  /** Image templates; default `cri-shim/images` in the source tree. */
  images?: string;
  isolation?: IsolationRequest;
  /** Where log lines go; default stderr. */
  log?: Logger;
  /** Longest container log line before it is split into partial (P) lines; default 16 KiB. */
  maxLogLineBytes?: number;
  /**
   * Refuse WebSocket upgrades on the streaming server (400 Status), as real CRI runtimes, which
   * only speak SPDY; the apiserver's StreamTranslator bridges v5 WebSocket clients.
   */
  spdyOnly?: boolean;
  /**
   * End exec/attach/port-forward sessions whose connection carried no bytes either way for this
   * long (kubelet `--streaming-connection-idle-timeout`); default 4 h; 0 = never.
   */
  streamingConnectionIdleTimeoutMs?: number;
  /**
   * Serve the streaming server over https with this certificate and key (PEM files); the
   * streaming URLs are then `https://…` (containerd `enable_tls_streaming` +
   * `x509_key_pair_streaming`). Plain http without.
   */
  streamingTls?: { certFile: string; keyFile: string };
  /** For tests: a smaller request cache. */
  requestCache?: RequestCache;
  /** pids.max of every pod (the kubelet's --pod-max-pids); default 1024; 0 = unlimited. */
  podPidsLimit?: number;
}

export interface CriShim {
  endpoint: string;
  streamingUrl: string;
  isolation: IsolationMode;
  runtime: ContainerRuntime;
  close(): Promise<void>;
}

export const DEFAULT_IMAGES_DIR = (): string => fromPackageRoot('cri-shim', 'images');

function defaultLog(line: string): void {
  stderrLogger('cri-shim')(line);
}

async function bindGrpc(
  server: grpc.Server,
  listen: string,
): Promise<{ endpoint: string; socketPath?: string }> {
  const bind = (target: string): Promise<number> =>
    new Promise((resolve, reject) =>
      server.bindAsync(target, grpc.ServerCredentials.createInsecure(), (err, port) =>
        err ? reject(err) : resolve(port),
      ),
    );
  if (listen.startsWith('unix://')) {
    const socketPath = listen.slice('unix://'.length);
    if (!path.isAbsolute(socketPath))
      throw new Error(`--listen ${listen}: the unix socket path must be absolute`);
    fs.mkdirSync(path.dirname(socketPath), { recursive: true });
    try {
      if (fs.lstatSync(socketPath).isSocket()) fs.unlinkSync(socketPath);
    } catch {
      // nothing there
    }
    await bind(`unix://${socketPath}`);
    // Whoever can connect runs commands as root in every container (ExecSync): owner only, as
    // containerd's socket.
    fs.chmodSync(socketPath, 0o600);
    return { endpoint: `unix://${socketPath}`, socketPath };
  }
  if (listen.startsWith('tcp://')) {
    const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):(\d+)\/?$/.exec(listen);
    if (!m) throw new Error(`--listen ${listen}: expected tcp://host:port`);
    const port = await bind(`${m[1]}:${m[2]}`);
    return { endpoint: `tcp://${m[1]}:${port}` };
  }
  throw new Error(`--listen ${listen}: expected unix:///path or tcp://host:port`);
}

/** Reads the streaming key pair; a clear error names the file that failed. */
function loadStreamingTls(files: { certFile: string; keyFile: string }): StreamingTlsOptions {
  const read = (file: string, what: string): Buffer => {
    try {
      return fs.readFileSync(file);
    } catch (err) {
      throw new Error(`streaming TLS ${what} ${file}: ${errorMessage(err)}`);
    }
  };
  const tls = { cert: read(files.certFile, 'certificate'), key: read(files.keyFile, 'private key') };
  try {
    // Fails on unparsable PEM or a key that is not the certificate's.
    createSecureContext(tls);
  } catch (err) {
    throw new Error(
      `failed to load x509 key pair for the streaming server (${files.certFile}, ${files.keyFile}): ${errorMessage(err)}`,
    );
  }
  return tls;
}

export async function startCriShim(opts: CriShimOptions): Promise<CriShim> {
  const log = opts.log ?? defaultLog;
  const tls = opts.streamingTls && loadStreamingTls(opts.streamingTls);
  const isolation = chooseIsolation(opts.isolation ?? 'auto', log);
  const root = path.resolve(opts.root);
  const images = new ImageStore(path.resolve(opts.images ?? DEFAULT_IMAGES_DIR()));
  let cgroups: CgroupManager | undefined;
  if (isolation === 'bwrap') {
    const found = CgroupManager.detect();
    if (typeof found === 'string') log(`WARNING: pods run without memory and pids limits: ${found}`);
    else cgroups = found;
  }
  const runtime = new ContainerRuntime({
    root,
    images,
    isolation,
    log,
    maxLogLineBytes: opts.maxLogLineBytes,
    cgroups,
    podPidsLimit: opts.podPidsLimit,
  });
  const cache = opts.requestCache ?? new RequestCache();

  const metrics = new CriShimMetrics();
  const streaming = new StreamingServer({
    runtime,
    cache,
    log,
    metrics,
    spdyOnly: opts.spdyOnly,
    streamingConnectionIdleTimeoutMs: opts.streamingConnectionIdleTimeoutMs,
    tls,
  });
  const streamingUrl = await streaming.listen(opts.streamingAddress ?? '127.0.0.1', opts.streamingPort ?? 0);

  const server = new grpc.Server();
  server.addService(
    runtimeServiceDefinition(),
    metrics.instrument(criServiceImplementation({ runtime, cache, streamingUrl: () => streaming.url, log })),
  );
  server.addService(imageServiceDefinition(), imageServiceImplementation(images));
  let bound: { endpoint: string; socketPath?: string };
  try {
    bound = await bindGrpc(server, opts.listen);
  } catch (err) {
    await streaming.close();
    throw err;
  }
  log(
    `CRI on ${bound.endpoint}, streaming on ${streamingUrl}${opts.spdyOnly ? ' (SPDY only)' : ''}, isolation ${isolation}${cgroups ? ` (cgroup v${cgroups.version} limits)` : ''}, images ${images.root} (${images.list().join(', ') || 'none'})`,
  );

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await runtime.shutdown();
      await streaming.close();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      if (bound.socketPath) fs.rmSync(bound.socketPath, { force: true });
    })());

  return { endpoint: bound.endpoint, streamingUrl, isolation, runtime, close };
}
