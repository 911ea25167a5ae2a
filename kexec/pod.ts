/**
 * The pod as kexec's commands see it: the GET, the default container, the subresource URLs.
 *
 * Mirrors kubectl `pkg/cmd/util/podcmd` FindOrDefaultContainerByName (the
 * `kubectl.kubernetes.io/default-container` annotation, else the first container, with a notice
 * when there were several) and client-go's request builder for `pods/{exec,attach,portforward}`
 * (false booleans omitted, as the PodExecOptions / PodAttachOptions `omitempty` tags do).
 */
import type { Container, Pod } from '../shared/api/core-v1.js';
import { apiJson, apiUrl, type ClientConfig } from './client.js';

export const DEFAULT_CONTAINER_ANNOTATION = 'kubectl.kubernetes.io/default-container';

export function podPath(namespace: string, pod: string, subresource?: string): string {
  const base = `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(pod)}`;
  return subresource ? `${base}/${subresource}` : base;
}

export function getPod(cfg: ClientConfig, namespace: string, name: string): Promise<Pod> {
  return apiJson<Pod>(cfg, 'GET', podPath(namespace, name), { resource: 'pods', name });
}

/** The container exec goes to when `-c` is not given, and the notice kubectl prints about it (if any). */
export function defaultContainer(pod: Pod): { name: string; notice?: string } {
  const containers = pod.spec?.containers ?? [];
  const annotated = pod.metadata?.annotations?.[DEFAULT_CONTAINER_ANNOTATION];
  if (annotated && containers.some((c) => c.name === annotated)) return { name: annotated };
  if (containers.length === 0)
    throw new Error(`pod ${pod.metadata?.name ?? ''} does not have any containers`);
  const name = containers[0].name;
  if (containers.length === 1) return { name };
  const all = [
    ...containers.map((c) => c.name),
    ...(pod.spec?.initContainers ?? []).map((c) => `${c.name} (init)`),
    ...(pod.spec?.ephemeralContainers ?? []).map((c) => `${c.name} (ephem)`),
  ];
  return { name, notice: `Defaulted container "${name}" out of: ${all.join(', ')}` };
}

/** A container of the pod by name, wherever it is declared. */
export function findContainer(pod: Pod, name: string): Container | undefined {
  const s = pod.spec;
  return [...(s?.containers ?? []), ...(s?.initContainers ?? []), ...(s?.ephemeralContainers ?? [])].find(
    (c) => c.name === name,
  );
}

/** The exec or attach subresource URL, with the query kubectl sends (attach has no command). */
export function streamUrl(
  cfg: Pick<ClientConfig, 'server'>,
  namespace: string,
  pod: string,
  subresource: 'exec' | 'attach',
  p: { container: string; command?: string[]; stdin: boolean; tty: boolean },
): URL {
  const q = new URLSearchParams();
  for (const c of p.command ?? []) q.append('command', c);
  q.set('container', p.container);
  if (p.stdin) q.set('stdin', 'true');
  q.set('stdout', 'true');
  if (!p.tty) q.set('stderr', 'true');
  if (p.tty) q.set('tty', 'true');
  return apiUrl(cfg, podPath(namespace, pod, subresource), q);
}
