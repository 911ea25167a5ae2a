/**
 * A small OpenAPI v3 publication: `/openapi/v3` (the index of group-version documents) and
 * `/openapi/v3/api/v1`, `/openapi/v3/apis/GROUP/VERSION`, describing the paths and operations of
 * the storage registry with their `x-kubernetes-group-version-kind` and query parameters, and the
 * schemas of the served kinds (openapi-schemas.ts, for `kubectl explain`).
 *
 * Why: kubectl 1.27+ reads it before create/apply/replace to learn whether the server validates
 * fields itself (a `fieldValidation` query parameter on the kind's PATCH operation,
 * kubectl `resource.QueryParamVerifierV3`); if so it sends `fieldValidation=Strict` and skips
 * client-side validation, which would otherwise need the full OpenAPI v2 schema ("failed to
 * download openapi"). With no schema for the kind, `kubectl apply` computes its strategic merge
 * patch from its compiled-in types, as upstream does for built-in kinds: the PATCH operations
 * declare no request body, so kubectl's OpenAPI v3 patch path (gvkSupportsPatchOpenAPIV3, which
 * looks for the strategic-merge-patch content type there) is not taken.
 *
 * Mirrors k8s.io/kube-openapi `pkg/handler3` (the `paths` index with `serverRelativeURL` and a
 * content hash; the document served at that path) and the operation shapes of
 * k8s.io/apiserver `pkg/endpoints/openapi`. `/openapi/v2` is not served (404).
 */
import { createHash } from 'node:crypto';
import type { APIGroupVersion } from '../storage-registry.js';
import { allSchemas, schemaNameOf, type Schema } from './openapi-schemas.js';
import { verbsOf } from './installer.js';

const PARAM = (name: string, description: string) => ({
  name,
  in: 'query',
  description,
  schema: { type: 'string', uniqueItems: true },
});

const WRITE_PARAMS = [
  PARAM('dryRun', 'When present, indicates that modifications should not be persisted.'),
  PARAM(
    'fieldManager',
    'fieldManager is a name associated with the actor or entity that is making these changes.',
  ),
  PARAM(
    'fieldValidation',
    'fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields: Ignore, Warn or Strict.',
  ),
];

/** `force` on a PATCH: kubectl apply --server-side --force-conflicts. */
const FORCE_PARAM = PARAM(
  'force',
  'Force is going to force Apply requests: re-acquire conflicting fields owned by other people.',
);

export interface OpenAPIDocument {
  doc: Record<string, unknown>;
  hash: string;
}

export interface OpenAPIDocuments {
  /** `/openapi/v3`: each served group/version's document by its path (`api/v1`, `apis/G/V`). */
  index: Record<string, unknown>;
  /** By path under `/openapi/v3/`: `api/v1`, `apis/coordination.k8s.io/v1` … */
  documents: Map<string, OpenAPIDocument>;
}

function groupVersionDocument(gv: APIGroupVersion, schemas: Record<string, Schema>): Record<string, unknown> {
  const prefix = gv.group ? `/apis/${gv.group}/${gv.version}` : `/api/${gv.version}`;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, storage] of gv.resources) {
    const [resource, sub] = name.split('/');
    const gvk = { group: gv.group, version: gv.version, kind: storage.kind };
    const base = storage.namespaced
      ? `${prefix}/namespaces/{namespace}/${resource}`
      : `${prefix}/${resource}`;
    const verbs = verbsOf(storage);
    const op = (action: string, params: unknown[] = []) => ({
      operationId: `${action}${storage.namespaced ? 'Namespaced' : ''}${storage.kind}`,
      parameters: params,
      responses: { '200': okResponse(gv, storage.kind) },
      'x-kubernetes-action': action,
      'x-kubernetes-group-version-kind': gvk,
    });
    const item: Record<string, unknown> = {};
    const collection: Record<string, unknown> = {};
    if (!sub) {
      if (verbs.includes('list')) collection.get = op('list');
      if (verbs.includes('create')) collection.post = op('post', WRITE_PARAMS);
      if (verbs.includes('deletecollection')) collection.delete = op('deletecollection');
      if (verbs.includes('get')) item.get = op('get');
      if (verbs.includes('update')) item.put = op('put', WRITE_PARAMS);
      if (verbs.includes('patch')) item.patch = op('patch', [...WRITE_PARAMS, FORCE_PARAM]);
      if (verbs.includes('delete')) item.delete = op('delete', [PARAM('dryRun', 'dry run')]);
      paths[base] = collection;
      if (Object.keys(item).length) paths[`${base}/{name}`] = item;
    } else {
      if (verbs.includes('get')) item.get = op('get');
      if (verbs.includes('create')) item.post = op(sub === 'binding' ? 'post' : 'connect', WRITE_PARAMS);
      if (verbs.includes('update')) item.put = op('put', WRITE_PARAMS);
      if (verbs.includes('patch')) item.patch = op('patch', WRITE_PARAMS);
      paths[`${base}/{name}/${sub}`] = item;
    }
  }
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.35.0' },
    paths,
    components: { schemas },
  };
}

/** The 200 response names the kind's schema (kubectl explain follows it). */
function okResponse(gv: APIGroupVersion, kind: string): Record<string, unknown> {
  const ref = schemaNameOf(gv.group, gv.version, kind);
  return ref
    ? {
        description: 'OK',
        content: { 'application/json': { schema: { $ref: `#/components/schemas/${ref}` } } },
      }
    : { description: 'OK' };
}

export async function openAPIDocuments(apis: readonly APIGroupVersion[]): Promise<OpenAPIDocuments> {
  const schemas = await allSchemas();
  const documents = new Map<string, OpenAPIDocument>();
  const paths: Record<string, unknown> = {};
  for (const gv of apis) {
    const path = gv.group ? `apis/${gv.group}/${gv.version}` : `api/${gv.version}`;
    const doc = groupVersionDocument(gv, schemas);
    const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
    documents.set(path, { doc, hash });
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hash}` };
  }
  return { index: { paths }, documents };
}
