/**
 * Lease storage (`coordination.k8s.io/v1` `leases`, namespaced): the kubelet's heartbeat object
 * in `kube-node-lease` (kubelet-sim/node-lease.ts renews it), which `kubectl describe node` reads.
 *
 * Mirrors kubernetes `pkg/registry/coordination/lease/storage/storage.go` and `strategy.go` (a
 * plain object: no status, unconditional updates allowed).
 */
import type { Store } from '../../storage/store.js';
import { GenericStore } from '../generic-store.js';
import { validateObjectMeta } from '../validation.js';

export const COORDINATION_GROUP = 'coordination.k8s.io';

export function newLeaseStorage(store: Store): GenericStore {
  return new GenericStore({
    store,
    resource: 'leases',
    kind: 'Lease',
    listKind: 'LeaseList',
    apiVersion: `${COORDINATION_GROUP}/v1`,
    namespaced: true,
    keyRoot: '/registry/leases',
    strategy: {
      validate: (obj) => validateObjectMeta(obj, true),
      validateUpdate: (obj) => validateObjectMeta(obj, true),
      allowUnconditionalUpdate: true,
    },
    fields: (obj) => ({
      'metadata.name': obj.metadata.name ?? '',
      'metadata.namespace': obj.metadata.namespace ?? '',
    }),
    fieldLabels: ['metadata.name', 'metadata.namespace'],
    singularName: 'lease',
  });
}
