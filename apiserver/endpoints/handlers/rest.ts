/**
 * The handlers behind the routes: get, list, create, update, patch and delete, each decoding the
 * request, calling its storage and writing the object (or list) as JSON.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/` (get.go GetResource / ListResource,
 * create.go, update.go, patch.go, delete.go): 201 for a create, 200 otherwise; admission
 * (here only NodeRestriction) sees every object a node writes before it is stored; every write
 * of a stored kind records its manager in `metadata.managedFields` (fieldmanager/), and a
 * server-side apply is apply.ts.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { badRequest } from '../../api/errors.js';
import { isRecord } from '../../api/json-values.js';
import type { Attributes } from '../../authz.js';
import { admitNodeWrite } from '../../node-restriction.js';
import type { KubeList, KubeObject, WatchEvent } from '../../../shared/api/core-v1.js';
import {
  isLister,
  isUpdater,
  type Context,
  type DeleteOptions,
  type WriteOptions,
} from '../../registry/rest.js';
import { includeObjectPolicy, isList, transform } from '../../printers/table-convertor.js';
import { checkFields, fieldValidationDirective, warningHeaders } from '../../registry/field-validation.js';
import { contentType, negotiate } from '../negotiation.js';
import { APPLY_PATCH_TYPE, applyPatch, decode, decodeObject, mediaType, readBody } from '../body.js';
import type { Route } from '../installer.js';
import type { RequestInfo } from '../request-info.js';
import { serveWatch, type WatchLimits } from './watch.js';
import { serveApply } from './apply.js';
import { recordUpdate, type FieldManagerScope } from './fieldmanager/field-manager.js';
import { writeManager } from './write-options.js';

export interface HandlerScope {
  ctx: Context;
  attrs: Attributes;
  info: RequestInfo;
  watchLimits: WatchLimits;
  /** NamespaceLifecycle: a create in a namespace that does not exist is a 404. */
  admitNamespace?: (namespace: string) => Promise<void>;
}

export function writeJSON(
  res: ServerResponse,
  code: number,
  value: unknown,
  type = 'application/json',
): void {
  const body = JSON.stringify(value);
  res.writeHead(code, { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}

/** Writes an object or list in the rendering the client negotiated (a Table for kubectl get). */
function writeRendered(
  req: IncomingMessage,
  res: ServerResponse,
  q: URLSearchParams,
  kind: string,
  value: KubeObject | KubeList,
): void {
  const allowed = isList(value)
    ? (['Table', 'PartialObjectMetadataList'] as const)
    : (['Table', 'PartialObjectMetadata'] as const);
  const target = negotiate(req.headers.accept, allowed);
  const out = transform(value, target, kind, includeObjectPolicy(q.get('includeObject')));
  writeJSON(res, 200, out, contentType(target));
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
      return writeRendered(req, res, q, a.storage.kind, await a.storage.get(ctx, a.name));
    case 'list':
      return writeRendered(req, res, q, a.storage.kind, await a.storage.list(ctx, listOptions(q)));
    case 'watch': {
      const opts = listOptions(q);
      if (a.name) opts.fieldSelector = joinSelectors(opts.fieldSelector, `metadata.name=${a.name}`);
      // Each event's object is rendered alone (kubectl get -w asks for Tables).
      const target = negotiate(req.headers.accept, ['Table', 'PartialObjectMetadata']);
      const include = includeObjectPolicy(q.get('includeObject'));
      const render = (ev: WatchEvent): WatchEvent =>
        ev.type === 'ERROR' || !target.as
          ? ev
          : {
              type: ev.type,
              object: transform(ev.object as KubeObject, target, a.storage.kind, include) as KubeObject,
            };
      const storage = a.storage;
      const initialEventsEnd =
        q.get('sendInitialEvents') === 'true' && q.get('allowWatchBookmarks') === 'true' && isLister(storage)
          ? {
              kind: storage.kind,
              resourceVersion: async () => (await storage.list(ctx, opts)).metadata?.resourceVersion ?? '0',
            }
          : undefined;
      return serveWatch(
        storage,
        ctx,
        opts,
        q.get('timeoutSeconds'),
        scope.watchLimits,
        req,
        res,
        render,
        initialEventsEnd,
      );
    }
    case 'create': {
      const obj = decodeObject(req, await readBody(req));
      const { manager } = writeManager(req, q, 'CreateOptions');
      if (a.storage.namespaced) await scope.admitNamespace?.(ctx.namespace);
      warn(res, checkFields(obj, a.storage.kind, fieldValidationDirective(q)));
      admitNodeWrite(attrs, obj);
      const managed = fieldManagerScope(route, info);
      if (managed) recordUpdate(undefined, obj, manager, managed);
      return writeJSON(res, 201, await a.storage.create(ctx, obj, createOptions(q)));
    }
    case 'createNamed': {
      const obj = decodeObject(req, await readBody(req));
      warn(res, checkFields(obj, a.storage.kind, fieldValidationDirective(q)));
      admitNodeWrite(attrs, obj);
      return writeJSON(res, 201, await a.storage.createNamed(ctx, a.name, obj, createOptions(q)));
    }
    case 'update': {
      const obj = decodeObject(req, await readBody(req));
      const { manager } = writeManager(req, q, 'UpdateOptions');
      warn(res, checkFields(obj, a.storage.kind, fieldValidationDirective(q)));
      const managed = fieldManagerScope(route, info);
      const updated = await a.storage.update(
        ctx,
        a.name,
        (old) => {
          const next = structuredClone(obj);
          admitNodeWrite(attrs, next, old);
          if (managed) recordUpdate(old, next, manager, managed);
          return next;
        },
        createOptions(q),
      );
      return writeJSON(res, 200, updated);
    }
    case 'patch': {
      const body = await readBody(req);
      const directive = fieldValidationDirective(q);
      const apply = mediaType(req) === APPLY_PATCH_TYPE;
      const { manager, force } = writeManager(req, q, 'PatchOptions', apply);
      const managed = fieldManagerScope(route, info);
      if (apply && managed) {
        const applied = await serveApply({
          storage: a.storage,
          resource: route.resource,
          ctx,
          name: a.name,
          body,
          manager,
          force,
          scope: managed,
          write: createOptions(q),
          admit: (next, old) => {
            const fields = checkFields(next, a.storage.kind, directive);
            admitNodeWrite(attrs, next, old);
            return fields;
          },
          admitNamespace: scope.admitNamespace,
        });
        warn(res, applied.unknown);
        return writeJSON(res, applied.code, applied.object);
      }
      let unknown: string[] = [];
      const updated = await a.storage.update(
        ctx,
        a.name,
        (old) => {
          const next = applyPatch(req, body, old, a.storage.kind);
          if (!isRecord(next) || !isRecord(next.metadata))
            throw badRequest('the patch removed the object metadata');
          unknown = checkFields(next, a.storage.kind, directive);
          admitNodeWrite(attrs, next, old);
          if (managed) recordUpdate(old, next, manager, managed);
          return next;
        },
        createOptions(q),
      );
      warn(res, unknown);
      return writeJSON(res, 200, updated);
    }
    case 'delete':
      return writeJSON(res, 200, await a.storage.delete(ctx, a.name, await deleteOptions(req, q)));
    case 'deletecollection': {
      const opts = await deleteOptions(req, q);
      const list = await a.storage.deleteCollection(ctx, opts, listOptions(q));
      return writeRendered(req, res, q, a.storage.kind, list);
    }
    case 'connect':
      throw new Error('connect is served by the connect handler');
  }
}

/**
 * The field manager's view of a write's resource, for kinds that are stored (an Updater);
 * undefined for what nothing stores (a SelfSubjectAccessReview), which has no managedFields.
 */
function fieldManagerScope(route: Route, info: RequestInfo): FieldManagerScope | undefined {
  const storage = route.action.storage;
  if (!isUpdater(storage)) return undefined;
  return {
    kind: storage.kind,
    apiVersion: info.apiPrefix === 'api' ? info.apiVersion : `${info.apiGroup}/${info.apiVersion}`,
    subresource: route.path.split('/')[1] ?? '',
  };
}

/** Unknown fields that were dropped become `Warning` headers (kubectl prints them). */
function warn(res: ServerResponse, unknown: string[]): void {
  if (unknown.length) res.setHeader('Warning', warningHeaders(unknown));
}

/**
 * DeleteOptions from the body and the query: preconditions and dryRun are honoured;
 * gracePeriodSeconds, propagationPolicy and orphanDependents are accepted and have nothing to
 * act on (pods go at once, nothing here has dependents).
 */
async function deleteOptions(req: IncomingMessage, q: URLSearchParams): Promise<DeleteOptions> {
  const body = await readBody(req);
  const opts: DeleteOptions = { dryRun: dryRun(q) };
  if (body.length) {
    const value = decode(req, body);
    if (!isRecord(value)) throw badRequest('DeleteOptions must be an object');
    if (value.kind !== undefined && value.kind !== 'DeleteOptions')
      throw badRequest(`${String(value.kind)} is not DeleteOptions`);
    if (isRecord(value.preconditions)) {
      opts.preconditions = value.preconditions as DeleteOptions['preconditions'];
    }
    if (Array.isArray(value.dryRun) && value.dryRun.includes('All')) opts.dryRun = true;
    const policy = value.propagationPolicy;
    if (
      policy !== undefined &&
      policy !== null &&
      !['Orphan', 'Background', 'Foreground'].includes(String(policy))
    )
      throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(policy)}`);
  }
  return opts;
}

function createOptions(q: URLSearchParams): WriteOptions {
  return { dryRun: dryRun(q) };
}

/** `dryRun=All` (the only value upstream accepts); anything else is a 400 as upstream. */
function dryRun(q: URLSearchParams): boolean {
  const values = q.getAll('dryRun');
  for (const v of values) {
    if (v !== 'All')
      throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(v)}: supported values: "All"`);
  }
  return values.length > 0;
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
