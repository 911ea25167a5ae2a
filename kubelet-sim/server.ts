/**
 * The kubelet's HTTP server: `/healthz`, the streaming endpoints `/exec/{ns}/{pod}/{container}`,
 * `/attach/{ns}/{pod}/{container}` (also with `{uid}` before the container) and
 * `/portForward/{ns}/{pod}[/{uid}]`, and `/containerLogs/{ns}/{pod}/{container}`.
 * For a stream it authenticates the apiserver, finds the container (or, for a port-forward, the
 * pod sandbox) through CRI, asks the runtime for a streaming URL (CRI Exec / Attach /
 * PortForward) and proxies the same upgrade there with an UpgradeAwareHandler: the kubelet is a
 * reverse proxy too. Logs are read here (container-logs.ts).
 *
 * Mirrors kubelet `pkg/kubelet/server/server.go` (InstallDebuggingHandlers, getExec, getAttach,
 * getPortForward, getContainerLogs, proxyStream) and `pkg/kubelet/server/auth.go`
 * (authenticate, then authorise `nodes/proxy`). Differences, on purpose:
 * - the only identity allowed is the apiserver's (`system:apiserver`, audience `kubelet`); anyone
 *   else authenticated gets 403 in upstream's wording, a missing or bad token 401;
 * - a missing container is 404 `container not found ("c")` (upstream's words, but upstream answers
 *   500), a pod with no sandbox 404 `pod does not exist`;
 * - a stream request that is not an upgrade is refused (400) before the runtime is asked, so it
 *   cannot use up the runtime's streaming tokens;
 * - every refusal is a Status, also CRI errors (see cri-errors.ts).
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import {
  APISERVER_KUBELET_CLIENT,
  APISERVER_USER,
  bearerToken,
  KUBELET_AUDIENCE,
  verifyTokenWithKeys,
  type VerificationKeys,
} from '../shared/auth/tokens.js';
import { parsePortsQuery, PortForwardError } from '../shared/portforward/protocol.js';
import { isUpgradeRequest } from '../shared/proxy/hop-headers.js';
import { UpgradeAwareHandler } from '../shared/proxy/upgrade-aware-handler.js';
import {
  answerClientError,
  failureStatus,
  StatusError,
  toStatus,
  writeStatus,
  writeStatusToSocket,
  type Status,
} from '../shared/status.js';
import { serveContainerLogs } from './container-logs.js';
import { criErrorToStatus } from './cri-errors.js';
import type { StreamFaultHandler } from './fault-injection.js';
import type { RuntimeService } from './kuberuntime-manager.js';
import {
  parseKubeletPath,
  pathOf,
  type KubeletRoute,
  type PortForwardRoute,
  type StreamRoute,
  type StreamVerb,
} from './routes.js';
import { findRunningContainer, findSandbox } from './runtime-lookup.js';
import { errorMessage, type Logger } from '../shared/logging.js';

export { parseStreamPath, type StreamRoute, type StreamVerb } from './routes.js';

export interface KubeletServerOptions {
  /**
   * Keys that verify the apiserver's bearer token (audience `kubelet`): the RSA public half of
   * its `--kubelet-token-signing-key-file` (never a key that could sign one); none accepts
   * only the client certificate.
   */
  apiserverTokenKeys?: VerificationKeys;
  runtime: RuntimeService;
  log: Logger;
  /** Time allowed to reach the runtime's streaming server (UpgradeAwareHandler backendTimeoutMs). */
  backendTimeoutMs?: number;
  /** `follow` logs: how often the file is looked at without a change event. Default 1000 ms. */
  logPollIntervalMs?: number;
  /** `--fault`: answers authenticated streaming upgrades instead of the runtime (fault-injection.ts). */
  streamFault?: StreamFaultHandler;
  /** Serve https (`--tls-cert-file`, `--tls-private-key-file`); plain http without. */
  tls?: KubeletTlsOptions;
}

export interface KubeletTlsOptions {
  /** PEM serving certificate (chain) and its key. */
  cert: Buffer;
  key: Buffer;
  /**
   * `--client-ca-file`: client certificates verified by this CA authenticate as their CN. The
   * handshake asks for one but never requires it, so the bearer token keeps working.
   */
  clientCa?: Buffer;
}

/** The users allowed through: the apiserver's, by token or by client certificate. */
const APISERVER_IDENTITIES = new Set([APISERVER_USER, APISERVER_KUBELET_CLIENT]);

export interface StreamOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

type Reply = (status: Status, headers?: Record<string, string>) => void;

export class KubeletServer {
  readonly server: http.Server | https.Server;
  private readonly upgraded = new Set<Duplex>();
  private readonly logStreams = new Set<ServerResponse>();

  constructor(private readonly opts: KubeletServerOptions) {
    const onRequest = (req: IncomingMessage, res: ServerResponse): void => this.onRequest(req, res);
    const tls = opts.tls;
    this.server = tls
      ? https.createServer(
          {
            cert: tls.cert,
            key: tls.key,
            ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: false } : {}),
          },
          onRequest,
        )
      : http.createServer(onRequest);
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.onUpgrade(req, socket, head),
    );
    // A malformed request gets an answer before the close, as Node's default handler gives:
    // 431 when the request line or headers exceed maxHeaderSize, else 400.
    this.server.on('clientError', answerClientError);
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

  /** Log responses being streamed right now (each stops when its client goes away). */
  get activeLogStreams(): number {
    return this.logStreams.size;
  }

  /** Stops listening and closes every connection, spliced streams and log followers included. */
  close(): Promise<void> {
    for (const s of this.upgraded) s.destroy();
    for (const r of this.logStreams) r.destroy();
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
    if (route.verb === 'containerLogs') {
      serveContainerLogs(req, res, route, {
        runtime: this.opts.runtime,
        active: this.logStreams,
        pollIntervalMs: this.opts.logPollIntervalMs,
      }).catch((err: unknown) => {
        if (res.headersSent) return void res.destroy();
        reply(...this.refusal(err, route));
      });
      return;
    }
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
    if (route.verb === 'containerLogs') {
      return reply(failureStatus(400, 'container logs are served without an upgrade'));
    }
    if (!isUpgradeRequest(req)) return reply(failureStatus(400, 'Upgrade request required'));
    if (this.opts.streamFault) return this.opts.streamFault(req, socket, head);
    let backend: Promise<URL>;
    try {
      const query = new URL(req.url ?? '/', 'http://kubelet').searchParams;
      backend =
        route.verb === 'portForward'
          ? this.portForwardUrl(route, portForwardPorts(req, query))
          : this.streamUrl(route, streamOptions(route.verb, query));
    } catch (err) {
      return reply(toStatus(err));
    }
    backend.then(
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
      (err: unknown) => reply(...this.refusal(err, route)),
    );
  }

  /** A lookup or CRI failure as the Status (and headers) the client gets. */
  private refusal(err: unknown, route: KubeletRoute): [Status, Record<string, string>] {
    if (err instanceof StatusError) return [err.status, {}];
    const { status, headers } = criErrorToStatus(err);
    const what = 'container' in route ? `${route.pod}/${route.container}` : route.pod;
    this.opts.log(`${route.verb} ${route.namespace}/${what}: ${errorMessage(err)}`);
    return [status, headers];
  }

  /** Authentication, routing and method checks shared by both entry points. */
  private admit(req: IncomingMessage, reply: Reply): KubeletRoute | undefined {
    const denied = this.authenticate(req);
    if (denied) return void reply(denied);
    let route: KubeletRoute | undefined;
    try {
      route = parseKubeletPath(pathOf(req.url));
    } catch (err) {
      return void reply(toStatus(err));
    }
    if (!route) return void reply(failureStatus(404, 'the server could not find the requested resource'));
    const allowed = route.verb === 'containerLogs' ? ['GET'] : ['GET', 'POST'];
    if (!allowed.includes(req.method ?? '')) {
      return void reply(failureStatus(405, `method ${req.method} is not allowed on /${route.verb}`));
    }
    return route;
  }

  /**
   * x509 first, then the bearer token, as the kubelet's union authenticator
   * (pkg/kubelet/apis/config: x509 `clientCAFile`, then webhook tokens). A certificate that does
   * not verify against the client CA authenticates nobody; the token may still.
   */
  private authenticate(req: IncomingMessage): Status | undefined {
    const token = bearerToken(req.headers.authorization);
    const name =
      this.certificateUser(req) ??
      (token && this.opts.apiserverTokenKeys
        ? verifyTokenWithKeys(this.opts.apiserverTokenKeys, token, KUBELET_AUDIENCE)?.name
        : undefined);
    if (!name) return failureStatus(401, 'Unauthorized');
    if (!APISERVER_IDENTITIES.has(name)) {
      const verb = req.method === 'POST' ? 'create' : 'get';
      return failureStatus(
        403,
        `Forbidden (user=${name}, verb=${verb}, resource=nodes, subresource(s)=[proxy])`,
      );
    }
    return undefined;
  }

  /** The CN of a client certificate the client CA verified, if any. */
  private certificateUser(req: IncomingMessage): string | undefined {
    const socket = req.socket;
    if (!this.opts.tls?.clientCa || !(socket instanceof TLSSocket) || !socket.authorized) return undefined;
    const cn = socket.getPeerCertificate().subject?.CN;
    return typeof cn === 'string' && cn ? cn : undefined;
  }

  /** Finds the container and asks the runtime where to stream (CRI Exec / Attach). */
  private async streamUrl(route: StreamRoute, o: StreamOptions): Promise<URL> {
    const container = await findRunningContainer(this.opts.runtime, route);
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
    return streamingUrl(url);
  }

  /**
   * Finds the pod's sandbox and asks the runtime where to forward (CRI PortForward). The ports go
   * in the CRI request (kubelet GetPortForward); the runtime's URL carries its own query only.
   */
  private async portForwardUrl(route: PortForwardRoute, ports: number[]): Promise<URL> {
    const sandbox = await findSandbox(this.opts.runtime, route);
    const { url } = await this.opts.runtime.portForward({ pod_sandbox_id: sandbox.id, port: ports });
    return streamingUrl(url);
  }
}

function streamingUrl(url: string): URL {
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

/**
 * The ports of a port-forward (portforward.NewV4Options): a WebSocket request must name them with
 * `port` (repeated or comma-separated); a SPDY one names them per stream, so none are required.
 */
export function portForwardPorts(req: IncomingMessage, q: URLSearchParams): number[] {
  let ports: number[];
  try {
    ports = parsePortsQuery(q, 'port');
  } catch (err) {
    if (err instanceof PortForwardError) throw StatusError.of(400, err.message);
    throw err;
  }
  const websocket = (req.headers.upgrade ?? '').toLowerCase() === 'websocket';
  if (websocket && ports.length === 0) throw StatusError.of(400, 'query parameter "port" is required');
  return ports;
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
