/**
 * The core/v1 storage registry: resource path (`pods`, `pods/exec`, …) → the storage object
 * serving it. The router and the discovery document are both generated from this map, so a
 * resource or subresource exists exactly when it has an entry here.
 *
 * Mirrors kubernetes `pkg/registry/core/rest/storage_core.go` (LegacyRESTStorageProvider /
 * NewLegacyRESTStorage building `restStorageMap`), reduced to pods (with the binding subresource a scheduler uses), nodes and events.
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

export type StorageRegistry = ReadonlyMap<string, Storage>;

export function newLegacyRESTStorage(store: Store, kubelet: KubeletProxyConfig): StorageRegistry {
  const pods = newPodStorage(store);
  const nodes = newNodeStorage(store);
  const connections = new NodeConnectionInfoGetter(nodes.node, kubelet.tls ? 'https' : 'http');
  const locator = new PodLocator(pods.pod, connections);
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
    ['events', newEventStorage(store)],
  ]);
}
