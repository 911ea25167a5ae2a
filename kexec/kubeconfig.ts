/**
 * Reading kubeconfig files with js-yaml (as @kubernetes/client-node reads them): which files
 * (client-go `tools/clientcmd/loader.go` ClientConfigLoadingRules), how they merge, and what the
 * current context's cluster and user say. Importing @kubernetes/client-node costs about a second at
 * start-up, so kexec reads the common fields itself and asks client-node only for what it
 * cannot do alone (users with `exec` or `auth-provider` plugins; see client.ts).
 *
 * Loading rules, as kubectl: `--kubeconfig FILE` (must exist), else every file in `$KUBECONFIG`
 * (path-list; missing ones skipped), else `~/.kube/config`. Merging, as client-go: the FIRST
 * file that names a cluster, user or context wins, and the first `current-context` set wins.
 * Relative paths (certificate-authority, client-certificate, client-key, tokenFile) are relative
 * to the file that holds them. No file at all: the in-cluster service account when there is
 * one, else `http://localhost:8080` (client-node's loadFromDefault; kubectl's default server).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CORE_SCHEMA, load } from 'js-yaml';

export interface KubeCluster {
  server?: string;
  'certificate-authority'?: string;
  'certificate-authority-data'?: string;
  'insecure-skip-tls-verify'?: boolean;
  'tls-server-name'?: string;
}

export interface KubeUser {
  token?: string;
  tokenFile?: string;
  username?: string;
  password?: string;
  'client-certificate'?: string;
  'client-certificate-data'?: string;
  'client-key'?: string;
  'client-key-data'?: string;
  as?: string;
  'as-groups'?: string[];
  'as-uid'?: string;
  exec?: unknown;
  'auth-provider'?: unknown;
}

export interface KubeContext {
  cluster?: string;
  user?: string;
  namespace?: string;
}

/** One named entry and the directory of the file it came from (for relative paths). */
interface Entry<T> {
  value: T;
  dir: string;
}

export interface MergedKubeconfig {
  /** The files read, in order (empty: defaults). */
  files: string[];
  currentContext: string;
  clusters: Map<string, Entry<KubeCluster>>;
  users: Map<string, Entry<KubeUser>>;
  contexts: Map<string, Entry<KubeContext>>;
}

export interface ResolvedKubeconfig {
  contextName: string;
  context: KubeContext;
  cluster: Entry<KubeCluster> & { name: string };
  user: Entry<KubeUser> & { name: string };
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The files kubectl would read, in order. */
export function kubeconfigFiles(
  explicit: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string[] {
  if (explicit) return [explicit];
  if (env.KUBECONFIG) {
    return env.KUBECONFIG.split(path.delimiter).filter((f) => f && fs.existsSync(f));
  }
  const home = env.HOME || os.homedir();
  const file = path.join(home, '.kube', 'config');
  return fs.existsSync(file) ? [file] : [];
}

type Named<T> = { name?: unknown } & Partial<Record<'cluster' | 'user' | 'context', T>>;

function entries<T>(list: unknown, key: 'cluster' | 'user' | 'context', file: string): [string, T][] {
  if (list === undefined || list === null) return [];
  if (!Array.isArray(list)) throw new Error(`error loading config file "${file}": ${key}s must be a list`);
  return (list as Named<T>[]).flatMap((e) =>
    e && typeof e.name === 'string' ? [[e.name, (e[key] ?? {}) as T] as [string, T]] : [],
  );
}

export async function loadKubeconfigFiles(files: string[]): Promise<MergedKubeconfig> {
  const merged: MergedKubeconfig = {
    files,
    currentContext: '',
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
  };
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8'); // an explicit file that is missing fails here
    let doc: Record<string, unknown>;
    try {
      // js-yaml, not the `yaml` package the lab writes with: parsing a kubeconfig (a long CA and a
      // JWT as plain scalars) took `yaml` 30–55 ms of a `kexec demo -- true` on a busy machine
      // against 2–15 ms (bench/compare/findings.md, start-up). The core schema, as `yaml`'s
      // default: no timestamps, no merge keys.
      doc = (load(text, { schema: CORE_SCHEMA }) ?? {}) as Record<string, unknown>;
    } catch (err) {
      throw new Error(`error loading config file "${file}": ${(err as Error).message}`);
    }
    if (typeof doc !== 'object' || Array.isArray(doc)) {
      throw new Error(`error loading config file "${file}": not a kubeconfig`);
    }
    const dir = path.dirname(path.resolve(file));
    const add = <T>(map: Map<string, Entry<T>>, list: [string, T][]) => {
      for (const [name, value] of list) if (!map.has(name)) map.set(name, { value, dir });
    };
    add(merged.clusters, entries<KubeCluster>(doc.clusters, 'cluster', file));
    add(merged.users, entries<KubeUser>(doc.users, 'user', file));
    add(merged.contexts, entries<KubeContext>(doc.contexts, 'context', file));
    const current = doc['current-context'];
    if (!merged.currentContext && typeof current === 'string') merged.currentContext = current;
  }
  return merged;
}

/** No kubeconfig anywhere: the pod's service account, else an unauthenticated localhost:8080. */
export function defaultKubeconfig(env: NodeJS.ProcessEnv = process.env): MergedKubeconfig {
  const tokenFile = path.join(SERVICE_ACCOUNT_DIR, 'token');
  const inCluster = env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT && fs.existsSync(tokenFile);
  const host = env.KUBERNETES_SERVICE_HOST?.includes(':')
    ? `[${env.KUBERNETES_SERVICE_HOST}]`
    : env.KUBERNETES_SERVICE_HOST;
  const cluster: KubeCluster = inCluster
    ? {
        server: `https://${host}:${env.KUBERNETES_SERVICE_PORT}`,
        'certificate-authority': path.join(SERVICE_ACCOUNT_DIR, 'ca.crt'),
      }
    : { server: 'http://localhost:8080' };
  const user: KubeUser = inCluster ? { tokenFile } : {};
  const nsFile = path.join(SERVICE_ACCOUNT_DIR, 'namespace');
  const namespace = inCluster && fs.existsSync(nsFile) ? fs.readFileSync(nsFile, 'utf8').trim() : undefined;
  return {
    files: [],
    currentContext: 'default',
    clusters: new Map([['default', { value: cluster, dir: '/' }]]),
    users: new Map([['default', { value: user, dir: '/' }]]),
    contexts: new Map([['default', { value: { cluster: 'default', user: 'default', namespace }, dir: '/' }]]),
  };
}

/** The context (`--context`, else current-context) with its cluster and user. */
export function resolveContext(cfg: MergedKubeconfig, contextFlag?: string): ResolvedKubeconfig {
  const contextName = contextFlag || cfg.currentContext;
  const ctx = cfg.contexts.get(contextName);
  if (contextFlag && !ctx) throw new Error(`context "${contextFlag}" does not exist`);
  const context = ctx?.value ?? {};
  const clusterName = context.cluster ?? '';
  const userName = context.user ?? '';
  const cluster = cfg.clusters.get(clusterName);
  if (!cluster?.value.server) {
    throw new Error(
      'no server found for the current context (is the kubeconfig empty or its context unset?)',
    );
  }
  const user = cfg.users.get(userName) ?? { value: {}, dir: '/' };
  return {
    contextName,
    context,
    cluster: { ...cluster, name: clusterName },
    user: { ...user, name: userName },
  };
}

/** A file path from a kubeconfig, relative to its file's directory. */
export function resolvePath(dir: string, file: string): string {
  return path.isAbsolute(file) ? file : path.join(dir, file);
}
