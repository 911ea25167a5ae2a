/**
 * The core/v1 storage registry: resource path (`pods`, `pods/exec`, …) → the storage object
 * serving it. The router and the discovery document are both generated from this map, so a
 * resource or subresource exists exactly when it has an entry here.
 *
 * Mirrors kubernetes `pkg/registry/core/rest/storage_core.go` (LegacyRESTStorageProvider /
 * NewLegacyRESTStorage building `restStorageMap`), reduced to pods (with the binding subresource a scheduler uses), nodes,
 * events and namespaces; and the named groups beside it (APIGroupVersion, upstream's APIGroupInfo of
 * `pkg/registry/{coordination,authorization,authentication}/rest`): coordination.k8s.io (leases),
 * authorization.k8s.io (SelfSubjectAccessReview), authentication.k8s.io (SelfSubjectReview).
 */
import { BindingREST } from './registry/pod/binding-rest.js';
import {
  AttachREST,
  ExecREST,
  LogREST,
  PortForwardREST,
  type KubeletProxyConfig,
} from './registry/pod/exec-rest.js';
import { NodeConnectionInfoGetter } from './kubelet-client.js';
import { newEventStorage } from './registry/event/event-rest.js';
import { newNodeStorage } from './registry/node/node-rest.js';
import { NodeProxyREST } from './registry/node/proxy-rest.js';
import { newPodStorage } from './registry/pod/pod-rest.js';
import { PodLocator } from './registry/pod/pod-location.js';
import type { Storage } from './registry/rest.js';
import type { Store } from './storage/store.js';
import type { Authorizer } from './authz.js';
import {
  AUTHENTICATION_GROUP,
  SelfSubjectReviewREST,
} from './registry/authentication/self-subject-review.js';
import {
  AUTHORIZATION_GROUP,
  SelfSubjectAccessReviewREST,
} from './registry/authorization/self-subject-access-review.js';
import { SubjectAccessReviewREST } from './registry/authorization/subject-access-review.js';
import { COORDINATION_GROUP, newLeaseStorage } from './registry/coordination/lease-rest.js';
import { NamespaceREST } from './registry/namespace/namespace-rest.js';

export type StorageRegistry = ReadonlyMap<string, Storage>;

/** One served group/version and its resources (the core group is `''`, served at /api/v1). */
export interface APIGroupVersion {
  group: string;
  version: string;
  resources: StorageRegistry;
}

/** `v1` for the core group, `GROUP/VERSION` otherwise (an object's apiVersion). */
export function groupVersionString(gv: Pick<APIGroupVersion, 'group' | 'version'>): string {
  return gv.group ? `${gv.group}/${gv.version}` : gv.version;
}

export function newLegacyRESTStorage(
  store: Store,
  kubelet: KubeletProxyConfig,
  namespaces = new NamespaceREST(store),
): StorageRegistry {
  const pods = newPodStorage(store);
  namespaces.holds(pods.pod);
  const nodes = newNodeStorage(store);
  const connections = new NodeConnectionInfoGetter(nodes.node, kubelet.tls ? 'https' : 'http');
  const locator = new PodLocator(pods.pod, connections);
  const events = newEventStorage(store);
  namespaces.holds(events);
  return new Map<string, Storage>([
    ['pods', pods.pod],
    ['pods/status', pods.status],
    ['pods/exec', new ExecREST(locator, kubelet)],
    ['pods/attach', new AttachREST(locator, kubelet)],
    ['pods/portforward', new PortForwardREST(locator, kubelet)],
    ['pods/log', new LogREST(locator, kubelet)],
    ['pods/binding', new BindingREST(pods.pod)],
    ['nodes', nodes.node],
    ['nodes/status', nodes.status],
    ['nodes/proxy', new NodeProxyREST(connections, kubelet)],
    ['events', events],
    ['namespaces', namespaces],
  ]);
}

/** The named groups; `authorize` answers SelfSubjectAccessReviews as it answers requests. */
export function newAPIGroups(
  store: Store,
  namespaces: NamespaceREST,
  authorize: Authorizer,
): APIGroupVersion[] {
  const leases = newLeaseStorage(store);
  namespaces.holds(leases);
  return [
    { group: COORDINATION_GROUP, version: 'v1', resources: new Map([['leases', leases]]) },
    {
      group: AUTHORIZATION_GROUP,
      version: 'v1',
      resources: new Map<string, Storage>([
        ['selfsubjectaccessreviews', new SelfSubjectAccessReviewREST(authorize)],
        ['subjectaccessreviews', new SubjectAccessReviewREST(authorize)],
      ]),
    },
    {
      group: AUTHENTICATION_GROUP,
      version: 'v1',
      resources: new Map([['selfsubjectreviews', new SelfSubjectReviewREST()]]),
    },
  ];
}
