/**
 * One Prometheus registry per service, and the handler that serves it as `/metrics`.
 *
 * Mirrors k8s.io/component-base `metrics/legacyregistry` (each component's own registry, with the
 * process metrics beside its own) and the `/metrics` handler every component installs. A registry
 * per service rather than prom-client's global one, because tests run several services in one
 * process; the process and Node.js runtime metrics (prom-client's defaults, upstream's `process_*`
 * and `go_*`) are added only where a real process runs one service (`withProcessMetrics`).
 */
import type { ServerResponse } from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

export function newRegistry(opts: { withProcessMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (opts.withProcessMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** Writes the registry in the Prometheus text format. */
export async function serveMetrics(registry: Registry, res: ServerResponse): Promise<void> {
  const body = await registry.metrics();
  res.writeHead(200, { 'Content-Type': registry.contentType, 'Content-Length': Buffer.byteLength(body) });
  res.end(body);
}
