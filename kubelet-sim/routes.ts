/**
 * The kubelet server's paths: `/exec|attach/{ns}/{pod}[/{uid}]/{container}`,
 * `/containerLogs/{ns}/{pod}/{container}` and `/portForward/{ns}/{pod}[/{uid}]` (capital F, as
 * upstream), parsed and validated before anything else happens.
 *
 * Mirrors the routes of kubelet `pkg/kubelet/server/server.go` (InstallDebuggingHandlers). The
 * names are checked as the apiserver validates them (DNS-1123), which also rules out `..`, `/`,
 * `%2F` and empty segments: a path that cannot name a pod never reaches the runtime.
 */
import { StatusError } from '../shared/status.js';

export type StreamVerb = 'exec' | 'attach';

export interface StreamRoute {
  verb: StreamVerb;
  namespace: string;
  pod: string;
  uid?: string;
  container: string;
}

export interface ContainerLogsRoute {
  verb: 'containerLogs';
  namespace: string;
  pod: string;
  container: string;
}

export interface PortForwardRoute {
  verb: 'portForward';
  namespace: string;
  pod: string;
  uid?: string;
}

export type KubeletRoute = StreamRoute | ContainerLogsRoute | PortForwardRoute;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const UID = /^[A-Za-z0-9][-A-Za-z0-9]{0,63}$/;

/** Any kubelet route; undefined for a path that is none of them; a 400 StatusError for bad parts. */
export function parseKubeletPath(path: string): KubeletRoute | undefined {
  const verb = path.split('/')[1];
  if (verb === 'exec' || verb === 'attach') return parseStreamPath(path);
  if (verb === 'containerLogs') {
    const [namespace, pod, container] = segments(path, verb, [3], '{namespace}/{pod}/{container}');
    checkPod(namespace!, pod!);
    check('container', container!, DNS1123_LABEL, 63);
    return { verb, namespace: namespace!, pod: pod!, container: container! };
  }
  if (verb === 'portForward') {
    const [namespace, pod, uid] = segments(path, verb, [2, 3], '{namespace}/{pod}[/{uid}]');
    checkPod(namespace!, pod!);
    if (uid !== undefined) check('pod uid', uid, UID, 64);
    return { verb, namespace: namespace!, pod: pod!, ...(uid !== undefined ? { uid } : {}) };
  }
  return undefined;
}

/**
 * `/exec/{ns}/{pod}/{container}` or `/exec/{ns}/{pod}/{uid}/{container}` (and `/attach/…`);
 * undefined for any other path; a 400 StatusError for a stream path with invalid parts.
 */
export function parseStreamPath(path: string): StreamRoute | undefined {
  const verb = path.split('/')[1];
  if (!path.startsWith('/') || (verb !== 'exec' && verb !== 'attach')) return undefined;
  const parts = segments(path, verb, [3, 4], '{namespace}/{pod}/{container}');
  const [namespace, pod, a, b] = parts as [string, string, string, string | undefined];
  const container = b ?? a;
  const uid = b === undefined ? undefined : a;
  checkPod(namespace, pod);
  check('container', container, DNS1123_LABEL, 63);
  if (uid !== undefined) check('pod uid', uid, UID, 64);
  return { verb, namespace, pod, container, ...(uid !== undefined ? { uid } : {}) };
}

/** The decoded segments after `/{verb}/`, when there are as many as one of `counts`. */
function segments(path: string, verb: string, counts: number[], usage: string): string[] {
  const raw = path.split('/').slice(2);
  if (!counts.includes(raw.length)) {
    throw StatusError.of(400, `invalid path ${JSON.stringify(path)}: expected /${verb}/${usage}`);
  }
  return raw.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw StatusError.of(400, `invalid path ${JSON.stringify(path)}: bad escape`);
    }
  });
}

function checkPod(namespace: string, pod: string): void {
  check('namespace', namespace, DNS1123_LABEL, 63);
  check('pod', pod, DNS1123_SUBDOMAIN, 253);
}

function check(what: string, value: string, re: RegExp, max: number): void {
  if (!value || value.length > max || !re.test(value)) {
    throw StatusError.of(400, `invalid ${what} name ${JSON.stringify(value)}`);
  }
}

/** The path of a request URL, without its query. */
export function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
