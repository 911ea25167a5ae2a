/**
 * Loads `shared/cri/cri.proto` (our runtime.v1 subset: RuntimeService and ImageService) once, for both the client and the shim.
 *
 * Loader options, chosen once for every process of the lab:
 * - `keepCase: true`: fields keep their proto names (`pod_sandbox_id`), as upstream's JSON and
 *   crictl's output spell them, so what you read in the upstream proto is what you type here;
 * - `longs: Number`: int64 timestamps in nanoseconds become JS numbers (precise to ~0.25 µs);
 * - `enums: String`: `'CONTAINER_RUNNING'`, not `1`;
 * - `defaults: true`: received messages carry every scalar/map/repeated field; unset sub-messages
 *   are `null`.
 */
import grpc from '@grpc/grpc-js';
import protoLoader from '@grpc/proto-loader';
import { fromPackageRoot } from '../package-root.js';

export const CRI_PROTO_PATH = fromPackageRoot('shared', 'cri', 'cri.proto');

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

type CriPackage = {
  runtime: {
    v1: { RuntimeService: grpc.ServiceClientConstructor; ImageService: grpc.ServiceClientConstructor };
  };
};
let cached: CriPackage | undefined;

function criPackage(): CriPackage {
  cached ??= grpc.loadPackageDefinition(
    protoLoader.loadSync(CRI_PROTO_PATH, LOADER_OPTIONS),
  ) as unknown as CriPackage;
  return cached;
}

/** The generated `runtime.v1.RuntimeService` client constructor; `.service` is its definition. */
export function runtimeServiceConstructor(): grpc.ServiceClientConstructor {
  return criPackage().runtime.v1.RuntimeService;
}

/** The service definition, for `server.addService`. */
export function runtimeServiceDefinition(): grpc.ServiceDefinition {
  return runtimeServiceConstructor().service;
}

/** The generated `runtime.v1.ImageService` client constructor. */
export function imageServiceConstructor(): grpc.ServiceClientConstructor {
  return criPackage().runtime.v1.ImageService;
}

/** The ImageService definition, for `server.addService`. */
export function imageServiceDefinition(): grpc.ServiceDefinition {
  return imageServiceConstructor().service;
}

/**
 * A CRI endpoint as the lab spells it (`unix:///abs/path` or `tcp://host:port`) turned into a
 * gRPC target (`unix:///abs/path` or `host:port`). Anything else is refused with a clear message.
 */
export function grpcTarget(endpoint: string): string {
  if (endpoint.startsWith('unix://')) {
    const p = endpoint.slice('unix://'.length);
    if (!p.startsWith('/'))
      throw new Error(`CRI endpoint ${JSON.stringify(endpoint)}: unix path must be absolute`);
    return `unix://${p}`;
  }
  if (endpoint.startsWith('tcp://')) {
    const hostPort = endpoint.slice('tcp://'.length).replace(/\/+$/, '');
    if (!/^(\[[0-9a-fA-F:.]+\]|[^:/\s]+):\d+$/.test(hostPort)) {
      throw new Error(`CRI endpoint ${JSON.stringify(endpoint)}: expected tcp://host:port`);
    }
    return hostPort;
  }
  throw new Error(`CRI endpoint ${JSON.stringify(endpoint)}: expected unix:///path or tcp://host:port`);
}
