/**
 * The request path through the apiserver, for plain requests and for upgrades: request info →
 * authentication → authorisation → route → handler; every failure is one Status.
 *
 * Mirrors k8s.io/apiserver `pkg/server/config.go` DefaultBuildHandlerChain (WithRequestInfo,
 * WithAuthentication, WithAuthorization, in that order) and `pkg/endpoints/handlers/rest.go`
 * ConnectResource (the storage's Connect returns the handler that serves the request). Node
 * hands upgrades to the server's 'upgrade' event with the raw socket, so the same chain runs twice:
 * once writing to a ServerResponse, once writing a raw Status to the socket, which is then closed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { NODES_GROUP, type UserInfo } from '../shared/auth/tokens.js';
import { badRequest, resourceNotFound, unauthorized } from './api/errors.js';
import { StatusError, toStatus, writeStatus, writeStatusToSocket } from '../shared/status.js';
import { attributesFrom, authorize, forbidden, type Attributes, type Authorizer } from './authz.js';
import { isPublicPath, type Authenticator } from './authn.js';
import {
  aggregatedDiscovery,
  apiGroup,
  apiGroupList,
  apiResourceList,
  apiVersions,
  versionInfo,
} from './endpoints/discovery.js';
import { contentType, negotiate } from './endpoints/negotiation.js';
import { openAPIDocuments, type OpenAPIDocuments } from './endpoints/openapi.js';
import { serveResource, writeJSON } from './endpoints/handlers/rest.js';
import type { WatchLimits } from './endpoints/handlers/watch.js';
import { route, type Route } from './endpoints/installer.js';
import { newRequestInfo, type RequestInfo } from './endpoints/request-info.js';
import type { ConnectHandler, Context } from './registry/rest.js';
import { groupVersionString, type APIGroupVersion } from './storage-registry.js';
import { serveMetrics, type Registry } from '../shared/metrics/registry.js';
import type { ObservedRequest, RequestObserver } from './endpoints/filters/request-observer.js';
import { STREAM_PROTOCOL_ANNOTATION } from '../shared/metrics/stream-sessions.js';
import { type Logger } from '../shared/logging.js';
import { serveDebug, type DebugDeps } from './routes/debug.js';

export interface HandlerChainDeps {
  /** Every served group/version, the core group first. */
  apis: readonly APIGroupVersion[];
  /** NamespaceLifecycle admission for creates: rejects a namespace that does not exist. */
  admitNamespace?: (namespace: string) => Promise<void>;
  authenticator: Authenticator;
  /** `--authorization-policy-file`'s rules, checked after the built-in ones. */
  policy?: Authorizer;
  watchLimits: WatchLimits;
  /** host:port clients use to reach this server (for /api). */
  serverAddress: () => string;
  log: Logger;
  /** Audit IDs, audit events, metrics and the per-request log line (filters/request-observer.ts). */
  observer: RequestObserver;
  /** The Prometheus registry `/metrics` serves. */
  metrics: Registry;
  /** `/debug/sessions` and `/debug/flags/...` (routes/debug.ts); 404 without. */
  debug?: DebugDeps;
  /**
   * `-v`: at 0 (the default) a node's routine requests (its Node heartbeat, its pod list and
   * watch) are not logged, so an idle lab stays quiet; from 1 on every request is.
   */
  verbosity?: number;
}

/** A kubelet's periodic traffic: its Node's status, the list and watch of its pods (issue #13). */
function isNodeHeartbeat(user: UserInfo, info: RequestInfo): boolean {
  if (!user.groups.includes(NODES_GROUP)) return false;
  if (info.resource === 'nodes') return ['get', 'update', 'patch'].includes(info.verb);
  return info.resource === 'pods' && !info.subresource && (info.verb === 'list' || info.verb === 'watch');
}

interface Authorized {
  info: RequestInfo;
  user: UserInfo;
  attrs: Attributes;
}

export class HandlerChain {
  private openapi?: Promise<OpenAPIDocuments>;

  constructor(private readonly deps: HandlerChainDeps) {}

  /** For the server's 'request' event. */
  async serveHTTP(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const seen = this.deps.observer.begin(req);
    seen.watchResponse(res);
    try {
      const info = newRequestInfo(req);
      if (req.method === 'GET' && isPublicPath(info.path)) {
        seen.quiet = true;
        seen.audited = false;
        return this.servePublic(info, res);
      }
      const auth = this.authorize(req, info, seen);
      seen.quiet = (this.deps.verbosity ?? 0) < 1 && isNodeHeartbeat(auth.user, info);
      if (!info.isResourceRequest) return await this.serveNonResource(req, info, res);
      const r = route(this.deps.apis, info, req.method ?? 'GET');
      const ctx: Context = { namespace: info.namespace, user: auth.user, auditID: seen.auditID };
      if (r.action.kind === 'connect') {
        const handler = await this.connect(r, ctx, info);
        seen.log(`connect ${req.method} ${req.url} user=${auth.user.name}`);
        return handler.handle(req, res);
      }
      const scope = {
        ctx,
        attrs: auth.attrs,
        info,
        watchLimits: this.deps.watchLimits,
        admitNamespace: this.deps.admitNamespace,
      };
      await serveResource(r, scope, req, res);
    } catch (err) {
      const status = toStatus(err);
      if ((status.code ?? 500) >= 500) seen.log.error(`${req.method} ${req.url}: ${String(err)}`);
      seen.logStatus(status);
      if (!res.headersSent) writeStatus(res, status);
      else res.destroy();
    }
  }

  /** For the server's 'upgrade' event: only connect subresources can be upgraded. */
  async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Nothing may be read from the client until the backend has accepted the upgrade.
    socket.pause();
    socket.on('error', () => socket.destroy());
    const seen = this.deps.observer.begin(req);
    seen.watchSocket(socket);
    // Every upgrade's Events say which protocol it asked for, refusals included (lab 4 reads it).
    seen.annotate(STREAM_PROTOCOL_ANNOTATION, req.headers.upgrade ?? '');
    try {
      const info = newRequestInfo(req);
      const auth = this.authorize(req, info, seen);
      if (!info.isResourceRequest) throw resourceNotFound();
      const r = route(this.deps.apis, info, req.method ?? 'GET');
      if (r.action.kind !== 'connect')
        throw badRequest(`the resource ${r.path} does not support upgraded connections`);
      const ctx: Context = {
        namespace: info.namespace,
        user: auth.user,
        auditID: seen.auditID,
        annotate: (key, value) => seen.annotate(key, value),
      };
      const handler = await this.connect(r, ctx, info);
      seen.log(
        `upgrade ${req.method} ${req.url} user=${auth.user.name} protocol=${req.headers.upgrade ?? ''}`,
      );
      handler.handleUpgrade(req, socket, head);
    } catch (err) {
      const status = toStatus(err);
      if ((status.code ?? 500) >= 500) seen.log.error(`upgrade ${req.method} ${req.url}: ${String(err)}`);
      seen.log(`upgrade ${req.method} ${req.url} refused code=${status.code}`);
      seen.logStatus(status);
      writeStatusToSocket(socket, status);
    }
  }

  /** WithAuthentication, then WithAuthorization. */
  private authorize(req: IncomingMessage, info: RequestInfo, seen: ObservedRequest): Authorized {
    const user = this.deps.authenticator.authenticate(req);
    seen.identify(info, user);
    if (!user) throw unauthorized();
    // The credential has done its job; nothing after this point may forward it.
    delete req.headers.authorization;
    const attrs = attributesFrom(user, info);
    const decision = authorize(attrs, this.deps.policy);
    if (!decision.allowed) throw forbidden(attrs, decision.reason);
    return { info, user, attrs };
  }

  private async connect(r: Route, ctx: Context, info: RequestInfo): Promise<ConnectHandler> {
    if (r.action.kind !== 'connect') throw new StatusError(toStatus(new Error('not a connect route')));
    // A proxy subresource's path after `/proxy` travels as its `path` option (ProxyOptions.Path).
    const rest = info.parts.slice(3);
    if (!rest.length) return r.action.storage.connect(ctx, r.action.name, info.query);
    const options = new URLSearchParams(info.query);
    options.set('path', `/${rest.map(encodeURIComponent).join('/')}`);
    return r.action.storage.connect(ctx, r.action.name, options);
  }

  private servePublic(info: RequestInfo, res: ServerResponse): void {
    if (info.path.startsWith('/version')) return writeJSON(res, 200, versionInfo());
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end('ok');
  }

  private async serveNonResource(
    req: IncomingMessage,
    info: RequestInfo,
    res: ServerResponse,
  ): Promise<void> {
    const path = info.path.replace(/\/+$/, '') || '/';
    if (this.deps.debug && path.startsWith('/debug/')) {
      if (await serveDebug(this.deps.debug, path, info.verb, req, res)) return;
    }
    if (info.verb !== 'get') throw resourceNotFound();
    // Behind authorisation as upstream: nonResourceURLs ["/metrics"], verb get.
    if (path === '/metrics') return serveMetrics(this.deps.metrics, res);
    if (path === '/api' || path === '/apis') {
      // Aggregated discovery when asked for (kubectl 1.26+), the legacy documents otherwise.
      const target = negotiate(req.headers.accept, ['APIGroupDiscoveryList']);
      if (target.as) {
        const doc = aggregatedDiscovery(
          this.deps.apis,
          target.groupVersion!,
          path === '/api' ? 'api' : 'apis',
        );
        return writeJSON(res, 200, doc, contentType(target));
      }
      return writeJSON(
        res,
        200,
        path === '/api' ? apiVersions(this.deps.serverAddress()) : apiGroupList(this.deps.apis),
      );
    }
    const apis = /^\/apis\/([^/]+)$/.exec(path);
    const group = apis && apiGroup(this.deps.apis, apis[1]!);
    if (group) return writeJSON(res, 200, group);
    const version = /^\/(?:api\/([^/]+)|apis\/([^/]+)\/([^/]+))$/.exec(path);
    if (version) {
      const [, coreVersion, g = '', v = coreVersion] = version;
      const gv = this.deps.apis.find((x) => x.group === g && x.version === v);
      if (gv) return writeJSON(res, 200, apiResourceList(gv.resources, groupVersionString(gv)));
    }
    if (path === '/openapi/v3' || path.startsWith('/openapi/v3/')) {
      const openapi = await (this.openapi ??= openAPIDocuments(this.deps.apis));
      if (path === '/openapi/v3') return writeJSON(res, 200, openapi.index);
      const doc = openapi.documents.get(path.slice('/openapi/v3/'.length));
      if (doc) {
        res.setHeader('Cache-Control', info.query.get('hash') ? 'public, immutable' : 'no-cache, private');
        res.setHeader('Etag', `"${doc.hash}"`);
        return writeJSON(res, 200, doc.doc);
      }
    }
    if (path === '/openapi/v2' && (req.headers.accept ?? '').includes('protobuf')) {
      // kubectl before 1.27 insists on a protobuf OpenAPI v2 document for apply and validation
      // (client-go discovery OpenAPISchema). An empty gnostic Document, the zero-length protobuf
      // message, names no schemas: kubectl then checks nothing client-side and uses its built-in
      // types for patches, and this server validates fields itself.
      res.writeHead(200, {
        'Content-Type': 'application/com.github.proto-openapi.spec.v2.v1.0+protobuf',
        'Content-Length': '0',
      });
      return void res.end();
    }
    throw resourceNotFound();
  }
}
