/**
 * NodeRestriction: a node may write only its own Node, its own Lease and the status of pods bound to it. Runs
 * after authorisation, once the stored object is known.
 *
 * Mirrors kubernetes `plugin/pkg/admission/noderestriction/admission.go` (node identity from the
 * `system:node:NAME` user in group `system:nodes`; "node X is not allowed to modify node Y";
 * "node X can only update pod status for pods with spec.nodeName set to itself"), for the writes
 * the lab's kubelets make.
 */
import { NODES_GROUP, type UserInfo } from '../shared/auth/tokens.js';
import { StatusError } from '../shared/status.js';
import type { KubeObject, Pod } from '../shared/api/core-v1.js';
import type { Attributes } from './authz.js';

const NODE_USER_PREFIX = 'system:node:';

/** The node a user acts for, or undefined when the user is not a node. */
export function nodeIdentity(user: UserInfo): string | undefined {
  if (!user.groups.includes(NODES_GROUP) || !user.name.startsWith(NODE_USER_PREFIX)) return undefined;
  return user.name.slice(NODE_USER_PREFIX.length) || undefined;
}

/**
 * Checks a write by a node: `obj` is the object as it would be stored, `old` the stored one (for
 * updates). Throws 403 Forbidden when the node oversteps; does nothing for other users.
 */
export function admitNodeWrite(a: Attributes, obj: KubeObject, old?: KubeObject): void {
  if (!a.user.groups.includes(NODES_GROUP)) return;
  const node = nodeIdentity(a.user);
  const name = obj.metadata.name ?? a.name;
  const deny = (why: string): never => {
    throw StatusError.of(403, `${a.resource} ${JSON.stringify(name)} is forbidden: ${why}`, 'Forbidden', {
      name,
      kind: a.resource,
    });
  };
  if (!node) deny(`unknown node for user ${JSON.stringify(a.user.name)}`);
  if (a.resource === 'nodes' && name !== node) {
    deny(`node ${JSON.stringify(node)} is not allowed to modify node ${JSON.stringify(name)}`);
  }
  // A node's Lease is named after the node (upstream NodeRestriction admitLease).
  if (a.resource === 'leases' && name !== node) {
    deny(`can only access node lease with the same name as the requesting node`);
  }
  if (a.resource === 'pods') {
    const bound = (old as Pod | undefined)?.spec?.nodeName ?? (obj as Pod).spec?.nodeName;
    if (bound !== node) {
      deny(
        `node ${JSON.stringify(node)} can only update pod status for pods with spec.nodeName set to itself`,
      );
    }
  }
}
