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
  bearerToken,
  KUBELET_AUDIENCE,
  verifyTokenWithKeys,
  type UserInfo,
  type VerificationKeys,
} from '../shared/auth/tokens.js';
import { apiserverOnly, requestAttributes, type KubeletAuthorizer } from './kubelet-authorizer.js';
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
import type { KubeletFault } from './fault-injection.js';
import { FAULT_FLAG_PATH, FaultSwitch } from './debug-flags.js';
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
import { errorMessage, structured, type Logger } from '../shared/logging.js';
import { AUDIT_ID_METADATA } from '../shared/cri/client.js';
import { serveMetrics } from '../shared/metrics/registry.js';
import { KubeletMetrics } from './metrics.js';

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
  /**
   * `--fault`: authenticated streaming upgrades are answered by the fault drill instead of the
   * runtime (fault-injection.ts); switchable at run time with `PUT /debug/flags/fault`.
   */
  fault?: KubeletFault;
  /** Serve https (`--tls-cert-file`, `--tls-private-key-file`); plain http without. */
  tls?: KubeletTlsOptions;
  /** Where `/metrics` counts; a registry of its own by default. */
  metrics?: KubeletMetrics;
  /**
   * Who may use this API once authenticated (kubelet-authorizer.ts): the apiserver's identities
   * only by default; `--authorization-mode Webhook` asks the apiserver.
   */
  authorize?: KubeletAuthorizer;
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

/** An exec or attach request as the kubelet reads its query (upstream getExecRequestParams + remotecommand.Options). */
export interface ExecRequestParams {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

type Reply = (status: Status, headers?: Record<string, string>) => void;

export class KubeletServer {
  readonly server: http.Server | https.Server;
  readonly metrics: KubeletMetrics;
  /** The fault drill now on (`/debug/flags/fault`). */
  readonly fault: FaultSwitch;
  private readonly upgraded = new Set<Duplex>();
  private readonly logStreams = new Set<ServerResponse>();

  constructor(private readonly opts: KubeletServerOptions) {
    this.metrics = opts.metrics ?? new KubeletMetrics();
    this.fault = new FaultSwitch(opts.fault, opts.log);
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
    this.metrics.request(req, res);
    const reply: Reply = (status, headers) => writeStatus(res, status, headers);
    const path = pathOf(req.url);
    if (path === '/healthz') {
      if (req.method !== 'GET' && req.method !== 'HEAD')
        return reply(failureStatus(405, 'method not allowed'));
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': '2' });
      res.end(req.method === 'HEAD' ? undefined : 'ok');
      return;
    }
    void this.authorize(req).then((denied) =>
      denied ? reply(denied) : this.serveAuthorized(req, res, reply),
    );
  }

  /** A plain request the auth filter let through. */
  private serveAuthorized(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
    const path = pathOf(req.url);
    if (path === '/metrics' || path === '/debug/sessions' || path === FAULT_FLAG_PATH) {
      if (path === '/metrics') return void serveMetrics(this.metrics.registry, res);
      if (path === FAULT_FLAG_PATH) {
        return void this.fault.serve(req, res).then(
          (refused) => refused && reply(refused),
          (err: unknown) => (res.headersSent ? res.destroy() : reply(failureStatus(500, errorMessage(err)))),
        );
      }
      return writeJSON(res, this.metrics.streams.snapshot());
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
    this.metrics.request(req, socket);
    // The apiserver's Audit-Id: on every line about this request, and on to the runtime.
    const auditID = auditIdOf(req);
    const reply: Reply = (status, headers) =>
      writeStatusToSocket(socket, status, { ...headers, ...(auditID ? { 'Audit-Id': auditID } : {}) });
    void this.authorize(req).then((denied) => {
      if (socket.destroyed) return;
      if (denied) return reply(denied);
      this.upgradeAuthorized(req, socket, head, reply, auditID);
    });
  }

  /** An upgrade the auth filter let through: to the runtime's streaming server (or the fault drill). */
  private upgradeAuthorized(
    req: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    reply: Reply,
    auditID: string | undefined,
  ): void {
    const log = structured(this.opts.log).with({ auditID });
    const route = this.admit(req, reply);
    if (!route) return;
    if (route.verb === 'containerLogs') {
      return reply(failureStatus(400, 'container logs are served without an upgrade'));
    }
    if (!isUpgradeRequest(req)) return reply(failureStatus(400, 'Upgrade request required'));
    const fault = this.fault.handler;
    if (fault) return fault(req, socket, head);
    let backend: Promise<URL>;
    try {
      const query = new URL(req.url ?? '/', 'http://kubelet').searchParams;
      backend =
        route.verb === 'portForward'
          ? this.portForwardUrl(route, portForwardPorts(req, query), auditID)
          : this.streamUrl(route, streamOptions(route.verb, query), auditID);
    } catch (err) {
      return reply(toStatus(err));
    }
    backend.then(
      (url) => {
        if (socket.destroyed) return;
        log.v(2).info(`${route.verb}: proxying to the runtime's streaming server`, { url: url.origin });
        const target = `${route.namespace}/${route.pod}`;
        const hooks = this.metrics.streams.spliceHooks({
          auditID,
          kind: route.verb,
          target,
          path: 'spliced',
        });
        const handler = new UpgradeAwareHandler({
          onSplice: (client, backend, before) => {
            log.info(`${route.verb} ${target}: runtime upgraded, splicing`, {
              protocol: req.headers.upgrade,
            });
            hooks.onSplice(client, backend, before);
          },
          onSpliceClose: (stats) => {
            log.info(`${route.verb} ${target}: stream closed`, { bytesUp: stats.up, bytesDown: stats.down });
            hooks.onSpliceClose(stats);
          },
          location: url,
          upgradeRequired: true,
          rejectForwardingRedirects: true,
          useLocationHost: true,
          stripHeaders: ['Authorization'],
          // Unset (or 0) keeps the handler's default: it drops undefined options.
          backendTimeoutMs: this.opts.backendTimeoutMs || undefined,
        });
        handler.handleUpgrade(req, socket, head);
      },
      (err: unknown) => reply(...this.refusal(err, route, log)),
    );
  }

  /** A lookup or CRI failure as the Status (and headers) the client gets. */
  private refusal(
    err: unknown,
    route: KubeletRoute,
    log: Logger = this.opts.log,
  ): [Status, Record<string, string>] {
    if (err instanceof StatusError) return [err.status, {}];
    const { status, headers } = criErrorToStatus(err);
    const what = 'container' in route ? `${route.pod}/${route.container}` : route.pod;
    log(`${route.verb} ${route.namespace}/${what}: ${errorMessage(err)}`);
    return [status, headers];
  }

  /** Routing and method checks shared by both entry points (after the auth filter). */
  private admit(req: IncomingMessage, reply: Reply): KubeletRoute | undefined {
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
   * The auth filter (server.go InstallAuthFilter): authenticate, then authorize on `nodes/…`.
   * x509 first, then the bearer token, as the kubelet's union authenticator
   * (pkg/kubelet/apis/config: x509 `clientCAFile`, then webhook tokens). A certificate that does
   * not verify against the client CA authenticates nobody; the token may still.
   */
  private async authorize(req: IncomingMessage): Promise<Status | undefined> {
    const token = bearerToken(req.headers.authorization);
    const user =
      this.certificateUser(req) ??
      (token && this.opts.apiserverTokenKeys
        ? verifyTokenWithKeys(this.opts.apiserverTokenKeys, token, KUBELET_AUDIENCE)
        : undefined);
    if (!user) return failureStatus(401, 'Unauthorized');
    return (this.opts.authorize ?? apiserverOnly)(requestAttributes(user, req.method, pathOf(req.url)));
  }

  /** The user of a client certificate the client CA verified, if any: CN, and O as groups. */
  private certificateUser(req: IncomingMessage): UserInfo | undefined {
    const socket = req.socket;
    if (!this.opts.tls?.clientCa || !(socket instanceof TLSSocket) || !socket.authorized) return undefined;
    const subject = socket.getPeerCertificate().subject;
    const cn = subject?.CN;
    if (typeof cn !== 'string' || !cn) return undefined;
    const o: unknown = subject.O;
    return { name: cn, groups: Array.isArray(o) ? o.map(String) : typeof o === 'string' ? [o] : [] };
  }

  /** Finds the container and asks the runtime where to stream (CRI Exec / Attach). */
  private async streamUrl(route: StreamRoute, o: ExecRequestParams, auditID?: string): Promise<URL> {
    const container = await findRunningContainer(this.opts.runtime, route);
    const meta = { [AUDIT_ID_METADATA]: auditID };
    structured(this.opts.log)
      .with({ auditID })
      .info(`CRI ${route.verb === 'exec' ? 'Exec' : 'Attach'}`, { containerID: container.id.slice(0, 12) });
    const { url } = await this.metrics.runtimeOperation(route.verb, () =>
      route.verb === 'exec'
        ? this.opts.runtime.exec(
            {
              container_id: container.id,
              cmd: o.command,
              tty: o.tty,
              stdin: o.stdin,
              stdout: o.stdout,
              stderr: o.stderr,
            },
            meta,
          )
        : this.opts.runtime.attach(
            { container_id: container.id, tty: o.tty, stdin: o.stdin, stdout: o.stdout, stderr: o.stderr },
            meta,
          ),
    );
    return streamingUrl(url);
  }

  /**
   * Finds the pod's sandbox and asks the runtime where to forward (CRI PortForward). The ports go
   * in the CRI request (kubelet GetPortForward); the runtime's URL carries its own query only.
   */
  private async portForwardUrl(route: PortForwardRoute, ports: number[], auditID?: string): Promise<URL> {
    const sandbox = await findSandbox(this.opts.runtime, route);
    const { url } = await this.metrics.runtimeOperation('port_forward', () =>
      this.opts.runtime.portForward(
        { pod_sandbox_id: sandbox.id, port: ports },
        { [AUDIT_ID_METADATA]: auditID },
      ),
    );
    return streamingUrl(url);
  }
}

/** The Audit-Id the apiserver sent, if it is a sane token. */
function auditIdOf(req: IncomingMessage): string | undefined {
  const id = req.headers['audit-id'];
  return typeof id === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(id) ? id : undefined;
}

function writeJSON(res: ServerResponse, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
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
export function streamOptions(verb: StreamVerb, q: URLSearchParams): ExecRequestParams {
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
