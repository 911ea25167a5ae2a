/**
 * Typed, promise-based clients for the CRI RuntimeService and ImageService (runtime.v1 subset in
 * `shared/cri/cri.proto`). What the kubelet-sim uses to drive its runtime (the cri-shim or
 * containerd); mirrors the kubelet's `remote_runtime.go` and `remote_image.go` (one method per
 * RPC, a deadline on every call).
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
 *   const images = connectImageService('unix:///tmp/lab/cri.sock');
 *   const { image } = await images.imageStatus({ image: { image: 'busybox' } });   // null: absent
 *   const { image_ref } = await images.pullImage({ image: { image: 'busybox' } });
 *
 * Field names are the proto's snake_case names (see `proto.ts` for the loader options and
 * `types.ts` for every message). Errors are grpc-js `ServiceError`s: check `err.code` against
 * `GrpcStatus` (e.g. `GrpcStatus.NOT_FOUND`) or use `isGrpcError(err, GrpcStatus.NOT_FOUND)`;
 * `err.details` is the runtime's message.
 */
import grpc from '@grpc/grpc-js';
import { grpcTarget, imageServiceConstructor, runtimeServiceConstructor } from './proto.js';
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

type UnaryFn = (
  req: unknown,
  meta: grpc.Metadata,
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: unknown) => void,
) => grpc.ClientUnaryCall;

/** One gRPC channel to a CRI service, its methods typed by `Methods` (request, response pairs). */
class CriServiceClient<Methods extends { [M in keyof Methods]: [unknown, unknown] }> {
  private readonly client: grpc.Client;
  protected readonly callTimeoutMs: number;

  constructor(
    readonly endpoint: string,
    Ctor: grpc.ServiceClientConstructor,
    options: RuntimeClientOptions,
  ) {
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
  call<M extends keyof Methods & string>(
    method: M,
    req: Methods[M][0],
    timeoutMs = this.callTimeoutMs,
    meta: CallMetadata = {},
  ): Promise<Methods[M][1]> {
    const fn = (this.client as unknown as Record<string, UnaryFn>)[method];
    if (!fn) return Promise.reject(new Error(`unknown CRI method ${method}`));
    const metadata = new grpc.Metadata();
    for (const [k, v] of Object.entries(meta)) if (v) metadata.set(k, v);
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, metadata, { deadline: Date.now() + timeoutMs }, (err, res) =>
        err ? reject(err) : resolve(res as Methods[M][1]),
      );
    });
  }
}

export class RuntimeServiceClient extends CriServiceClient<T.RuntimeServiceMethods> {
  constructor(endpoint: string, options: RuntimeClientOptions = {}) {
    super(endpoint, runtimeServiceConstructor(), options);
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

/**
 * The CRI ImageService (upstream `remote_image.go`): which images the runtime holds, and pulls.
 * Usually at the same endpoint as the RuntimeService.
 */
export class ImageServiceClient extends CriServiceClient<T.ImageServiceMethods> {
  constructor(endpoint: string, options: RuntimeClientOptions = {}) {
    super(endpoint, imageServiceConstructor(), options);
  }

  listImages(req: T.ListImagesRequest = {}): Promise<T.ListImagesResponse> {
    return this.call('ListImages', req);
  }
  /** `image` is null when the runtime does not have it. */
  imageStatus(req: T.ImageStatusRequest): Promise<T.ImageStatusResponse> {
    return this.call('ImageStatus', req);
  }
  /** Pulls can be slow: the deadline is five call timeouts (upstream has none but the context's). */
  pullImage(req: T.PullImageRequest): Promise<T.PullImageResponse> {
    return this.call('PullImage', req, this.callTimeoutMs * 5);
  }
  removeImage(req: T.ImageRequest): Promise<T.Empty> {
    return this.call('RemoveImage', req);
  }
}

/** Opens an ImageService client (the channel connects lazily). */
export function connectImageService(endpoint: string, options?: RuntimeClientOptions): ImageServiceClient {
  return new ImageServiceClient(endpoint, options);
}

/** Opens a client to `unix:///path` or `tcp://host:port` (the channel connects lazily). */
export function connectRuntime(endpoint: string, options?: RuntimeClientOptions): RuntimeServiceClient {
  return new RuntimeServiceClient(endpoint, options);
}
