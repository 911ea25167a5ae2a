/**
 * The kubelet's HTTP server: `/healthz`, and the streaming endpoints `/exec/{ns}/{pod}/{container}`
 * and `/attach/{ns}/{pod}/{container}` (also with `{uid}` before the container, as upstream).
 * For a stream it authenticates the apiserver, finds the container through CRI ListContainers,
 * asks the runtime for a streaming URL (CRI Exec / Attach) and proxies the same upgrade there with
 * an UpgradeAwareHandler: the kubelet is a reverse proxy too.
 *
 * Mirrors kubelet `pkg/kubelet/server/server.go` (InstallDebuggingHandlers, getExec, getAttach,
 * proxyStream) and `pkg/kubelet/server/auth.go` (authenticate, then authorise `nodes/proxy`).
 * Differences, on purpose:
 * - the only identity allowed is the apiserver's (`system:apiserver`, audience `kubelet`); anyone
 *   else authenticated gets 403 in upstream's wording, a missing or bad token 401;
 * - a missing container is 404 `container not found ("c")` (upstream's words, but upstream answers
 *   500), a pod with no sandbox 404 `pod does not exist`;
 * - a request that is not an upgrade is refused (400) before the runtime is asked, so it cannot use
 *   up the runtime's streaming tokens;
 * - every refusal is a Status, also CRI errors (see cri-errors.ts); no /portForward or
 *   /containerLogs yet.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { APISERVER_USER, bearerToken, KUBELET_AUDIENCE, verifyToken } from '../shared/auth/tokens.js';
import { isUpgradeRequest } from '../shared/proxy/hop-headers.js';
import { UpgradeAwareHandler } from '../shared/proxy/upgrade-aware-handler.js';
import {
  KubernetesContainerNameLabel,
  KubernetesPodNameLabel,
  KubernetesPodNamespaceLabel,
  KubernetesPodUIDLabel,
  type Container,
} from '../shared/cri/types.js';
import {
  failureStatus,
  StatusError,
  toStatus,
  writeStatus,
  writeStatusToSocket,
  type Status,
} from '../shared/status.js';
import { criErrorToStatus } from './cri-errors.js';
import type { RuntimeService } from './kuberuntime-manager.js';
import { errorMessage, type Logger } from './util.js';

export interface KubeletServerOptions {
  /** Key that signs the apiserver's kubelet token. */
  signingKey: Buffer;
  runtime: RuntimeService;
  log: Logger;
  /** Time allowed to reach the runtime's streaming server (UpgradeAwareHandler backendTimeoutMs). */
  backendTimeoutMs?: number;
}

export type StreamVerb = 'exec' | 'attach';

export interface StreamRoute {
  verb: StreamVerb;
  namespace: string;
  pod: string;
  uid?: string;
  container: string;
}

export interface StreamOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

type Reply = (status: Status, headers?: Record<string, string>) => void;

export class KubeletServer {
  readonly server: http.Server;
  private readonly upgraded = new Set<Duplex>();

  constructor(private readonly opts: KubeletServerOptions) {
    this.server = http.createServer((req, res) => this.onRequest(req, res));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    this.server.on('clientError', (_err, socket: Duplex) => socket.destroy());
  }

  /** Listens; resolves with the real port (for `port` 0). */
  listen(port: number, address: string): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, address, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops listening and closes every connection, spliced streams included. */
  close(): Promise<void> {
    for (const s of this.upgraded) s.destroy();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const reply: Reply = (status, headers) => writeStatus(res, status, headers);
    const path = pathOf(req.url);
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return reply(failureStatus(405, 'method not allowed'));
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' });
      res.end(req.method === 'HEAD' ? undefined : 'ok');
      return;
    }
    const route = this.admit(req, reply);
    if (!route) return;
    // Node hands every request with an Upgrade header to 'upgrade'; what reaches here is plain.
    reply(failureStatus(400, 'Upgrade request required'));
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.pause();
    socket.on('error', () => socket.destroy());
    // Remembered for close(); pruned here rather than with yet another 'close' listener on a
    // socket the proxy's splice already listens to many times.
    for (const s of this.upgraded) if (s.destroyed) this.upgraded.delete(s);
    this.upgraded.add(socket);
    const reply: Reply = (status, headers) => writeStatusToSocket(socket, status, headers);
    const route = this.admit(req, reply);
    if (!route) return;
    if (!isUpgradeRequest(req)) return reply(failureStatus(400, 'Upgrade request required'));
    let options: StreamOptions;
    try {
      options = streamOptions(route.verb, new URL(req.url ?? '/', 'http://kubelet').searchParams);
    } catch (err) {
      return reply(toStatus(err));
    }
    this.streamUrl(route, options).then(
      (url) => {
        if (socket.destroyed) return;
        const handler = new UpgradeAwareHandler({
          location: url,
          upgradeRequired: true,
          rejectForwardingRedirects: true,
          useLocationHost: true,
          stripHeaders: ['Authorization'],
          // Only when set: an explicit undefined would replace the handler's default.
          ...(this.opts.backendTimeoutMs ? { backendTimeoutMs: this.opts.backendTimeoutMs } : {}),
        });
        handler.handleUpgrade(req, socket, head);
      },
      (err: unknown) => {
        if (err instanceof StatusError) return reply(err.status);
        const { status, headers } = criErrorToStatus(err);
        this.opts.log(
          `${route.verb} ${route.namespace}/${route.pod}/${route.container}: ${errorMessage(err)}`,
        );
        reply(status, headers);
      },
    );
  }

  /** Authentication, routing and method checks shared by both entry points. */
  private admit(req: IncomingMessage, reply: Reply): StreamRoute | undefined {
    const denied = this.authenticate(req);
    if (denied) return void reply(denied);
    let route: StreamRoute | undefined;
    try {
      route = parseStreamPath(pathOf(req.url));
    } catch (err) {
      return void reply(toStatus(err));
    }
    if (!route) return void reply(failureStatus(404, 'the server could not find the requested resource'));
    if (req.method !== 'GET' && req.method !== 'POST') {
      return void reply(failureStatus(405, `method ${req.method} is not allowed on /${route.verb}`));
    }
    return route;
  }

  private authenticate(req: IncomingMessage): Status | undefined {
    const token = bearerToken(req.headers.authorization);
    const user = token ? verifyToken(this.opts.signingKey, token, KUBELET_AUDIENCE) : undefined;
    if (!user) return failureStatus(401, 'Unauthorized');
    if (user.name !== APISERVER_USER) {
      const verb = req.method === 'POST' ? 'create' : 'get';
      return failureStatus(
        403,
        `Forbidden (user=${user.name}, verb=${verb}, resource=nodes, subresource(s)=[proxy])`,
      );
    }
    return undefined;
  }

  /** Finds the container and asks the runtime where to stream (CRI Exec / Attach). */
  private async streamUrl(route: StreamRoute, o: StreamOptions): Promise<URL> {
    const container = await this.findContainer(route);
    const { url } =
      route.verb === 'exec'
        ? await this.opts.runtime.exec({
            container_id: container.id,
            cmd: o.command,
            tty: o.tty,
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
          })
        : await this.opts.runtime.attach({
            container_id: container.id,
            tty: o.tty,
            stdin: o.stdin,
            stdout: o.stdout,
            stderr: o.stderr,
          });
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`scheme ${u.protocol}`);
      return u;
    } catch (err) {
      throw StatusError.of(
        500,
        `runtime returned an invalid streaming URL ${JSON.stringify(url)}: ${errorMessage(err)}`,
      );
    }
  }

  private async findContainer(r: StreamRoute): Promise<Container> {
    const podLabels: Record<string, string> = {
      [KubernetesPodNamespaceLabel]: r.namespace,
      [KubernetesPodNameLabel]: r.pod,
    };
    if (r.uid) podLabels[KubernetesPodUIDLabel] = r.uid;
    const { containers } = await this.opts.runtime.listContainers({
      filter: {
        label_selector: { ...podLabels, [KubernetesContainerNameLabel]: r.container },
        state: { state: 'CONTAINER_RUNNING' },
      },
    });
    const running = containers.filter((c) => c.state === 'CONTAINER_RUNNING');
    const newest = running.reduce<Container | undefined>(
      (a, b) => (!a || b.created_at > a.created_at ? b : a),
      undefined,
    );
    if (newest) return newest;
    const { items } = await this.opts.runtime.listPodSandbox({ filter: { label_selector: podLabels } });
    if (items.length === 0) throw StatusError.of(404, 'pod does not exist');
    throw StatusError.of(404, `container not found (${JSON.stringify(r.container)})`);
  }
}

// DNS-1123 names, as the apiserver validates them: this also rules out `..`, `/`, `%2F` and empty.
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const UID = /^[A-Za-z0-9][-A-Za-z0-9]{0,63}$/;

/**
 * `/exec/{ns}/{pod}/{container}` or `/exec/{ns}/{pod}/{uid}/{container}` (and `/attach/…`);
 * undefined for any other path; a 400 StatusError for a stream path with invalid parts.
 */
export function parseStreamPath(path: string): StreamRoute | undefined {
  const segments = path.split('/');
  const verb = segments[1];
  if (segments[0] !== '' || (verb !== 'exec' && verb !== 'attach')) return undefined;
  const raw = segments.slice(2);
  const usage = `expected /${verb}/{namespace}/{pod}/{container}`;
  if (raw.length !== 3 && raw.length !== 4)
    throw StatusError.of(400, `invalid path ${JSON.stringify(path)}: ${usage}`);
  const parts = raw.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw StatusError.of(400, `invalid path ${JSON.stringify(path)}: bad escape`);
    }
  });
  const [namespace, pod, a, b] = parts as [string, string, string, string | undefined];
  const container = b ?? a;
  const uid = b === undefined ? undefined : a;
  check('namespace', namespace, DNS1123_LABEL, 63);
  check('pod', pod, DNS1123_SUBDOMAIN, 253);
  check('container', container, DNS1123_LABEL, 63);
  if (uid !== undefined) check('pod uid', uid, UID, 64);
  return { verb, namespace, pod, container, ...(uid !== undefined ? { uid } : {}) };
}

function check(what: string, value: string, re: RegExp, max: number): void {
  if (!value || value.length > max || !re.test(value)) {
    throw StatusError.of(400, `invalid ${what} name ${JSON.stringify(value)}`);
  }
}

/**
 * Stream options from the query, by upstream's rules (remotecommand NewOptions): `input`,
 * `output`, `error`, `tty` are on when `=1`; with a tty stderr is dropped; at least one stream.
 */
export function streamOptions(verb: StreamVerb, q: URLSearchParams): StreamOptions {
  const on = (k: string): boolean => q.get(k) === '1';
  const tty = on('tty');
  const stdin = on('input');
  const stdout = on('output');
  const stderr = on('error') && !tty;
  if (!stdin && !stdout && !stderr) {
    throw StatusError.of(400, 'you must specify at least 1 of stdin, stdout, stderr');
  }
  const command = q.getAll('command');
  if (verb === 'exec' && command.length === 0) {
    throw StatusError.of(400, 'you must specify at least one command for the container');
  }
  return { command: verb === 'exec' ? command : [], stdin, stdout, stderr, tty };
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}
