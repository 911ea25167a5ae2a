/**
 * Where a pod's exec, attach, port-forward and log streams are served: the kubelet of the pod's
 * node, at `/{exec|attach}/{ns}/{pod}/{container}`, `/portForward/{ns}/{pod}` or
 * `/containerLogs/{ns}/{pod}/{container}`, with the options re-encoded as the kubelet reads them.
 *
 * Mirrors kubernetes `pkg/registry/core/pod/strategy.go` (streamLocation, streamParams,
 * ExecLocation, AttachLocation, PortForwardLocation, LogLocation) with upstream's messages. The
 * query keeps the order of docs/wiring.md (command first, then input, output, error, tty) rather
 * than Go's sorted url.Values.Encode.
 */
import { badRequest } from '../../api/errors.js';
import type { Container, Pod } from '../../../shared/api/core-v1.js';
import { hostPort, type NodeConnectionInfoGetter } from '../../kubelet-client.js';
import type { Context, Getter } from '../rest.js';

/** core/v1 PodExecOptions / PodAttachOptions from the query (attach has no command). */
export interface PodExecOptions {
  container: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
  command: string[];
}

/** apimachinery Convert_Slice_string_To_bool: absent is false, "0" and "false" are false, anything else true. */
export function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  if (v === null) return false;
  return v !== '0' && v.toLowerCase() !== 'false';
}

export function streamOptions(q: URLSearchParams): PodExecOptions {
  return {
    container: q.get('container') ?? '',
    stdin: queryBool(q, 'stdin'),
    stdout: queryBool(q, 'stdout'),
    stderr: queryBool(q, 'stderr'),
    tty: queryBool(q, 'tty'),
    command: q.getAll('command'),
  };
}

/** streamParams: the kubelet's names for the flags, `1` for each one set. */
export function streamParams(opts: PodExecOptions, withCommand: boolean): URLSearchParams {
  const params = new URLSearchParams();
  if (withCommand) for (const c of opts.command) params.append('command', c);
  if (opts.stdin) params.set('input', '1');
  if (opts.stdout) params.set('output', '1');
  if (opts.stderr) params.set('error', '1');
  if (opts.tty) params.set('tty', '1');
  return params;
}

export class PodLocator {
  constructor(
    private readonly pods: Getter,
    private readonly connInfo: NodeConnectionInfoGetter,
  ) {}

  /** streamLocation: resolve the container, require a node, build the kubelet URL. */
  async streamLocation(
    ctx: Context,
    name: string,
    container: string,
    path: 'exec' | 'attach' | 'containerLogs',
    params: URLSearchParams,
  ): Promise<URL | undefined> {
    const pod = await this.getPod(ctx, name);
    const resolved = resolveContainer(pod, name, container);
    const nodeName = pod.spec?.nodeName;
    if (!nodeName) {
      // Logs of an unscheduled pod are empty upstream; a stream needs a host.
      if (path === 'containerLogs') return undefined;
      throw badRequest(`pod ${name} does not have a host assigned`);
    }
    const info = await this.connInfo.getConnectionInfo(ctx, nodeName);
    const ns = pod.metadata.namespace ?? ctx.namespace;
    return kubeletURL(info.scheme, hostPort(info), [path, ns, name, resolved], params);
  }

  /** PortForwardLocation: `/portForward/{ns}/{pod}?port=80,443`. */
  async portForwardLocation(ctx: Context, name: string, ports: number[]): Promise<URL> {
    const pod = await this.getPod(ctx, name);
    const nodeName = pod.spec?.nodeName;
    if (!nodeName) throw badRequest(`pod ${name} does not have a host assigned`);
    const info = await this.connInfo.getConnectionInfo(ctx, nodeName);
    const params = new URLSearchParams();
    if (ports.length) params.set('port', ports.join(','));
    const ns = pod.metadata.namespace ?? ctx.namespace;
    return kubeletURL(info.scheme, hostPort(info), ['portForward', ns, name], params);
  }

  private async getPod(ctx: Context, name: string): Promise<Pod> {
    return (await this.pods.get(ctx, name)) as Pod;
  }
}

/** The named container (init and ephemeral ones count), or the pod's only container. */
export function resolveContainer(pod: Pod, name: string, container: string): string {
  const containers = pod.spec?.containers ?? [];
  const names = (list: Container[] | undefined): string[] => (list ?? []).map((c) => c.name ?? '');
  if (container) {
    const all = [
      ...names(containers),
      ...names(pod.spec?.initContainers),
      ...names(pod.spec?.ephemeralContainers),
    ];
    if (!all.includes(container)) throw badRequest(`container ${container} is not valid for pod ${name}`);
    return container;
  }
  if (containers.length === 1) return containers[0]!.name ?? '';
  if (containers.length === 0) throw badRequest(`a container name must be specified for pod ${name}`);
  let msg = `a container name must be specified for pod ${name}, choose one of: [${names(containers).join(' ')}]`;
  const init = names(pod.spec?.initContainers);
  if (init.length) msg += ` or one of the init containers: [${init.join(' ')}]`;
  throw badRequest(msg);
}

function kubeletURL(scheme: string, host: string, segments: string[], params: URLSearchParams): URL {
  const url = new URL(`${scheme}://${host}/${segments.map(encodeURIComponent).join('/')}`);
  const query = params.toString();
  if (query) url.search = query;
  return url;
}
