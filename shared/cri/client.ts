/**
 * A typed, promise-based client for the CRI RuntimeService (runtime.v1 subset in
 * `shared/cri/cri.proto`). What the kubelet-sim uses to drive the cri-shim; mirrors the
 * kubelet's `remote_runtime.go` (one method per RPC, a deadline on every call).
 *
 * API:
 *   const rt = connectRuntime('unix:///tmp/lab/cri.sock');      // or 'tcp://127.0.0.1:7070'
 *   await rt.waitForReady(5000);                                // optional: wait for the channel
 *   const { pod_sandbox_id } = await rt.runPodSandbox({ config: { metadata: { name: 'demo', namespace: 'default', uid: 'u1' } } });
 *   const { container_id } = await rt.createContainer({ pod_sandbox_id, config: { metadata: { name: 'c' }, image: { image: 'busybox' } } });
 *   await rt.startContainer({ container_id });
 *   const { containers } = await rt.listContainers({ filter: { label_selector: { 'io.kubernetes.pod.name': 'demo' } } });
 *   const { url } = await rt.exec({ container_id, cmd: ['ls', '/root'], stdout: true, stderr: true });
 *   rt.close();
 *
 * Field names are the proto's snake_case names (see `proto.ts` for the loader options and
 * `types.ts` for every message). Errors are grpc-js `ServiceError`s: check `err.code` against
 * `GrpcStatus` (e.g. `GrpcStatus.NOT_FOUND`) or use `isGrpcError(err, GrpcStatus.NOT_FOUND)`;
 * `err.details` is the runtime's message.
 */
import grpc from '@grpc/grpc-js';
import { grpcTarget, runtimeServiceConstructor } from './proto.js';
import type * as T from './types.js';

export * from './types.js';
export { grpcTarget } from './proto.js';
export const GrpcStatus = grpc.status;
export type ServiceError = grpc.ServiceError;

export function isGrpcError(err: unknown, code?: grpc.status): err is grpc.ServiceError {
  const ok =
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof (err as { code: unknown }).code === 'number';
  return ok && (code === undefined || (err as grpc.ServiceError).code === code);
}

/**
 * gRPC metadata sent with a call, e.g. `{ 'audit-id': … }`: the kubelet passes the apiserver's
 * Audit-Id to the runtime this way, so the runtime's log lines name the same request.
 */
export type CallMetadata = Record<string, string | undefined>;

/** The metadata key the Audit-Id travels under on CRI calls. */
export const AUDIT_ID_METADATA = 'audit-id';

export interface RuntimeClientOptions {
  /** Deadline of every call in ms (ExecSync adds its own timeout on top). Default 30 s. */
  callTimeoutMs?: number;
}

type Req<M extends T.RuntimeMethodName> = T.RuntimeServiceMethods[M][0];
type Res<M extends T.RuntimeMethodName> = T.RuntimeServiceMethods[M][1];
type UnaryFn = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

export class RuntimeServiceClient {
  private readonly client: grpc.Client;
  private readonly callTimeoutMs: number;

  constructor(
    readonly endpoint: string,
    options: RuntimeClientOptions = {},
  ) {
    const Ctor = runtimeServiceConstructor();
    this.client = new Ctor(grpcTarget(endpoint), grpc.credentials.createInsecure());
    this.callTimeoutMs = options.callTimeoutMs ?? 30_000;
  }

  /** Resolves once the channel is connected; rejects after `timeoutMs`. */
  waitForReady(timeoutMs = 5000): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.client.close();
  }

  /** Any RPC by its upstream name, e.g. `call('Version', {})`; `meta` becomes gRPC metadata. */
  call<M extends T.RuntimeMethodName>(
    method: M,
    req: Req<M>,
    timeoutMs = this.callTimeoutMs,
    meta: CallMetadata = {},
  ): Promise<Res<M>> {
    const fn = (this.client as unknown as Record<string, UnaryFn>)[method];
    if (!fn) return Promise.reject(new Error(`unknown CRI method ${method}`));
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(meta)) if (v) metadata.set(k, v);
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as Res<M>),
      );
    });
  }

  version(req: T.VersionRequest = {}): Promise<T.VersionResponse> {
    return this.call('Version', req);
  }
  status(req: T.StatusRequest = {}): Promise<T.StatusResponse> {
    return this.call('Status', req);
  }
  runPodSandbox(req: T.RunPodSandboxRequest): Promise<T.RunPodSandboxResponse> {
    return this.call('RunPodSandbox', req);
  }
  stopPodSandbox(req: T.PodSandboxIdRequest): Promise<T.Empty> {
    return this.call('StopPodSandbox', req);
  }
  removePodSandbox(req: T.PodSandboxIdRequest): Promise<T.Empty> {
    return this.call('RemovePodSandbox', req);
  }
  podSandboxStatus(req: T.PodSandboxStatusRequest): Promise<T.PodSandboxStatusResponse> {
    return this.call('PodSandboxStatus', req);
  }
  listPodSandbox(req: T.ListPodSandboxRequest = {}): Promise<T.ListPodSandboxResponse> {
    return this.call('ListPodSandbox', req);
  }
  createContainer(req: T.CreateContainerRequest): Promise<T.CreateContainerResponse> {
    return this.call('CreateContainer', req);
  }
  startContainer(req: T.ContainerIdRequest): Promise<T.Empty> {
    return this.call('StartContainer', req);
  }
  stopContainer(req: T.StopContainerRequest): Promise<T.Empty> {
    return this.call('StopContainer', req, this.callTimeoutMs + (req.timeout ?? 0) * 1000);
  }
  removeContainer(req: T.ContainerIdRequest): Promise<T.Empty> {
    return this.call('RemoveContainer', req);
  }
  listContainers(req: T.ListContainersRequest = {}): Promise<T.ListContainersResponse> {
    return this.call('ListContainers', req);
  }
  containerStatus(req: T.ContainerStatusRequest): Promise<T.ContainerStatusResponse> {
    return this.call('ContainerStatus', req);
  }
  /** Runs a command to completion; the deadline is the request's `timeout` (s) plus the call timeout. */
  execSync(req: T.ExecSyncRequest): Promise<T.ExecSyncResponse> {
    const extra = req.timeout ? req.timeout * 1000 : 10 * 60_000;
    return this.call('ExecSync', req, this.callTimeoutMs + extra);
  }
  exec(req: T.ExecRequest, meta?: CallMetadata): Promise<T.UrlResponse> {
    return this.call('Exec', req, this.callTimeoutMs, meta);
  }
  attach(req: T.AttachRequest, meta?: CallMetadata): Promise<T.UrlResponse> {
    return this.call('Attach', req, this.callTimeoutMs, meta);
  }
  portForward(req: T.PortForwardRequest, meta?: CallMetadata): Promise<T.UrlResponse> {
    return this.call('PortForward', req, this.callTimeoutMs, meta);
  }
}

/** Opens a client to `unix:///path` or `tcp://host:port` (the channel connects lazily). */
export function connectRuntime(endpoint: string, options?: RuntimeClientOptions): RuntimeServiceClient {
  return new RuntimeServiceClient(endpoint, options);
}
