/**
 * The pod subresources that are streams served by the pod's kubelet: `pods/exec`, `pods/attach`,
 * `pods/portforward` (upgrades only) and `pods/log` (a plain GET, possibly long-lived with follow).
 * Each Connect resolves the kubelet location and returns an UpgradeAwareHandler aimed at it.
 *
 * Mirrors kubernetes `pkg/registry/core/pod/rest/subresources.go` (ExecREST, AttachREST,
 * PortForwardREST: ConnectMethods GET and POST, newThrottledUpgradeAwareProxyHandler with
 * UpgradeRequired, RejectForwardingRedirects and MaxBytesPerSec) and `pkg/registry/core/pod/rest/log.go`.
 * `maxBytesPerSec` reaches every path a session can take: the splice, the StreamTranslator (upstream
 * passes PerConnectionBandwidthLimitBytesPerSec to NewStreamTranslatorHandler) and the port-forward
 * tunnel (upstream wraps the throttled handler itself).
 * Differences: LogREST proxies with the same handler (upstream streams through a LocationStreamer),
 * and the kubelet credential is a bearer token (docs/wiring.md), the client's own never crossing.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { ProxyError } from '../../../shared/proxy/proxy-error.js';
import { UpgradeAwareHandler } from '../../../shared/proxy/upgrade-aware-handler.js';
import type { Status } from '../../../shared/status.js';
import { badRequest } from '../../api/errors.js';
import { kubeletHeaders } from '../../kubelet-client.js';
import { queryBool, streamOptions, streamParams, type PodLocator } from './pod-location.js';
import type { ConnectHandler, Connecter, Context } from '../rest.js';
import { isWebSocketV5Request, StreamTranslatorHandler } from '../../util/proxy/stream-translator.js';
import { isTunnelRequest, TunnelingHandler } from '../../util/proxy/stream-tunnel.js';
import { UpgradeRouter } from '../../util/proxy/upgrade-router.js';
import {
  STREAM_PATH_ANNOTATION,
  type StreamInfo,
  type StreamSessions,
} from '../../../shared/metrics/stream-sessions.js';
import type { ApiServerMetrics } from '../../endpoints/metrics/metrics.js';

export interface KubeletProxyConfig {
  /**
   * The `Authorization` value the apiserver presents to kubelets; absent when its client
   * certificate (in `tls`) is its credential, as upstream sends no token then.
   */
  authorization?: () => string;
  /** Dial kubelets over https with these settings (CA, client certificate); plain http without. */
  tls?: ConnectionOptions;
  /** `--max-connection-bytes-per-sec`; 0 is unlimited. */
  maxBytesPerSec: number;
  backendTimeoutMs?: number;
  /** Maps a proxy failure to the client's Status (and is the place to log it). */
  responder?: (err: ProxyError, req: IncomingMessage) => Status;
  /**
   * Feature gate TranslateStreamCloseWebsocketRequests (default on, as upstream since 1.30):
   * v5 WebSocket exec/attach is ended here and carried to the kubelet as SPDY.
   */
  translateStreamCloseWebsocketRequests?: boolean;
  /** Counts each spliced stream's bytes and lists it for /debug/sessions. */
  streams?: StreamSessions;
  /** Where the StreamTranslator and tunnel counters live. */
  metrics?: ApiServerMetrics;
}

/** newThrottledUpgradeAwareProxyHandler, with this hop's credentials. */
export function kubeletProxyHandler(
  location: URL,
  cfg: KubeletProxyConfig,
  upgradeRequired: boolean,
  stream?: StreamInfo,
): UpgradeAwareHandler {
  return new UpgradeAwareHandler({
    ...(stream && cfg.streams ? cfg.streams.spliceHooks(stream) : {}),
    location,
    upgradeRequired,
    rejectForwardingRedirects: true,
    maxBytesPerSec: cfg.maxBytesPerSec,
    useLocationHost: true,
    stripHeaders: ['Authorization'],
    backendHeaders: kubeletHeaders(cfg),
    // An option given as undefined keeps the handler's default (it drops undefined options).
    tls: cfg.tls,
    backendTimeoutMs: cfg.backendTimeoutMs,
    responder: cfg.responder,
  });
}

abstract class PodStreamREST implements Connecter {
  abstract readonly kind: string;
  readonly namespaced = true;
  readonly connectMethods: string[] = ['GET', 'POST'];

  constructor(
    protected readonly locator: PodLocator,
    protected readonly cfg: KubeletProxyConfig,
  ) {}

  abstract connect(ctx: Context, name: string, options: URLSearchParams): Promise<ConnectHandler>;
}

/**
 * Exec and attach: the same kubelet stream, with or without a command (upstream streamLocation),
 * spliced, or ended here for v5 WebSocket clients when the StreamTranslator is on.
 */
abstract class RemoteCommandREST extends PodStreamREST {
  protected abstract readonly path: 'exec' | 'attach';

  async connect(ctx: Context, name: string, q: URLSearchParams): Promise<ConnectHandler> {
    const opts = streamOptions(q);
    const params = streamParams(opts, this.path === 'exec');
    const loc = (await this.locator.streamLocation(ctx, name, opts.container, this.path, params))!;
    const info = streamInfo(ctx, this.path, name);
    const splice = kubeletProxyHandler(loc, this.cfg, true, { ...info, path: 'spliced' });
    const metrics = this.cfg.metrics;
    if (this.cfg.translateStreamCloseWebsocketRequests === false) {
      return new UpgradeRouter(splice, () => false, splice, routed(ctx, metrics, this.path, 'translated'));
    }
    const translator = new StreamTranslatorHandler(loc, opts, {
      authorization: this.cfg.authorization,
      tls: this.cfg.tls,
      maxBytesPerSec: this.cfg.maxBytesPerSec,
      streams: this.cfg.streams,
      stream: { ...info, path: 'translated' },
      onEnd: (status) => metrics?.streamTranslatorRequests.inc({ code: String(status.code ?? 200) }),
    });
    return new UpgradeRouter(
      splice,
      isWebSocketV5Request,
      translator,
      routed(ctx, metrics, this.path, 'translated'),
    );
  }
}

export class ExecREST extends RemoteCommandREST {
  readonly kind = 'PodExecOptions';
  protected readonly path = 'exec';
}

export class AttachREST extends RemoteCommandREST {
  readonly kind = 'PodAttachOptions';
  protected readonly path = 'attach';
}

export class PortForwardREST extends PodStreamREST {
  readonly kind = 'PodPortForwardOptions';

  async connect(ctx: Context, name: string, q: URLSearchParams): Promise<ConnectHandler> {
    const ports: number[] = [];
    for (const raw of q.getAll('ports').flatMap((v) => v.split(','))) {
      const port = Number(raw.trim());
      if (!Number.isInteger(port) || port < 1 || port > 65535)
        throw badRequest(`invalid port ${JSON.stringify(raw)}`);
      ports.push(port);
    }
    const loc = await this.locator.portForwardLocation(ctx, name, ports);
    const info = streamInfo(ctx, 'portforward', name);
    const splice = kubeletProxyHandler(loc, this.cfg, true, { ...info, path: 'spliced' });
    const tunnel = new TunnelingHandler(loc, {
      authorization: this.cfg.authorization,
      tls: this.cfg.tls,
      maxBytesPerSec: this.cfg.maxBytesPerSec,
      onTunnel: (code) => this.cfg.metrics?.streamTunnelRequests.inc({ code }),
    });
    return new UpgradeRouter(
      splice,
      isTunnelRequest,
      tunnel,
      routed(ctx, this.cfg.metrics, 'portforward', 'tunnelled'),
    );
  }
}

function streamInfo(ctx: Context, kind: string, name: string): Omit<StreamInfo, 'path'> {
  return { auditID: ctx.auditID, kind, user: ctx.user.name, target: `${ctx.namespace}/${name}` };
}

/**
 * Told which way each upgrade went: the audit Events say so (spliced, or the special way), and
 * apiserver_websocket_streaming_requests_total counts the WebSocket ones.
 */
function routed(
  ctx: Context,
  metrics: ApiServerMetrics | undefined,
  subresource: string,
  special: 'translated' | 'tunnelled',
) {
  return (req: IncomingMessage, isSpecial: boolean): void => {
    const upgrade = req.headers.upgrade ?? '';
    ctx.annotate?.(STREAM_PATH_ANNOTATION, isSpecial ? special : 'spliced');
    if (!metrics || upgrade.toLowerCase() !== 'websocket') return;
    const proxyType = isSpecial ? 'translated_at_apiserver' : 'proxied_to_kubelet';
    metrics.websocketStreamingRequests.inc({ subresource, proxy_type: proxyType });
  };
}

/** PodLogOptions the kubelet understands, passed on when set. */
const LOG_BOOL_PARAMS = ['follow', 'previous', 'timestamps'];
const LOG_VALUE_PARAMS = ['sinceSeconds', 'sinceTime', 'tailLines', 'limitBytes'];

export class LogREST implements Connecter {
  readonly kind = 'Pod';
  readonly namespaced = true;
  readonly connectMethods = ['GET'];

  constructor(
    private readonly locator: PodLocator,
    private readonly cfg: KubeletProxyConfig,
  ) {}

  async connect(ctx: Context, name: string, q: URLSearchParams): Promise<ConnectHandler> {
    const params = new URLSearchParams();
    for (const p of LOG_BOOL_PARAMS) if (queryBool(q, p)) params.set(p, 'true');
    for (const p of LOG_VALUE_PARAMS) {
      const v = q.get(p);
      if (v === null) continue;
      if (p !== 'sinceTime' && !/^\d+$/.test(v)) throw badRequest(`invalid ${p}: ${JSON.stringify(v)}`);
      params.set(p, v);
    }
    const loc = await this.locator.streamLocation(
      ctx,
      name,
      q.get('container') ?? '',
      'containerLogs',
      params,
    );
    if (!loc) return EMPTY_LOG;
    return new LocationStreamer(loc, kubeletProxyHandler(loc, this.cfg, false));
  }
}

/** Sends the kubelet the apiserver's own path and query (the handler would keep the client's query). */
class LocationStreamer implements ConnectHandler {
  constructor(
    private readonly loc: URL,
    private readonly handler: UpgradeAwareHandler,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    req.url = this.loc.pathname + this.loc.search;
    this.handler.handle(req, res);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.handler.handleUpgrade(req, socket, head);
  }
}

/** The log of a pod with no node yet: empty, as upstream's nil location streams nothing. */
const EMPTY_LOG: ConnectHandler = {
  handle: (_req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '0' });
    res.end();
  },
  handleUpgrade: (_req, socket) => socket.destroy(),
};
