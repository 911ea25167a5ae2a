/**
 * The apiserver's request metrics, with upstream's names and labels: every request counted by
 * verb, resource, subresource, scope and code, its duration observed, and the long-running ones
 * (watches, exec, attach, port-forward, log) open right now.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/metrics/metrics.go` (`apiserver_request_total`,
 * `apiserver_request_duration_seconds` with upstream's buckets, `apiserver_longrunning_requests`;
 * the reported verb: CONNECT for connect subresources, LIST/WATCH for collections, POST for a
 * create, PUT for an update, APPLY for a server-side apply patch) and the stream metrics of
 * `pkg/util/proxy/metrics/metrics.go` (KEP-4006: `apiserver_stream_translator_requests_total`,
 * `apiserver_stream_tunnel_requests_total`, `apiserver_websocket_streaming_requests_total`).
 * Differences: `group`, `version`, `component` and `dry_run` labels are kept for the same series
 * names, but `component` is always `apiserver` and `dry_run` is empty.
 */
import type { IncomingMessage } from 'node:http';
import { Counter, Gauge, Histogram, type Registry } from '../../../shared/metrics/registry.js';
import type { RequestInfo } from '../request-info.js';

const LABELS = [
  'verb',
  'dry_run',
  'group',
  'version',
  'resource',
  'subresource',
  'scope',
  'component',
] as const;
type Label = (typeof LABELS)[number];

/** Upstream's request duration buckets (seconds). */
const DURATION_BUCKETS = [
  0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45, 60,
];

export class ApiServerMetrics {
  readonly requests: Counter<Label | 'code'>;
  readonly duration: Histogram<Label>;
  readonly longRunning: Gauge<Label>;
  readonly streamTranslatorRequests: Counter<'code'>;
  readonly streamTunnelRequests: Counter<'code'>;
  readonly websocketStreamingRequests: Counter<'subresource' | 'proxy_type'>;

  constructor(readonly registry: Registry) {
    const registers = [registry];
    this.requests = new Counter({
      name: 'apiserver_request_total',
      help: 'Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.',
      labelNames: [...LABELS, 'code'],
      registers,
    });
    this.duration = new Histogram({
      name: 'apiserver_request_duration_seconds',
      help: 'Response latency distribution in seconds for each verb, dry run value, group, version, resource, subresource, scope and component.',
      labelNames: [...LABELS],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.longRunning = new Gauge({
      name: 'apiserver_longrunning_requests',
      help: 'Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, scope and component. Not all requests are tracked this way.',
      labelNames: [...LABELS],
      registers,
    });
    this.streamTranslatorRequests = new Counter({
      name: 'apiserver_stream_translator_requests_total',
      help: 'Total number of requests that were handled by the StreamTranslatorProxy, which processes streaming RemoteCommand/V5',
      labelNames: ['code'],
      registers,
    });
    this.streamTunnelRequests = new Counter({
      name: 'apiserver_stream_tunnel_requests_total',
      help: 'Total number of requests that were handled by the StreamTunnelProxy, which processes streaming PortForward/V2',
      labelNames: ['code'],
      registers,
    });
    this.websocketStreamingRequests = new Counter({
      name: 'apiserver_websocket_streaming_requests_total',
      help: 'Total number of WebSocket streaming requests (exec/attach/portforward) routed by the API server, labeled by subresource and proxy_type.',
      labelNames: ['subresource', 'proxy_type'],
      registers,
    });
  }

  /** A request that has ended (for a stream: closed) with this code. */
  observe(labels: Record<Label, string>, code: number, seconds: number): void {
    this.requests.inc({ ...labels, code: String(code) });
    this.duration.observe(labels, seconds);
  }
}

/** Connect subresources and watches hold their connection open (BasicLongRunningRequestCheck). */
export function isLongRunning(info: RequestInfo): boolean {
  return (
    info.verb === 'watch' ||
    (info.isResourceRequest && ['exec', 'attach', 'portforward', 'proxy', 'log'].includes(info.subresource))
  );
}

const CONNECT_SUBRESOURCES = new Set(['exec', 'attach', 'portforward', 'log', 'proxy']);

/** The labels upstream reports a request under. */
export function requestLabels(req: IncomingMessage, info: RequestInfo | undefined): Record<Label, string> {
  const base = { dry_run: '', component: 'apiserver' };
  if (!info || !info.isResourceRequest) {
    return {
      ...base,
      verb: (info?.verb ?? req.method ?? 'GET').toUpperCase(),
      group: '',
      version: '',
      resource: '',
      subresource: info?.path ?? '',
      scope: '',
    };
  }
  return {
    ...base,
    verb: reportedVerb(req, info),
    group: info.apiGroup,
    version: info.apiVersion,
    resource: info.resource,
    subresource: info.subresource,
    scope: info.namespace ? 'namespace' : info.name ? 'resource' : 'cluster',
  };
}

function reportedVerb(req: IncomingMessage, info: RequestInfo): string {
  if (CONNECT_SUBRESOURCES.has(info.subresource)) return 'CONNECT';
  switch (info.verb) {
    case 'create':
      return 'POST';
    case 'update':
      return 'PUT';
    case 'patch':
      return (req.headers['content-type'] ?? '').startsWith('application/apply-patch') ? 'APPLY' : 'PATCH';
    default:
      return info.verb.toUpperCase();
  }
}
