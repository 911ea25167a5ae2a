/**
 * A minimal OpenAPI v3 publication: `/openapi/v3` (the index of group-version documents) and
 * `/openapi/v3/api/v1`, describing the paths and operations of the storage registry with their
 * `x-kubernetes-group-version-kind` and query parameters, and no schemas.
 *
 * Why: kubectl 1.27+ reads it before create/apply/replace to learn whether the server validates
 * fields itself (a `fieldValidation` query parameter on the kind's PATCH operation,
 * kubectl `resource.QueryParamVerifierV3`); if so it sends `fieldValidation=Strict` and skips
 * client-side validation, which would otherwise need the full OpenAPI v2 schema ("failed to
 * download openapi"). With no schema for the kind, `kubectl apply` computes its strategic merge
 * patch from its compiled-in types, as upstream does for built-in kinds.
 *
 * Mirrors k8s.io/kube-openapi `pkg/handler3` (the `paths` index with `serverRelativeURL` and a
 * content hash; the document served at that path) and the operation shapes of
 * k8s.io/apiserver `pkg/endpoints/openapi`. `/openapi/v2` is not served (404).
 */
import { createHash } from 'node:crypto';
import type { StorageRegistry } from '../storage-registry.js';
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

export interface OpenAPIDocuments {
  index: Record<string, unknown>;
  coreV1: Record<string, unknown>;
  coreV1Hash: string;
}

export function openAPIDocuments(registry: StorageRegistry): OpenAPIDocuments {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const [name, storage] of registry) {
    const [resource, sub] = name.split('/');
    const gvk = { group: '', version: 'v1', kind: storage.kind };
    const base = storage.namespaced ? `/api/v1/namespaces/{namespace}/${resource}` : `/api/v1/${resource}`;
    const verbs = verbsOf(storage);
    const op = (action: string, params: unknown[] = []) => ({
      operationId: `${action}${storage.namespaced ? 'Namespaced' : ''}${storage.kind}`,
      parameters: params,
      responses: { '200': { description: 'OK' } },
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
      if (verbs.includes('patch')) item.patch = op('patch', WRITE_PARAMS);
      if (verbs.includes('delete')) item.delete = op('delete', [PARAM('dryRun', 'dry run')]);
      paths[base] = collection;
      paths[`${base}/{name}`] = item;
    } else {
      if (verbs.includes('get')) item.get = op('get');
      if (verbs.includes('create')) item.post = op(sub === 'binding' ? 'post' : 'connect', WRITE_PARAMS);
      if (verbs.includes('update')) item.put = op('put', WRITE_PARAMS);
      if (verbs.includes('patch')) item.patch = op('patch', WRITE_PARAMS);
      paths[`${base}/{name}/${sub}`] = item;
    }
  }
  const coreV1 = {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.35.0' },
    paths,
    components: { schemas: {} },
  };
  const coreV1Hash = createHash('sha512')
    .update(JSON.stringify(coreV1))
    .digest('hex')
    .slice(0, 128)
    .toUpperCase();
  const index = { paths: { 'api/v1': { serverRelativeURL: `/openapi/v3/api/v1?hash=${coreV1Hash}` } } };
  return { index, coreV1, coreV1Hash };
}
