/**
 * Pod storage: `pods` and `pods/status`.
 *
 * Mirrors kubernetes `pkg/registry/core/pod/storage/storage.go` (NewStorage: the pod store, with
 * a StatusREST sharing it) and `pkg/registry/core/pod/strategy.go` (podStrategy: status reset to
 * Pending on create, spec kept on status updates and status kept on spec updates, field labels).
 * Pods are deleted at once (no graceful deletion, no finalizers): a kubelet sees DELETED and stops
 * the containers.
 */
import type { KubeObject, Pod } from '../../../shared/api/core-v1.js';
import type { Store } from '../../storage/store.js';
import { GenericStore, type Strategy } from '../generic-store.js';
import { StatusREST } from '../status-rest.js';
import { validateObjectMeta, validatePod, validatePodUpdate } from '../validation.js';

/** The field selectors pods support (upstream pod.ToSelectableFields, the ones the lab needs). */
export const POD_FIELD_LABELS = [
  'metadata.name',
  'metadata.namespace',
  'spec.nodeName',
  'spec.restartPolicy',
  'status.phase',
] as const;

const podStrategy: Strategy = {
  prepareForCreate(obj) {
    (obj as Pod).status = { phase: 'Pending' };
  },
  validate: (obj) => validatePod(obj as Pod),
  prepareForUpdate(obj, old) {
    (obj as Pod).status = (old as Pod).status;
  },
  validateUpdate: (obj, old) => validatePodUpdate(obj as Pod, old as Pod),
  allowUnconditionalUpdate: true,
};

const podStatusStrategy: Strategy = {
  validate: (obj) => validatePod(obj as Pod),
  prepareForUpdate(obj, old) {
    // A status update changes status only (upstream podStatusStrategy.PrepareForUpdate).
    (obj as Pod).spec = (old as Pod).spec;
    obj.metadata.labels = old.metadata.labels;
    obj.metadata.annotations = old.metadata.annotations;
  },
  validateUpdate: (obj) => validateObjectMeta(obj, true),
  allowUnconditionalUpdate: true,
};

function podFields(obj: KubeObject): Record<string, string> {
  const pod = obj as Pod;
  return {
    'metadata.name': pod.metadata.name ?? '',
    'metadata.namespace': pod.metadata.namespace ?? '',
    'spec.nodeName': pod.spec?.nodeName ?? '',
    'spec.restartPolicy': String(pod.spec?.restartPolicy ?? ''),
    'status.phase': pod.status?.phase ?? '',
  };
}

export interface PodStorage {
  pod: GenericStore;
  status: StatusREST;
}

export function newPodStorage(store: Store): PodStorage {
  const pod = new GenericStore({
    store,
    resource: 'pods',
    kind: 'Pod',
    listKind: 'PodList',
    namespaced: true,
    keyRoot: '/registry/pods',
    strategy: podStrategy,
    fields: podFields,
    fieldLabels: POD_FIELD_LABELS,
    returnDeletedObject: true,
    shortNames: ['po'],
    singularName: 'pod',
    categories: ['all'],
  });
  return { pod, status: new StatusREST(pod, podStatusStrategy) };
}
