/**
 * `nodes/proxy`: `/api/v1/nodes/{name}/proxy/{path}` is passed on to that node's kubelet at
 * `/{path}` with the apiserver's own credential, as `kubectl get --raw
 * /api/v1/nodes/node-1/proxy/metrics` does on a real cluster. The lab's dashboard reaches the
 * kubelet-sim's `/debug/flags/fault` this way, so a fault drill is switched by the admin
 * (authorised here on `nodes/proxy`) and the kubelet sees only the apiserver (which it authorises
 * on `nodes/proxy` in turn — the check behind the classic
 * `Forbidden (user=kube-apiserver, verb=create, resource=nodes, subresource=proxy)`).
 *
 * Mirrors kubernetes `pkg/registry/core/node/rest/proxy.go` (ProxyREST: Connect with
 * ProxyOptions.Path, the location from `node.ResourceLocation`, an UpgradeAwareHandler) and
 * `strategy.go` ResourceLocation. Upstream also allows `https:node:port` names for other ports; here
 * the name is only the node's, the port always its kubelet's.
 */
import type { NodeConnectionInfoGetter } from '../../kubelet-client.js';
import { hostPort } from '../../kubelet-client.js';
import { kubeletProxyHandler, type KubeletProxyConfig } from '../pod/exec-rest.js';
import type { ConnectHandler, Connecter, Context } from '../rest.js';

/** The connect option that carries the path after `/proxy` (upstream ProxyOptions.Path). */
export const PROXY_PATH_OPTION = 'path';

export class NodeProxyREST implements Connecter {
  readonly kind = 'NodeProxyOptions';
  readonly namespaced = false;
  readonly connectMethods = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
  /** The installer passes the rest of the URL path on as the `path` option. */
  readonly acceptsPath = true;

  constructor(
    private readonly connections: NodeConnectionInfoGetter,
    private readonly cfg: KubeletProxyConfig,
  ) {}

  async connect(ctx: Context, name: string, options: URLSearchParams): Promise<ConnectHandler> {
    const info = await this.connections.getConnectionInfo(ctx, name);
    const query = new URLSearchParams(options);
    const path = query.get(PROXY_PATH_OPTION) ?? '/';
    query.delete(PROXY_PATH_OPTION);
    const location = new URL(`${info.scheme}://${hostPort(info)}`);
    location.pathname = path;
    location.search = query.toString();
    return kubeletProxyHandler(location, this.cfg, false);
  }
}
