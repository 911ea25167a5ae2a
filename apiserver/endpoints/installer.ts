/**
 * The router, generated from the storage registry: a request's path and method select one action
 * on one storage, or fail with 404 (no such resource or subresource) or 405 (the storage does not
 * implement that verb).
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/installer.go` (registerResourceHandlers: which routes a
 * storage gets from the interfaces it implements; namespaced resources also listed across all
 * namespaces at `/api/v1/{resource}`): the core group at `/api/v1`, named groups at
 * `/apis/{group}/{version}`. A namespace is addressed at `/api/v1/namespaces/{name}`, where the
 * request info names it both as namespace and as name (upstream RequestInfo does the same).
 */
import { methodNotSupported, resourceNotFound } from '../api/errors.js';
import {
  isCollectionDeleter,
  isConnecter,
  isCreater,
  isNamedCreater,
  isDeleter,
  isGetter,
  isLister,
  isUpdater,
  isWatcher,
  type CollectionDeleter,
  type Connecter,
  type Creater,
  type NamedCreater,
  type GracefulDeleter,
  type Getter,
  type Lister,
  type Storage,
  type Updater,
  type Watcher,
} from '../registry/rest.js';
import type { APIGroupVersion } from '../storage-registry.js';
import type { RequestInfo } from './request-info.js';

export type Action =
  | { kind: 'get'; storage: Getter; name: string }
  | { kind: 'list'; storage: Lister }
  | { kind: 'watch'; storage: Watcher; name?: string }
  | { kind: 'create'; storage: Creater }
  | { kind: 'createNamed'; storage: NamedCreater; name: string }
  | { kind: 'deletecollection'; storage: CollectionDeleter }
  | { kind: 'update'; storage: Updater; name: string }
  | { kind: 'patch'; storage: Updater; name: string }
  | { kind: 'delete'; storage: GracefulDeleter; name: string }
  | { kind: 'connect'; storage: Connecter; name: string };

export interface Route {
  action: Action;
  /** The registry key: `pods`, `pods/exec` … */
  path: string;
  resource: string;
}

/** The group/version a request addresses, if served. */
export function groupVersionOf(
  apis: readonly APIGroupVersion[],
  info: RequestInfo,
): APIGroupVersion | undefined {
  const group = info.apiPrefix === 'api' ? '' : info.apiGroup;
  if ((info.apiPrefix === 'api') !== (group === '')) return undefined;
  return apis.find((gv) => gv.group === group && gv.version === info.apiVersion);
}

export function route(apis: readonly APIGroupVersion[], info: RequestInfo, method: string): Route {
  const gv = groupVersionOf(apis, info);
  if (!gv) throw resourceNotFound();
  const [resource = '', name = '', subresource = '', ...rest] = info.parts;
  const path = subresource ? `${resource}/${subresource}` : resource;
  const storage = gv.resources.get(path);
  if (!storage) throw resourceNotFound();
  // Only a proxy subresource takes a path of its own (upstream's `{path:*}` routes).
  if (rest.length && !acceptsPath(storage)) throw resourceNotFound();
  // Namespaced storage lives under /namespaces/{ns}/ (lists may also span all namespaces);
  // cluster-scoped storage never does (a namespace itself is named by its own path).
  const namespaceItself = resource === 'namespaces' && info.namespace === name;
  if (
    storage.namespaced ? !info.namespace && (name || method !== 'GET') : info.namespace && !namespaceItself
  ) {
    throw resourceNotFound();
  }
  const action = subresource
    ? subresourceAction(storage, name, method)
    : resourceAction(storage, info, name, method);
  if (!action) throw methodNotSupported(path, verbFor(method));
  return { action, path, resource };
}

function resourceAction(s: Storage, info: RequestInfo, name: string, method: string): Action | undefined {
  const watch = info.watchPath || isTrue(info.query.get('watch'));
  if (name) {
    if (method === 'GET' && info.watchPath)
      return isWatcher(s) ? { kind: 'watch', storage: s, name } : undefined;
    if (method === 'GET') return isGetter(s) ? { kind: 'get', storage: s, name } : undefined;
    if (method === 'PUT') return isUpdater(s) ? { kind: 'update', storage: s, name } : undefined;
    if (method === 'PATCH') return isUpdater(s) ? { kind: 'patch', storage: s, name } : undefined;
    if (method === 'DELETE') return isDeleter(s) ? { kind: 'delete', storage: s, name } : undefined;
    return undefined;
  }
  if (method === 'GET' && watch) return isWatcher(s) ? { kind: 'watch', storage: s } : undefined;
  if (method === 'GET') return isLister(s) ? { kind: 'list', storage: s } : undefined;
  if (method === 'POST') return isCreater(s) ? { kind: 'create', storage: s } : undefined;
  if (method === 'DELETE')
    return isCollectionDeleter(s) ? { kind: 'deletecollection', storage: s } : undefined;
  return undefined;
}

function acceptsPath(s: Storage): boolean {
  return isConnecter(s) && (s as { acceptsPath?: boolean }).acceptsPath === true;
}

function subresourceAction(s: Storage, name: string, method: string): Action | undefined {
  if (isConnecter(s))
    return s.connectMethods.includes(method) ? { kind: 'connect', storage: s, name } : undefined;
  if (method === 'GET') return isGetter(s) ? { kind: 'get', storage: s, name } : undefined;
  if (method === 'POST') return isNamedCreater(s) ? { kind: 'createNamed', storage: s, name } : undefined;
  if (method === 'PUT') return isUpdater(s) ? { kind: 'update', storage: s, name } : undefined;
  if (method === 'PATCH') return isUpdater(s) ? { kind: 'patch', storage: s, name } : undefined;
  return undefined;
}

/** The verbs discovery lists for a storage (upstream derives them from the same interfaces). */
export function verbsOf(s: Storage): string[] {
  const verbs = new Set<string>();
  if (isCreater(s) || isNamedCreater(s)) verbs.add('create');
  if (isDeleter(s)) verbs.add('delete');
  if (isCollectionDeleter(s)) verbs.add('deletecollection');
  if (isGetter(s)) verbs.add('get');
  if (isLister(s)) verbs.add('list');
  if (isUpdater(s)) verbs.add('patch').add('update');
  if (isWatcher(s)) verbs.add('watch');
  if (isConnecter(s)) for (const m of s.connectMethods) verbs.add(verbFor(m));
  return [...verbs].sort();
}

function verbFor(method: string): string {
  const verbs: Record<string, string> = {
    GET: 'get',
    POST: 'create',
    PUT: 'update',
    PATCH: 'patch',
    DELETE: 'delete',
  };
  return verbs[method] ?? method.toLowerCase();
}

function isTrue(v: string | null): boolean {
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}
