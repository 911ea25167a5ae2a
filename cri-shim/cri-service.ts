/**
 * The CRI `runtime.v1.RuntimeService` over gRPC: request validation and message shapes around
 * `ContainerRuntime`, plus the Exec/Attach calls that hand out streaming URLs.
 *
 * Mirrors containerd's CRI plugin service files (version.go, sandbox_*.go, container_*.go,
 * container_exec.go, container_attach.go). Error codes as kubelets expect them: unknown ids →
 * NOT_FOUND; exec/attach in a container that is not running → FAILED_PRECONDITION; a full
 * request cache → RESOURCE_EXHAUSTED; PortForward on a sandbox that is not ready →
 * FAILED_PRECONDITION. Removing what does not exist succeeds (the CRI's idempotence rule).
 * PortForward's ports are optional, as upstream: the streaming request's `?port=` query names them
 * (the kubelet passes the client's through); ours are used when the query has none.
 */
import grpc from '@grpc/grpc-js';
import type * as T from '../shared/cri/types.js';
import { MAX_PORTS } from '../shared/portforward/protocol.js';
import { CriError, toGrpcError } from './errors.js';
import { execSync } from './exec-sync.js';
import type { RequestCache } from './request-cache.js';
import type { Container, ContainerRuntime, Sandbox } from './runtime.js';
import { AUDIT_ID_METADATA } from '../shared/cri/client.js';
import { structured, type Logger } from '../shared/logging.js';

export const RUNTIME_NAME = 'kexec-cri-shim';
export const RUNTIME_VERSION = '0.1.0';
export const RUNTIME_API_VERSION = 'v1';

export interface CriServiceOptions {
  runtime: ContainerRuntime;
  cache: RequestCache;
  /** Base URL of the streaming server (read at call time: it is known once it listens). */
  streamingUrl: () => string;
  /** Where Exec/Attach/PortForward say which request they serve (with its Audit-Id). */
  log?: Logger;
}

type Handler<M extends T.RuntimeMethodName> = (
  req: T.RuntimeServiceMethods[M][0],
  auditID: string | undefined,
) => T.RuntimeServiceMethods[M][1] | Promise<T.RuntimeServiceMethods[M][1]>;

/** The Audit-Id a kubelet passed as gRPC metadata, if it is a sane token. */
function auditIdOf(call: grpc.ServerUnaryCall<unknown, unknown>): string | undefined {
  const [id] = call.metadata.get(AUDIT_ID_METADATA);
  return typeof id === 'string' && /^[A-Za-z0-9._:-]{1,64}$/.test(id) ? id : undefined;
}

function unary<M extends T.RuntimeMethodName>(fn: Handler<M>): grpc.handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    Promise.resolve()
      .then(() => fn(call.request as T.RuntimeServiceMethods[M][0], auditIdOf(call)))
      .then(
        (res) => callback(null, res),
        (err: unknown) => callback(toGrpcError(err)),
      );
  };
}

const matchLabels = (labels: T.Labels, selector: T.Labels | undefined): boolean =>
  Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);

// Like crictl and containerd, an id filter also matches a unique-enough prefix of the id.
const matchId = (id: string, want: string | undefined): boolean => !want || id.startsWith(want);

function sandboxMessage(sb: Sandbox): T.PodSandbox {
  return {
    id: sb.id,
    metadata: sb.metadata,
    state: sb.state,
    created_at: sb.createdAt,
    labels: sb.labels,
    annotations: sb.annotations,
    runtime_handler: sb.runtimeHandler,
  };
}

function imageSpec(c: Container): T.ImageSpec {
  return { image: c.imageRef, annotations: {}, user_specified_image: c.imageRef };
}

function containerMessage(c: Container): T.Container {
  return {
    id: c.id,
    pod_sandbox_id: c.sandboxId,
    metadata: c.metadata,
    image: imageSpec(c),
    image_ref: c.image.id,
    state: c.state,
    created_at: c.createdAt,
    labels: c.labels,
    annotations: c.annotations,
    image_id: c.image.id,
  };
}

function containerStatus(c: Container): T.ContainerStatus {
  return {
    id: c.id,
    metadata: c.metadata,
    state: c.state,
    created_at: c.createdAt,
    started_at: c.startedAt,
    finished_at: c.finishedAt,
    exit_code: c.exitCode,
    image: imageSpec(c),
    image_ref: c.image.id,
    reason: c.reason,
    message: c.message,
    labels: c.labels,
    annotations: c.annotations,
    log_path: c.logPath,
    image_id: c.image.id,
  };
}

export function criServiceImplementation(opts: CriServiceOptions): grpc.UntypedServiceImplementation {
  const { runtime, cache } = opts;
  const log = structured(opts.log ?? (() => {}));
  const streamUrl = (kind: string, token: string): string => `${opts.streamingUrl()}/${kind}/${token}`;
  const checkStreams = (r: { stdin?: boolean; stdout?: boolean; stderr?: boolean }): void => {
    if (!r.stdin && !r.stdout && !r.stderr)
      throw CriError.invalid('one of stdin, stdout, or stderr must be set');
  };

  const impl: { [M in T.RuntimeMethodName]: grpc.handleUnaryCall<unknown, unknown> } = {
    Version: unary<'Version'>(() => ({
      version: '0.1.0',
      runtime_name: RUNTIME_NAME,
      runtime_version: RUNTIME_VERSION,
      runtime_api_version: RUNTIME_API_VERSION,
    })),
    Status: unary<'Status'>(() => ({
      status: {
        conditions: [
          { type: 'RuntimeReady', status: true, reason: '', message: '' },
          { type: 'NetworkReady', status: true, reason: '', message: '' },
        ],
      },
      info: {},
    })),

    RunPodSandbox: unary<'RunPodSandbox'>(async (req) => ({
      pod_sandbox_id: (await runtime.runPodSandbox(req.config as T.PodSandboxConfig, req.runtime_handler)).id,
    })),
    StopPodSandbox: unary<'StopPodSandbox'>(async (req) => {
      await runtime.stopPodSandbox(req.pod_sandbox_id);
      return {};
    }),
    RemovePodSandbox: unary<'RemovePodSandbox'>(async (req) => {
      await runtime.removePodSandbox(req.pod_sandbox_id);
      return {};
    }),
    PodSandboxStatus: unary<'PodSandboxStatus'>((req) => {
      const sb = runtime.sandbox(req.pod_sandbox_id);
      return {
        status: { ...sandboxMessage(sb), network: { ip: '127.0.0.1', additional_ips: [] } },
        info: (req.verbose
          ? { info: JSON.stringify({ hostname: sb.hostname, dir: sb.dir }) }
          : {}) as T.Labels,
        containers_statuses: [],
        timestamp: Date.now() * 1e6,
      };
    }),
    ListPodSandbox: unary<'ListPodSandbox'>((req) => {
      const f = req.filter ?? {};
      return {
        items: [...runtime.sandboxes.values()]
          .filter(
            (sb) =>
              matchId(sb.id, f.id) &&
              (!f.state || sb.state === f.state.state) &&
              matchLabels(sb.labels, f.label_selector),
          )
          .map(sandboxMessage),
      };
    }),

    CreateContainer: unary<'CreateContainer'>((req) => ({
      container_id: runtime.createContainer(req.pod_sandbox_id, req.config as T.ContainerConfig).id,
    })),
    StartContainer: unary<'StartContainer'>(async (req) => {
      await runtime.startContainer(req.container_id);
      return {};
    }),
    StopContainer: unary<'StopContainer'>(async (req) => {
      await runtime.stopContainer(req.container_id, Math.max(0, Number(req.timeout ?? 0)));
      return {};
    }),
    RemoveContainer: unary<'RemoveContainer'>(async (req) => {
      await runtime.removeContainer(req.container_id);
      return {};
    }),
    ListContainers: unary<'ListContainers'>((req) => {
      const f = req.filter ?? {};
      return {
        containers: [...runtime.containers.values()]
          .filter(
            (c) =>
              matchId(c.id, f.id) &&
              matchId(c.sandboxId, f.pod_sandbox_id) &&
              (!f.state || c.state === f.state.state) &&
              matchLabels(c.labels, f.label_selector),
          )
          .map(containerMessage),
      };
    }),
    ContainerStatus: unary<'ContainerStatus'>((req) => {
      const c = runtime.container(req.container_id);
      const info: T.Labels = req.verbose
        ? {
            info: JSON.stringify({
              pid: c.main?.pid ?? 0,
              sandboxID: c.sandboxId,
              isolation: runtime.opts.isolation,
              rootDir: c.view.dirs.root,
              command: c.argv,
            }),
          }
        : {};
      return { status: containerStatus(c), info };
    }),

    ExecSync: unary<'ExecSync'>((req) =>
      execSync(runtime, req.container_id, req.cmd ?? [], Math.max(0, Number(req.timeout ?? 0))),
    ),
    Exec: unary<'Exec'>((req, auditID) => {
      runtime.runningContainer(req.container_id);
      if (!req.cmd?.length) throw CriError.invalid('exec command must not be empty');
      checkStreams(req);
      const tty = !!req.tty;
      log.with({ auditID }).info('CRI Exec', { containerID: req.container_id.slice(0, 12), cmd: req.cmd });
      const token = cache.insert({
        kind: 'exec',
        auditID,
        containerId: req.container_id,
        cmd: [...req.cmd],
        stdin: !!req.stdin,
        stdout: !!req.stdout,
        // With a TTY, stderr is not a separate stream (upstream drops it).
        stderr: !!req.stderr && !tty,
        tty,
      });
      return { url: streamUrl('exec', token) };
    }),
    Attach: unary<'Attach'>((req, auditID) => {
      runtime.runningContainer(req.container_id);
      checkStreams(req);
      const tty = !!req.tty;
      log.with({ auditID }).info('CRI Attach', { containerID: req.container_id.slice(0, 12) });
      const token = cache.insert({
        kind: 'attach',
        auditID,
        containerId: req.container_id,
        stdin: !!req.stdin,
        stdout: !!req.stdout,
        stderr: !!req.stderr && !tty,
        tty,
      });
      return { url: streamUrl('attach', token) };
    }),
    PortForward: unary<'PortForward'>((req, auditID) => {
      const sb = runtime.sandbox(req.pod_sandbox_id);
      if (sb.state !== 'SANDBOX_READY') {
        throw CriError.precondition(`sandbox ${req.pod_sandbox_id} is not ready (state: ${sb.state})`);
      }
      const ports = req.port ?? [];
      for (const p of ports) {
        if (!Number.isInteger(p) || p < 1 || p > 65535) throw CriError.invalid(`invalid port ${p}`);
      }
      if (ports.length > MAX_PORTS)
        throw CriError.invalid(`at most ${MAX_PORTS} ports can be forwarded at once`);
      log.with({ auditID }).info('CRI PortForward', { sandboxID: sb.id.slice(0, 12), ports });
      const token = cache.insert({ kind: 'portforward', auditID, sandboxId: sb.id, ports: [...ports] });
      return { url: streamUrl('portforward', token) };
    }),
  };
  return impl;
}
