/**
 * Node storage: `nodes` and `nodes/status`, cluster-scoped, kept under `/registry/minions` as
 * upstream still does.
 *
 * Mirrors kubernetes `pkg/registry/core/node/storage/storage.go` and `strategy.go`: a node may be
 * created with its status (a kubelet registers addresses and ports in one request), a spec update
 * keeps the status and a status update keeps the spec.
 */
import type { KubeObject, Node } from '../../../shared/api/core-v1.js';
import type { Store } from '../../storage/store.js';
import { GenericStore, type Strategy } from '../generic-store.js';
import { StatusREST } from '../status-rest.js';
import { validateObjectMeta } from '../validation.js';

export const NODE_FIELD_LABELS = ['metadata.name', 'spec.unschedulable'] as const;

const nodeStrategy: Strategy = {
  validate: (obj) => validateObjectMeta(obj, false),
  prepareForUpdate(obj, old) {
    (obj as Node).status = (old as Node).status;
  },
  validateUpdate: (obj) => validateObjectMeta(obj, false),
  allowUnconditionalUpdate: true,
};

const nodeStatusStrategy: Strategy = {
  validate: (obj) => validateObjectMeta(obj, false),
  prepareForUpdate(obj, old) {
    (obj as Node).spec = (old as Node).spec;
    obj.metadata.labels = old.metadata.labels;
    obj.metadata.annotations = old.metadata.annotations;
  },
  validateUpdate: (obj) => validateObjectMeta(obj, false),
  allowUnconditionalUpdate: true,
};

function nodeFields(obj: KubeObject): Record<string, string> {
  const node = obj as Node;
  return {
    'metadata.name': node.metadata.name ?? '',
    'spec.unschedulable': String(node.spec?.unschedulable ?? false),
  };
}

export interface NodeStorage {
  node: GenericStore;
  status: StatusREST;
}

export function newNodeStorage(store: Store): NodeStorage {
  const node = new GenericStore({
    store,
    resource: 'nodes',
    kind: 'Node',
    listKind: 'NodeList',
    namespaced: false,
    keyRoot: '/registry/minions',
    strategy: nodeStrategy,
    fields: nodeFields,
    fieldLabels: NODE_FIELD_LABELS,
    shortNames: ['no'],
    singularName: 'node',
  });
  return { node, status: new StatusREST(node, nodeStatusStrategy) };
}
