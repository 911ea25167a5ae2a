/**
 * From a kubeconfig to what a request needs: the server URL, the namespace, the headers
 * (bearer token, basic auth, impersonation) and the TLS options (CA, client certificate,
 * insecure-skip-tls-verify, server name).
 *
 * The files are read by kubeconfig.ts with kubectl's loading rules (`--kubeconfig`, then
 * `$KUBECONFIG`, then `~/.kube/config`). Users with credential plugins (`exec`, `auth-provider`)
 * are handed to @kubernetes/client-node's KubeConfig, imported only then: importing it costs
 * about a second, which every `kexec` run used to pay.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { ConnectionOptions } from 'node:tls';
import type { KubeConfig } from '@kubernetes/client-node';
import { ApiStatusError, statusFromResponse, type RequestDescription } from './errors.js';
import { logRequest, logResponse, type VerboseOptions } from './verbose.js';
import { userAgent } from '../shared/user-agent.js';
import {
  defaultKubeconfig,
  kubeconfigFiles,
  loadKubeconfigFiles,
  resolveContext,
  resolvePath,
  type ResolvedKubeconfig,
} from './kubeconfig.js';

export interface ClientConfig {
  /** The apiserver, e.g. `http://127.0.0.1:6443` (may carry a path prefix). */
  server: URL;
  /** `-n`, else the context's namespace, else `default`. */
  namespace: string;
  headers: Record<string, string>;
  tls: ConnectionOptions;
  /** `-v` (verbose.ts). */
  verbose?: VerboseOptions;
  /** `--request-timeout` in ms; 0 is none. Default 30 s. */
  requestTimeoutMs?: number;
  /** Set when no kubeconfig was found: told with a refused connection (noKubeconfigMessage). */
  noKubeconfig?: boolean;
}

/**
 * What kubectl says when its default server (no kubeconfig) refuses the connection, and where
 * the lab's kubeconfig is.
 */
export function noKubeconfigMessage(host: string): string {
  return (
    `The connection to the server ${host} was refused - did you specify the right host or port?\n` +
    'No kubeconfig was found (--kubeconfig, $KUBECONFIG, ~/.kube/config). The lab writes one at ' +
    '.lab/kubeconfig in the folder where `npm start` runs: pass --kubeconfig .lab/kubeconfig, or ' +
    'export KUBECONFIG=$PWD/.lab/kubeconfig'
  );
}

export interface LoadOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  verbosity?: number;
  requestTimeoutMs?: number;
}

function parseServer(server: string): URL {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`invalid server URL ${JSON.stringify(server)} in the kubeconfig`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`unsupported server URL scheme ${url.protocol} (want http or https)`);
  }
  return url;
}

/** Inline `-data` (base64) wins over the file, as in client-go. */
function fileOrData(dir: string, file: string | undefined, data: string | undefined): Buffer | undefined {
  if (data) return Buffer.from(data, 'base64');
  if (file) return fs.readFileSync(resolvePath(dir, file));
  return undefined;
}

/** The ClientConfig for a resolved context without credential plugins. */
export function clientConfigFromResolved(r: ResolvedKubeconfig, namespaceFlag?: string): ClientConfig {
  const c = r.cluster.value;
  const u = r.user.value;
  const server = parseServer(c.server!);
  const headers: Record<string, string> = {};
  const token =
    u.token || (u.tokenFile ? fs.readFileSync(resolvePath(r.user.dir, u.tokenFile), 'utf8').trim() : '');
  if (token) headers.Authorization = `Bearer ${token}`;
  else if (u.username || u.password) {
    headers.Authorization = `Basic ${Buffer.from(`${u.username ?? ''}:${u.password ?? ''}`).toString('base64')}`;
  }
  if (u.as) headers['Impersonate-User'] = u.as;
  if (u['as-uid']) headers['Impersonate-Uid'] = u['as-uid'];

  const tls: ConnectionOptions = {};
  const ca = fileOrData(r.cluster.dir, c['certificate-authority'], c['certificate-authority-data']);
  if (ca) tls.ca = ca;
  const cert = fileOrData(r.user.dir, u['client-certificate'], u['client-certificate-data']);
  if (cert) tls.cert = cert;
  const key = fileOrData(r.user.dir, u['client-key'], u['client-key-data']);
  if (key) tls.key = key;
  if (c['insecure-skip-tls-verify']) tls.rejectUnauthorized = false;
  if (c['tls-server-name']) tls.servername = c['tls-server-name'];
  headers['User-Agent'] = userAgent('kexec');
  return { server, namespace: namespaceFlag || r.context.namespace || 'default', headers, tls };
}

/** client-node's KubeConfig with kubectl's loading rules (for credential plugins only). */
export async function loadKubeConfig(opts: LoadOptions): Promise<KubeConfig> {
  const { KubeConfig } = await import('@kubernetes/client-node');
  const kc = new KubeConfig();
  if (opts.kubeconfig) kc.loadFromFile(opts.kubeconfig);
  else kc.loadFromDefault();
  if (opts.context) {
    if (!kc.getContextObject(opts.context)) throw new Error(`context "${opts.context}" does not exist`);
    kc.setCurrentContext(opts.context);
  }
  return kc;
}

export async function clientConfigFrom(kc: KubeConfig, namespaceFlag?: string): Promise<ClientConfig> {
  const cluster = kc.getCurrentCluster();
  if (!cluster?.server) {
    throw new Error(
      'no server found for the current context (is the kubeconfig empty or its context unset?)',
    );
  }
  const server = parseServer(cluster.server);

  // client-node refuses to build an agent for an http:// server unless insecure-skip-tls-verify is
  // set (there is no TLS to verify over plain http); we only want its headers and TLS material, so
  // over http we ask with the flag set on a copy of the cluster.
  let source = kc;
  if (server.protocol === 'http:' && !cluster.skipTLSVerify) {
    const { KubeConfig } = await import('@kubernetes/client-node');
    source = new KubeConfig();
    source.loadFromOptions({
      clusters: kc.getClusters().map((c) => (c === cluster ? { ...c, skipTLSVerify: true } : c)),
      users: kc.getUsers(),
      contexts: kc.getContexts(),
      currentContext: kc.getCurrentContext(),
    });
  }
  const opts: https.RequestOptions = {};
  await source.applyToHTTPSOptions(opts);
  (opts.agent as http.Agent | undefined)?.destroy();

  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.headers ?? {})) {
    if (v === undefined) continue;
    headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  if (opts.auth) headers.Authorization = `Basic ${Buffer.from(opts.auth).toString('base64')}`;

  const tls: ConnectionOptions = {};
  if (opts.ca) tls.ca = opts.ca;
  if (opts.cert) tls.cert = opts.cert;
  if (opts.key) tls.key = opts.key;
  if (opts.rejectUnauthorized !== undefined) tls.rejectUnauthorized = opts.rejectUnauthorized;
  if (opts.servername) tls.servername = opts.servername;

  const contextNs = kc.getContextObject(kc.getCurrentContext())?.namespace;
  headers['User-Agent'] = userAgent('kexec');
  return { server, namespace: namespaceFlag || contextNs || 'default', headers, tls };
}

export async function loadClientConfig(
  opts: LoadOptions,
  env: NodeJS.ProcessEnv = process.env,
): Promise<ClientConfig> {
  const files = kubeconfigFiles(opts.kubeconfig, env);
  const merged = files.length > 0 ? await loadKubeconfigFiles(files) : defaultKubeconfig(env);
  const resolved = resolveContext(merged, opts.context);
  const cfg =
    resolved.user.value.exec || resolved.user.value['auth-provider']
      ? await clientConfigFrom(await loadKubeConfig(opts), opts.namespace)
      : clientConfigFromResolved(resolved, opts.namespace);
  refuseCredentialsOverHttp(cfg, resolved.cluster.value['insecure-skip-tls-verify'] === true);
  // No file and not in a pod: the unauthenticated localhost:8080 of kubectl's defaults.
  if (files.length === 0 && !resolved.user.value.tokenFile) cfg.noKubeconfig = true;
  return { ...cfg, verbose: { verbosity: opts.verbosity }, requestTimeoutMs: opts.requestTimeoutMs };
}

/**
 * A credential goes to an `http://` server only when the kubeconfig says insecure on purpose
 * (`insecure-skip-tls-verify: true` on the cluster, as the lab's `--insecure-http` kubeconfig
 * has). kubectl never sends one there (client-go's clientcmd reads auth info only when
 * rest.IsConfigTransportTLS); kexec refuses rather than silently dropping it (issue #11).
 */
function refuseCredentialsOverHttp(cfg: ClientConfig, insecure: boolean): void {
  if (cfg.server.protocol !== 'http:' || !cfg.headers.Authorization || insecure) return;
  throw new Error(
    `refusing to send credentials to ${cfg.server.origin} over plain http (anyone on the way could read them): ` +
      'use an https server, or set insecure-skip-tls-verify: true on the cluster in the kubeconfig to send them anyway',
  );
}

/** `path` (starting with /) under the server URL, keeping any path prefix the server URL has. */
export function apiUrl(cfg: Pick<ClientConfig, 'server'>, path: string, query?: URLSearchParams): URL {
  const url = new URL(cfg.server.href);
  url.pathname = url.pathname.replace(/\/+$/, '') + path;
  url.search = query ? query.toString() : '';
  return url;
}

export interface ApiResponse {
  code: number;
  contentType: string | undefined;
  body: string;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

/** One HTTP request to the apiserver. Connection failures reject with a Go-like message. */
export function apiRequest(
  cfg: ClientConfig,
  method: string,
  url: URL,
  body?: unknown,
  timeoutMs = cfg.requestTimeoutMs ?? 30_000,
): Promise<ApiResponse> {
  const verb = method[0] + method.slice(1).toLowerCase();
  const verbose = cfg.verbose ?? {};
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { Accept: 'application/json', ...cfg.headers };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = String(payload.length);
    }
    const mod = url.protocol === 'https:' ? https : http;
    logRequest(verbose, method, url, headers);
    const req = mod.request(
      url,
      { method, headers, ...(url.protocol === 'https:' ? cfg.tls : {}) },
      (res) => {
        logResponse(verbose, method, url, res, started);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(new Error(`response body larger than ${MAX_BODY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () =>
          resolve({
            code: res.statusCode ?? 0,
            contentType: res.headers['content-type'],
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', (err) => reject(new Error(`${verb} "${url.href}": ${err.message}`)));
      },
    );
    if (timeoutMs > 0)
      req.setTimeout(timeoutMs, () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED' && cfg.noKubeconfig) reject(new Error(noKubeconfigMessage(url.host)));
      else reject(new Error(`${verb} "${url.href}": ${err.message}`));
    });
    req.end(payload);
  });
}

/** A request whose 2xx body is JSON; anything else becomes an ApiStatusError. */
export async function apiJson<T>(
  cfg: ClientConfig,
  method: string,
  path: string,
  what: Omit<RequestDescription, 'method'>,
  body?: unknown,
): Promise<T> {
  const res = await apiRequest(cfg, method, apiUrl(cfg, path), body);
  if (res.code < 200 || res.code >= 300) {
    throw new ApiStatusError(statusFromResponse(res.code, res.body, res.contentType, { method, ...what }));
  }
  try {
    return JSON.parse(res.body) as T;
  } catch {
    throw new Error(`the server returned a response that is not JSON for ${method} ${path}`);
  }
}
