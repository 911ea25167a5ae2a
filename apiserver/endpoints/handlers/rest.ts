/**
 * The handlers behind the routes: get, list, create, update, patch and delete, each decoding the
 * request, calling its storage and writing the object (or list) as JSON.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/` (get.go GetResource / ListResource,
 * create.go, update.go, patch.go, delete.go): 201 for a create, 200 otherwise; admission
 * (here only NodeRestriction) sees every object a node writes before it is stored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest } from '../../api/errors.js';
import { isRecord } from '../../api/types.js';
import type { Attributes } from '../../authz.js';
import { admitNodeWrite } from '../../node-restriction.js';
import type { Context, DeleteOptions } from '../../registry/rest.js';
import { applyPatch, decode, decodeObject, readBody } from '../body.js';
import type { Route } from '../installer.js';
import type { RequestInfo } from '../request-info.js';
import { serveWatch, type WatchLimits } from './watch.js';

export interface HandlerScope {
  ctx: Context;
  attrs: Attributes;
  info: RequestInfo;
  watchLimits: WatchLimits;
}

export function writeJSON(res: ServerResponse, code: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Serves every action except connect (which needs the raw request, see connect.ts). */
export async function serveResource(
  route: Route,
  scope: HandlerScope,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const { ctx, attrs, info } = scope;
  const a = route.action;
  const q = info.query;
  switch (a.kind) {
    case 'get':
      return writeJSON(res, 200, await a.storage.get(ctx, a.name));
    case 'list':
      return writeJSON(res, 200, await a.storage.list(ctx, listOptions(q)));
    case 'watch': {
      const opts = listOptions(q);
      if (a.name) opts.fieldSelector = joinSelectors(opts.fieldSelector, `metadata.name=${a.name}`);
      return serveWatch(a.storage, ctx, opts, q.get('timeoutSeconds'), scope.watchLimits, req, res);
    }
    case 'create': {
      const obj = decodeObject(req, await readBody(req));
      admitNodeWrite(attrs, obj);
      return writeJSON(res, 201, await a.storage.create(ctx, obj));
    }
    case 'update': {
      const obj = decodeObject(req, await readBody(req));
      const updated = await a.storage.update(ctx, a.name, (old) => {
        const next = structuredClone(obj);
        admitNodeWrite(attrs, next, old);
        return next;
      });
      return writeJSON(res, 200, updated);
    }
    case 'patch': {
      const body = await readBody(req);
      const updated = await a.storage.update(ctx, a.name, (old) => {
        const next = applyPatch(req, body, old);
        if (!isRecord(next) || !isRecord(next.metadata))
          throw badRequest('the patch removed the object metadata');
        admitNodeWrite(attrs, next, old);
        return next;
      });
      return writeJSON(res, 200, updated);
    }
    case 'delete': {
      const body = await readBody(req);
      const opts: DeleteOptions = {};
      if (body.length) {
        const value = decode(req, body);
        if (isRecord(value) && isRecord(value.preconditions)) {
          opts.preconditions = value.preconditions as DeleteOptions['preconditions'];
        }
      }
      return writeJSON(res, 200, await a.storage.delete(ctx, a.name, opts));
    }
    case 'connect':
      throw new Error('connect is served by the connect handler');
  }
}

function listOptions(q: URLSearchParams): {
  fieldSelector?: string;
  labelSelector?: string;
  resourceVersion?: string;
} {
  return {
    fieldSelector: q.get('fieldSelector') ?? undefined,
    labelSelector: q.get('labelSelector') ?? undefined,
    resourceVersion: q.get('resourceVersion') ?? undefined,
  };
}

function joinSelectors(a: string | undefined, b: string): string {
  return a ? `${a},${b}` : b;
}
