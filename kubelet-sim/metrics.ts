/**
 * The kubelet-sim's metrics: its HTTP server's requests, the CRI calls the streaming endpoints make,
 * and the streams it splices to the runtime.
 *
 * Mirrors kubelet `pkg/kubelet/server/metrics/metrics.go` (`kubelet_http_requests_total`,
 * `kubelet_http_requests_duration_seconds`, `kubelet_http_inflight_requests`, labelled by method,
 * the path's first segment, server type and whether it is long-running) and
 * `pkg/kubelet/metrics/metrics.go` (`kubelet_runtime_operations_total`,
 * `kubelet_runtime_operations_errors_total`, `kubelet_runtime_operations_duration_seconds` by
 * operation type, which upstream's instrumented runtime service records for every CRI call).
 * Differences: only the streaming CRI calls (exec, attach, port_forward) are instrumented here.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { Counter, Gauge, Histogram, newRegistry, type Registry } from '../shared/metrics/registry.js';
import { StreamSessions } from '../shared/metrics/stream-sessions.js';

type HttpLabel = 'method' | 'path' | 'server_type' | 'long_running';

const LONG_RUNNING = new Set(['exec', 'attach', 'portForward', 'containerLogs']);

export class KubeletMetrics {
  readonly streams: StreamSessions;
  private readonly httpRequests: Counter<HttpLabel>;
  private readonly httpDuration: Histogram<HttpLabel>;
  private readonly httpInflight: Gauge<HttpLabel>;
  private readonly runtimeOps: Counter<'operation_type'>;
  private readonly runtimeErrors: Counter<'operation_type'>;
  private readonly runtimeDuration: Histogram<'operation_type'>;

  constructor(readonly registry: Registry = newRegistry()) {
    const registers = [registry];
    const labelNames: HttpLabel[] = ['method', 'path', 'server_type', 'long_running'];
    this.httpRequests = new Counter({
      name: 'kubelet_http_requests_total',
      help: 'Number of the http requests received since the server started',
      labelNames,
      registers,
    });
    this.httpDuration = new Histogram({
      name: 'kubelet_http_requests_duration_seconds',
      help: 'Duration in seconds to serve http requests',
      labelNames,
      registers,
    });
    this.httpInflight = new Gauge({
      name: 'kubelet_http_inflight_requests',
      help: 'Number of the inflight http requests',
      labelNames,
      registers,
    });
    this.runtimeOps = new Counter({
      name: 'kubelet_runtime_operations_total',
      help: 'Cumulative number of runtime operations by operation type.',
      labelNames: ['operation_type'],
      registers,
    });
    this.runtimeErrors = new Counter({
      name: 'kubelet_runtime_operations_errors_total',
      help: 'Cumulative number of runtime operation errors by operation type.',
      labelNames: ['operation_type'],
      registers,
    });
    this.runtimeDuration = new Histogram({
      name: 'kubelet_runtime_operations_duration_seconds',
      help: 'Duration in seconds of runtime operations. Broken down by operation type.',
      labelNames: ['operation_type'],
      registers,
    });
    this.streams = new StreamSessions('kubelet', registry);
  }

  /** Counts a request now and its duration when `done` (a response's or a socket's close) fires. */
  request(req: IncomingMessage, done: ServerResponse | Duplex): void {
    const segment = (req.url ?? '/').split('?')[0]!.split('/')[1] ?? '';
    const labels = {
      method: req.method ?? 'GET',
      path: segment,
      server_type: 'readwrite',
      long_running: String(LONG_RUNNING.has(segment)),
    };
    this.httpRequests.inc(labels);
    this.httpInflight.inc(labels);
    const end = this.httpDuration.startTimer(labels);
    (done as Duplex).once('close', () => {
      end();
      this.httpInflight.dec(labels);
    });
  }

  /** One CRI call, timed and counted (upstream recordOperation / recordError). */
  async runtimeOperation<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const labels = { operation_type: operation };
    this.runtimeOps.inc(labels);
    const end = this.runtimeDuration.startTimer(labels);
    try {
      return await call();
    } catch (err) {
      this.runtimeErrors.inc(labels);
      throw err;
    } finally {
      end();
    }
  }
}
