/**
 * Where a node's kubelet listens and how the apiserver authenticates to it.
 *
 * Mirrors kubernetes `pkg/kubelet/client/kubelet_client.go` (NodeConnectionInfoGetter: the Node's
 * preferred address and `status.daemonEndpoints.kubeletEndpoint.Port`, default port 10250) and
 * `pkg/util/node` GetPreferredNodeAddress. Differences: plain http (the lab has no kubelet serving
 * certificates), and the apiserver's credential is a bearer token minted from the lab's signing
 * key (docs/wiring.md) instead of a client certificate.
 */
import { APISERVER_USER, KUBELET_AUDIENCE, mintToken } from '../../shared/auth/tokens.js';
import type { Node } from '../api/types.js';
import type { Context, Getter } from './rest.js';

/** `--kubelet-preferred-address-types`: the lab's kubelets advertise InternalIP and Hostname. */
export const PREFERRED_ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname'];
export const DEFAULT_KUBELET_PORT = 10250;

export interface ConnectionInfo {
  scheme: 'http' | 'https';
  hostname: string;
  port: number;
}

export class NodeConnectionInfoGetter {
  constructor(private readonly nodes: Getter) {}

  /** Throws the node's NotFound when the Node does not exist, as upstream does. */
  async getConnectionInfo(ctx: Context, nodeName: string): Promise<ConnectionInfo> {
    const node = (await this.nodes.get({ ...ctx, namespace: '' }, nodeName)) as Node;
    const addresses = node.status?.addresses ?? [];
    let hostname: string | undefined;
    for (const type of PREFERRED_ADDRESS_TYPES) {
      hostname = addresses.find((a) => a.type === type && a.address)?.address;
      if (hostname) break;
    }
    if (!hostname) {
      throw new Error(`no preferred addresses found; known addresses: ${JSON.stringify(addresses)}`);
    }
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    return { scheme: 'http', hostname, port: port && port > 0 ? port : DEFAULT_KUBELET_PORT };
  }
}

/** A URL's host part: IPv6 literals in brackets. */
export function hostPort(info: ConnectionInfo): string {
  return `${info.hostname.includes(':') ? `[${info.hostname}]` : info.hostname}:${info.port}`;
}

/** The apiserver's kubelet token, minted from the signing key and renewed well before it expires. */
export class KubeletCredentials {
  private token = '';
  private mintedAt = 0;

  constructor(
    private readonly key: Buffer,
    private readonly lifetimeSec = 24 * 3600,
  ) {
    this.authorization();
  }

  authorization(): string {
    const now = Date.now();
    if (!this.token || now - this.mintedAt > (this.lifetimeSec * 1000) / 2) {
      this.token = mintToken(
        this.key,
        { name: APISERVER_USER, groups: [] },
        { audience: KUBELET_AUDIENCE, expiresInSec: this.lifetimeSec },
      );
      this.mintedAt = now;
    }
    return `Bearer ${this.token}`;
  }
}
