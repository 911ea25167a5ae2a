/**
 * The cri-shim's metrics: every CRI call it answers, and the streaming sessions it serves.
 *
 * Mirrors what containerd exposes on its metrics address: the go-grpc-prometheus server metrics
 * (`grpc_server_started_total`, `grpc_server_handled_total` by service, method, type and code,
 * `grpc_server_handling_seconds`) for the CRI RuntimeService. The streaming sessions (exec, attach,
 * port-forward, by transport) have no upstream metric; they carry the lab's `kexec_lab_` prefix,
 * and the per-session bytes come from shared/metrics/stream-sessions.ts.
 */
import grpc from '@grpc/grpc-js';
import { Counter, Histogram, newRegistry, type Registry } from '../shared/metrics/registry.js';
import { StreamSessions } from '../shared/metrics/stream-sessions.js';

const SERVICE = 'runtime.v1.RuntimeService';
type GrpcLabel = 'grpc_service' | 'grpc_method' | 'grpc_type';

/** grpc.status number → the code name go-grpc-prometheus reports (`OK`, `NotFound` …). */
const CODE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(grpc.status)
    .filter(([, v]) => typeof v === 'number')
    .map(([k, v]) => [
      v as number,
      k
        .toLowerCase()
        .split('_')
        .map((w) => (w === 'ok' ? 'OK' : w[0]!.toUpperCase() + w.slice(1)))
        .join(''),
    ]),
);

export class CriShimMetrics {
  readonly streams: StreamSessions;
  private readonly started: Counter<GrpcLabel>;
  private readonly handled: Counter<GrpcLabel | 'grpc_code'>;
  private readonly seconds: Histogram<GrpcLabel>;
  private readonly sessions: Counter<'kind' | 'transport'>;

  constructor(readonly registry: Registry = newRegistry()) {
    const registers = [registry];
    const labelNames: GrpcLabel[] = ['grpc_service', 'grpc_method', 'grpc_type'];
    this.started = new Counter({
      name: 'grpc_server_started_total',
      help: 'Total number of RPCs started on the server.',
      labelNames,
      registers,
    });
    this.handled = new Counter({
      name: 'grpc_server_handled_total',
      help: 'Total number of RPCs completed on the server, regardless of success or failure.',
      labelNames: [...labelNames, 'grpc_code'],
      registers,
    });
    this.seconds = new Histogram({
      name: 'grpc_server_handling_seconds',
      help: 'Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.',
      labelNames,
      registers,
    });
    this.sessions = new Counter({
      name: 'kexec_lab_streaming_sessions_total',
      help: 'Streaming sessions the runtime served, by kind (exec, attach, portforward) and transport',
      labelNames: ['kind', 'transport'],
      registers,
    });
    this.streams = new StreamSessions('cri-shim', registry);
  }

  /** Wraps every unary method of a service implementation with the grpc_server_* metrics. */
  instrument(impl: grpc.UntypedServiceImplementation): grpc.UntypedServiceImplementation {
    const out: grpc.UntypedServiceImplementation = {};
    for (const [method, fn] of Object.entries(impl)) {
      const labels = { grpc_service: SERVICE, grpc_method: method, grpc_type: 'unary' };
      const unary = fn as grpc.handleUnaryCall<unknown, unknown>;
      out[method] = ((call, callback) => {
        this.started.inc(labels);
        const end = this.seconds.startTimer(labels);
        unary(call, (err, ...rest) => {
          end();
          const code = err ? (err.code ?? grpc.status.UNKNOWN) : grpc.status.OK;
          this.handled.inc({ ...labels, grpc_code: CODE_NAMES[code] ?? String(code) });
          (callback as (...a: unknown[]) => void)(err, ...rest);
        });
      }) as grpc.handleUnaryCall<unknown, unknown>;
    }
    return out;
  }

  session(kind: string, transport: string): void {
    this.sessions.inc({ kind, transport });
  }
}
