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
import type { StorageRegistry } from './storage-registry.js';
import { type Logger } from '../shared/logging.js';

export interface HandlerChainDeps {
  registry: StorageRegistry;
  authenticator: Authenticator;
  /** `--authorization-policy-file`'s rules, checked after the built-in ones. */
  policy?: Authorizer;
  watchLimits: WatchLimits;
  /** host:port clients use to reach this server (for /api). */
  serverAddress: () => string;
  log: Logger;
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
  private readonly openapi: OpenAPIDocuments;

  constructor(private readonly deps: HandlerChainDeps) {
    this.openapi = openAPIDocuments(deps.registry);
  }

  /** For the server's 'request' event. */
  async serveHTTP(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    let who = '';
    let quiet = false;
    try {
      const info = newRequestInfo(req);
      if (req.method === 'GET' && isPublicPath(info.path)) return this.servePublic(info, res);
      const auth = this.authorize(req, info);
      who = auth.user.name;
      quiet = (this.deps.verbosity ?? 0) < 1 && isNodeHeartbeat(auth.user, info);
      if (!info.isResourceRequest) return this.serveNonResource(req, info, res);
      const r = route(this.deps.registry, info, req.method ?? 'GET');
      const ctx: Context = { namespace: info.namespace, user: auth.user };
      if (r.action.kind === 'connect') {
        const handler = await this.connect(r, ctx, info);
        this.deps.log(`connect ${req.method} ${req.url} user=${who}`);
        return handler.handle(req, res);
      }
      await serveResource(r, { ctx, attrs: auth.attrs, info, watchLimits: this.deps.watchLimits }, req, res);
    } catch (err) {
      const status = toStatus(err);
      if ((status.code ?? 500) >= 500) this.deps.log(`error ${req.method} ${req.url}: ${String(err)}`);
      if (!res.headersSent) writeStatus(res, status);
      else res.destroy();
    } finally {
      if (!quiet && !isPublicPath(req.url?.split('?')[0] ?? '')) {
        this.deps.log(
          `${req.method} ${req.url} user=${who || '-'} code=${res.statusCode} ${Date.now() - started}ms`,
        );
      }
    }
  }

  /** For the server's 'upgrade' event: only connect subresources can be upgraded. */
  async serveUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    // Nothing may be read from the client until the backend has accepted the upgrade.
    socket.pause();
    socket.on('error', () => socket.destroy());
    try {
      const info = newRequestInfo(req);
      const auth = this.authorize(req, info);
      if (!info.isResourceRequest) throw resourceNotFound();
      const r = route(this.deps.registry, info, req.method ?? 'GET');
      if (r.action.kind !== 'connect')
        throw badRequest(`the resource ${r.path} does not support upgraded connections`);
      const handler = await this.connect(r, { namespace: info.namespace, user: auth.user }, info);
      this.deps.log(
        `upgrade ${req.method} ${req.url} user=${auth.user.name} protocol=${req.headers.upgrade ?? ''}`,
      );
      handler.handleUpgrade(req, socket, head);
    } catch (err) {
      const status = toStatus(err);
      if ((status.code ?? 500) >= 500)
        this.deps.log(`error upgrade ${req.method} ${req.url}: ${String(err)}`);
      this.deps.log(`upgrade ${req.method} ${req.url} refused code=${status.code}`);
      writeStatusToSocket(socket, status);
    }
  }

  /** WithAuthentication, then WithAuthorization. */
  private authorize(req: IncomingMessage, info: RequestInfo): Authorized {
    const user = this.deps.authenticator.authenticate(req);
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
    return r.action.storage.connect(ctx, r.action.name, info.query);
  }

  private servePublic(info: RequestInfo, res: ServerResponse): void {
    if (info.path.startsWith('/version')) return writeJSON(res, 200, versionInfo());
    res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
    res.end('ok');
  }

  private serveNonResource(req: IncomingMessage, info: RequestInfo, res: ServerResponse): void {
    const path = info.path.replace(/\/+$/, '') || '/';
    if (info.verb !== 'get') throw resourceNotFound();
    if (path === '/api' || path === '/apis') {
      // Aggregated discovery when asked for (kubectl 1.26+), the legacy documents otherwise.
      const target = negotiate(req.headers.accept, ['APIGroupDiscoveryList']);
      if (target.as) {
        const doc = aggregatedDiscovery(
          this.deps.registry,
          target.groupVersion!,
          path === '/api' ? 'api' : 'apis',
        );
        return writeJSON(res, 200, doc, contentType(target));
      }
      return writeJSON(res, 200, path === '/api' ? apiVersions(this.deps.serverAddress()) : apiGroupList());
    }
    if (path === '/api/v1') return writeJSON(res, 200, apiResourceList(this.deps.registry));
    if (path === '/openapi/v3') return writeJSON(res, 200, this.openapi.index);
    if (path === '/openapi/v3/api/v1') {
      res.setHeader('Cache-Control', info.query.get('hash') ? 'public, immutable' : 'no-cache, private');
      res.setHeader('Etag', `"${this.openapi.coreV1Hash}"`);
      return writeJSON(res, 200, this.openapi.coreV1);
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
