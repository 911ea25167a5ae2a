/**
 * An in-memory CRI runtime for the kubelet-sim's unit tests: sandboxes and containers as records,
 * label/state filters as the CRI defines them, gRPC-shaped errors, and an Exec/Attach/PortForward
 * that answers with a URL on a streaming server the test provides. `exit()` ends a container's main
 * process as the runtime would see it; `logPaths` gives containers a log file. Every call is counted.
 * Its ImageService: `images` are present (ID `sha256:<name>`), `pullable` ones appear when pulled,
 * any other pull fails as a registry without the image would. Sandbox `n` gets pod IP 10.88.0.n.
 */
import grpc from '@grpc/grpc-js';
import type * as T from '../../shared/cri/types.js';
import type { ImageService } from '../image-manager.js';
import type { RuntimeService } from '../kuberuntime-manager.js';

export function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), {
    code,
    details,
    metadata: new grpc.Metadata(),
  });
}

interface FakeContainer extends T.Container {
  started_at: number;
  finished_at: number;
  exit_code: number;
  reason: string;
}

export class FakeRuntime implements RuntimeService, ImageService {
  readonly sandboxes = new Map<string, T.PodSandbox>();
  readonly containers = new Map<string, FakeContainer>();
  readonly calls: { method: string; req: unknown }[] = [];
  images = new Set(['busybox', 'alpine']);
  /** Images a pull finds (and then adds to `images`). */
  pullable = new Set<string>();
  /** Pod IP of each sandbox. */
  readonly sandboxIps = new Map<string, string>();
  /** Base URL Exec/Attach answer with (`${streamingBase}/exec/{token}`). */
  streamingBase = 'http://127.0.0.1:1';
  /** The next call of this method fails with this error. */
  failNext = new Map<string, grpc.ServiceError>();
  /** Log file of a container (ContainerStatus log_path), by container id. */
  logPaths = new Map<string, string>();
  private seq = 0;

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }

  private enter(method: string, req: unknown): void {
    this.calls.push({ method, req });
    const err = this.failNext.get(method);
    if (err) {
      this.failNext.delete(method);
      throw err;
    }
  }

  private id(prefix: string): string {
    return `${prefix}${(++this.seq).toString(16).padStart(8, '0')}`;
  }

  async version(req: T.VersionRequest = {}): Promise<T.VersionResponse> {
    this.enter('Version', req);
    return {
      version: '0.1.0',
      runtime_name: 'fake-runtime',
      runtime_version: '0.0.1',
      runtime_api_version: 'v1',
    };
  }

  async runPodSandbox(req: T.RunPodSandboxRequest): Promise<T.RunPodSandboxResponse> {
    this.enter('RunPodSandbox', req);
    const id = this.id('sb');
    this.sandboxIps.set(id, `10.88.0.${this.sandboxIps.size + 1}`);
    const m = req.config.metadata;
    this.sandboxes.set(id, {
      id,
      metadata: { name: m.name, uid: m.uid ?? '', namespace: m.namespace ?? '', attempt: m.attempt ?? 0 },
      state: 'SANDBOX_READY',
      created_at: Date.now() * 1e6 + this.seq,
      labels: { ...req.config.labels },
      annotations: { ...req.config.annotations },
      runtime_handler: '',
    });
    return { pod_sandbox_id: id };
  }

  async stopPodSandbox(req: T.PodSandboxIdRequest): Promise<T.Empty> {
    this.enter('StopPodSandbox', req);
    const s = this.sandboxes.get(req.pod_sandbox_id);
    if (s) s.state = 'SANDBOX_NOTREADY';
    for (const c of this.containers.values())
      if (c.pod_sandbox_id === req.pod_sandbox_id) c.state = 'CONTAINER_EXITED';
    return {};
  }

  async removePodSandbox(req: T.PodSandboxIdRequest): Promise<T.Empty> {
    this.enter('RemovePodSandbox', req);
    this.sandboxes.delete(req.pod_sandbox_id);
    for (const [id, c] of this.containers)
      if (c.pod_sandbox_id === req.pod_sandbox_id) this.containers.delete(id);
    return {};
  }

  async listPodSandbox(req: T.ListPodSandboxRequest = {}): Promise<T.ListPodSandboxResponse> {
    this.enter('ListPodSandbox', req);
    const f = req.filter ?? {};
    const items = [...this.sandboxes.values()].filter(
      (s) =>
        (!f.id || s.id === f.id) &&
        (!f.state || s.state === f.state.state) &&
        matches(s.labels, f.label_selector),
    );
    return { items: structuredClone(items) };
  }

  async createContainer(req: T.CreateContainerRequest): Promise<T.CreateContainerResponse> {
    this.enter('CreateContainer', req);
    if (!this.sandboxes.has(req.pod_sandbox_id)) {
      throw grpcError(grpc.status.NOT_FOUND, `pod sandbox ${req.pod_sandbox_id} not found`);
    }
    // By name or by the ID ImageStatus and PullImage answer with (what a kubelet passes).
    const image = req.config.image.image.replace(/^sha256:/, '');
    if (!this.images.has(image)) throw grpcError(grpc.status.NOT_FOUND, `image "${image}" not found`);
    const id = this.id('c');
    this.containers.set(id, {
      id,
      pod_sandbox_id: req.pod_sandbox_id,
      metadata: { name: req.config.metadata.name, attempt: req.config.metadata.attempt ?? 0 },
      image: { image, annotations: {}, user_specified_image: image },
      image_ref: `sha256:${image}`,
      state: 'CONTAINER_CREATED',
      created_at: Date.now() * 1e6 + this.seq,
      labels: { ...req.config.labels },
      annotations: { ...req.config.annotations },
      image_id: `sha256:${image}`,
      started_at: 0,
      finished_at: 0,
      exit_code: 0,
      reason: '',
    });
    return { container_id: id };
  }

  async startContainer(req: T.ContainerIdRequest): Promise<T.Empty> {
    this.enter('StartContainer', req);
    const c = this.containers.get(req.container_id);
    if (!c) throw grpcError(grpc.status.NOT_FOUND, `container ${req.container_id} not found`);
    c.state = 'CONTAINER_RUNNING';
    c.started_at = Date.now() * 1e6;
    return {};
  }

  async removeContainer(req: T.ContainerIdRequest): Promise<T.Empty> {
    this.enter('RemoveContainer', req);
    this.containers.delete(req.container_id);
    return {};
  }

  async listContainers(req: T.ListContainersRequest = {}): Promise<T.ListContainersResponse> {
    this.enter('ListContainers', req);
    const f = req.filter ?? {};
    const containers = [...this.containers.values()].filter(
      (c) =>
        (!f.id || c.id === f.id) &&
        (!f.pod_sandbox_id || c.pod_sandbox_id === f.pod_sandbox_id) &&
        (!f.state || c.state === f.state.state) &&
        matches(c.labels, f.label_selector),
    );
    return {
      containers: containers.map(({ started_at: _s, finished_at: _f, exit_code: _e, reason: _r, ...c }) =>
        structuredClone(c),
      ),
    };
  }

  async containerStatus(req: T.ContainerStatusRequest): Promise<T.ContainerStatusResponse> {
    this.enter('ContainerStatus', req);
    const c = this.containers.get(req.container_id);
    if (!c) throw grpcError(grpc.status.NOT_FOUND, `container ${req.container_id} not found`);
    return {
      status: {
        id: c.id,
        metadata: c.metadata,
        state: c.state,
        created_at: c.created_at,
        started_at: c.started_at,
        finished_at: c.finished_at,
        exit_code: c.exit_code,
        image: c.image,
        image_ref: c.image_ref,
        reason: c.reason,
        message: '',
        labels: c.labels,
        annotations: c.annotations,
        log_path: this.logPaths.get(c.id) ?? '',
        image_id: c.image_id,
      },
      info: {},
    };
  }

  async podSandboxStatus(req: T.PodSandboxStatusRequest): Promise<T.PodSandboxStatusResponse> {
    this.enter('PodSandboxStatus', req);
    const s = this.sandboxes.get(req.pod_sandbox_id);
    if (!s) throw grpcError(grpc.status.NOT_FOUND, `sandbox ${req.pod_sandbox_id} not found`);
    return {
      status: { ...structuredClone(s), network: { ip: this.sandboxIps.get(s.id) ?? '', additional_ips: [] } },
      info: {},
      containers_statuses: [],
      timestamp: Date.now() * 1e6,
    };
  }

  async imageStatus(req: T.ImageStatusRequest): Promise<T.ImageStatusResponse> {
    this.enter('ImageStatus', req);
    const name = req.image.image;
    if (!this.images.has(name)) return { image: null, info: {} };
    return {
      image: {
        id: `sha256:${name}`,
        repo_tags: [name],
        repo_digests: [],
        size: 1,
        uid: null,
        username: '',
        spec: null,
        pinned: false,
      },
      info: {},
    };
  }

  async pullImage(req: T.PullImageRequest): Promise<T.PullImageResponse> {
    this.enter('PullImage', req);
    const name = req.image.image;
    if (!this.images.has(name) && !this.pullable.has(name)) {
      throw grpcError(
        grpc.status.UNKNOWN,
        `failed to pull and unpack image "${name}": failed to resolve reference "${name}": not found`,
      );
    }
    this.images.add(name);
    return { image_ref: `sha256:${name}` };
  }

  async exec(req: T.ExecRequest): Promise<T.UrlResponse> {
    this.enter('Exec', req);
    this.mustRun(req.container_id);
    return { url: `${this.streamingBase}/exec/tok${++this.seq}` };
  }

  async attach(req: T.AttachRequest): Promise<T.UrlResponse> {
    this.enter('Attach', req);
    this.mustRun(req.container_id);
    return { url: `${this.streamingBase}/attach/tok${++this.seq}` };
  }

  async portForward(req: T.PortForwardRequest): Promise<T.UrlResponse> {
    this.enter('PortForward', req);
    const s = this.sandboxes.get(req.pod_sandbox_id);
    if (!s) throw grpcError(grpc.status.NOT_FOUND, `sandbox ${req.pod_sandbox_id} not found`);
    if (s.state !== 'SANDBOX_READY') {
      throw grpcError(grpc.status.FAILED_PRECONDITION, `sandbox ${req.pod_sandbox_id} is not ready`);
    }
    return { url: `${this.streamingBase}/portforward/tok${++this.seq}` };
  }

  /** The container's main process ends with `exitCode` (as the runtime would record it). */
  exit(id: string, exitCode: number): void {
    const c = this.containers.get(id);
    if (!c || c.state !== 'CONTAINER_RUNNING') throw new Error(`container ${id} is not running`);
    Object.assign(c, {
      state: 'CONTAINER_EXITED',
      exit_code: exitCode,
      reason: exitCode === 0 ? 'Completed' : 'Error',
      finished_at: Date.now() * 1e6,
    });
  }

  /** The containers of a pod by the kubelet's labels, oldest first. */
  containersOf(podName: string, container?: string): FakeContainer[] {
    return [...this.containers.values()]
      .filter(
        (c) =>
          c.labels['io.kubernetes.pod.name'] === podName &&
          (container === undefined || c.labels['io.kubernetes.container.name'] === container),
      )
      .sort((a, b) => a.created_at - b.created_at);
  }

  private mustRun(id: string): void {
    const c = this.containers.get(id);
    if (!c) throw grpcError(grpc.status.NOT_FOUND, `container ${id} not found`);
    if (c.state !== 'CONTAINER_RUNNING') {
      throw grpcError(grpc.status.FAILED_PRECONDITION, `container ${id} is not running`);
    }
  }
}

function matches(labels: Record<string, string>, selector: Record<string, string> | undefined): boolean {
  return Object.entries(selector ?? {}).every(([k, v]) => labels[k] === v);
}
