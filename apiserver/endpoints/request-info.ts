/**
 * What a request is about, derived from its method, path and query alone: API prefix and version,
 * namespace, resource, subresource, name and the Kubernetes verb. Authorisation and routing both
 * read it.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/request/requestinfo.go` (RequestInfoFactory.NewRequestInfo):
 * paths shorter than /api/{version}/{resource} are non-resource requests; GET without a name is
 * list, or watch with `watch=true`; DELETE without a name is deletecollection; the legacy
 * `/api/v1/watch/...` prefix is understood. One addition: exec, attach and portforward are verb
 * `create` whatever the method, because a WebSocket upgrade arrives as a GET and `get` on
 * pods/exec must not allow running commands (kubernetes#78741, #133515; upstream 1.35 adds a
 * synthetic create check behind AuthorizePodWebsocketUpgradeCreatePermission, kubernetes#134577).
 */
import type { IncomingMessage } from 'node:http';
import { METHOD_VERBS } from '../../shared/auth/method-verbs.js';

export interface RequestInfo {
  isResourceRequest: boolean;
  /** The URL path, unescaped segments joined back. */
  path: string;
  verb: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  /** Path segments from the resource on (resource, name, subresource, …). */
  parts: string[];
  /** The legacy `/api/v1/watch/...` form was used. */
  watchPath: boolean;
  query: URLSearchParams;
}

/** Subresources that connect to a running container and so create something, however requested. */
export const CONNECT_CREATE_SUBRESOURCES = new Set(['exec', 'attach', 'portforward']);

/** Namespace subresources: `/api/v1/namespaces/{ns}/status` is about the namespace itself. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function newRequestInfo(req: Pick<IncomingMessage, 'method' | 'url'>): RequestInfo {
  const url = new URL(req.url ?? '/', 'http://apiserver.invalid');
  const method = (req.method ?? 'GET').toUpperCase();
  const info: RequestInfo = {
    isResourceRequest: false,
    path: url.pathname,
    verb: method.toLowerCase(),
    apiPrefix: '',
    apiGroup: '',
    apiVersion: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
    watchPath: false,
    query: url.searchParams,
  };
  let parts = splitPath(url.pathname);
  if (parts.length < 3 || (parts[0] !== 'api' && parts[0] !== 'apis')) return info;
  info.apiPrefix = parts[0]!;
  parts = parts.slice(1);
  if (info.apiPrefix === 'apis') {
    if (parts.length < 3) return info;
    info.apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  info.isResourceRequest = true;
  info.apiVersion = parts[0]!;
  parts = parts.slice(1);

  info.verb = METHOD_VERBS[method] ?? method.toLowerCase();
  if (parts[0] === 'watch') {
    info.verb = 'watch';
    info.watchPath = true;
    parts = parts.slice(1);
  }
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1]!;
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  info.parts = parts;
  info.resource = parts[0] ?? '';
  info.name = parts[1] ?? '';
  info.subresource = parts[2] ?? '';

  if (!info.name && info.verb === 'get') {
    info.verb = isTrue(url.searchParams.get('watch')) ? 'watch' : 'list';
    // A list or watch pinned to one name is authorised as that name (upstream does the same).
    const m = /(?:^|,)metadata\.name==?([^,]+)/.exec(url.searchParams.get('fieldSelector') ?? '');
    if (m && !m[1]!.includes('/')) info.name = m[1]!;
  }
  if (!info.name && info.verb === 'delete') info.verb = 'deletecollection';
  if (info.resource === 'pods' && CONNECT_CREATE_SUBRESOURCES.has(info.subresource)) info.verb = 'create';
  return info;
}

function isTrue(v: string | null): boolean {
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

function splitPath(path: string): string[] {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (!trimmed) return [];
  return trimmed.split('/').map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  });
}
