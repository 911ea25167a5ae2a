/**
 * `GET /containerLogs/{ns}/{pod}/{container}`: a container's log as plain text, what the
 * apiserver's `pods/log` proxies to and `kubectl logs` prints.
 *
 * Mirrors kubelet `pkg/kubelet/server/server.go` (getContainerLogs: the query as PodLogOptions,
 * the `tail` alias, validation) and `pkg/kubelet/kuberuntime/kuberuntime_logs.go` with
 * `kubelet_pods.go` (validateContainerLogStatus: which container instance, `previous`), reading
 * the CRI log file named by ContainerStatus `log_path` through `shared/cri/logs.ts`.
 * Differences, on purpose:
 * - an invalid query is 400 BadRequest (upstream answers validation errors with 422);
 * - the container is found through the runtime's labels, not the kubelet's pod manager, so a
 *   restarted kubelet serves the logs of what still runs;
 * - `follow` ends when the container stops running (CRI ContainerStatus) or the client goes away;
 *   the reader stops watching the file as soon as the response closes.
 */
import fs from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { copyCriLog } from '../shared/cri/logs.js';
import { parseTimestamp } from '../shared/cri/log-format.js';
import { StatusError } from '../shared/status.js';
import type { RuntimeService } from './kuberuntime-manager.js';
import type { ContainerLogsRoute } from './routes.js';
import { findContainerInstances } from './runtime-lookup.js';

/** core/v1 PodLogOptions as the kubelet reads them from the query. */
export interface PodLogOptions {
  follow: boolean;
  previous: boolean;
  timestamps: boolean;
  tailLines?: number;
  sinceSeconds?: number;
  sinceTime?: Date;
  limitBytes?: number;
}

/** apimachinery's query → bool conversion: absent, `0` and `false` are false; anything else true. */
function queryBool(q: URLSearchParams, name: string): boolean {
  const v = q.get(name);
  return v !== null && v !== '0' && v.toLowerCase() !== 'false';
}

function queryInt(q: URLSearchParams, name: string): number | undefined {
  const v = q.get(name);
  if (v === null) return undefined;
  if (!/^-?\d{1,18}$/.test(v))
    throw StatusError.of(400, `invalid ${name} ${JSON.stringify(v)}: not an integer`);
  return Number(v);
}

/** The query as PodLogOptions, validated as upstream's ValidatePodLogOptions; 400 when invalid. */
export function podLogOptions(q: URLSearchParams): PodLogOptions {
  // Backwards compatibility (server.go): `tail=N` is tailLines, `tail=all` means no limit.
  const tail = q.get('tail');
  if (tail) {
    q = new URLSearchParams(q);
    if (tail === 'all') q.delete('tailLines');
    else q.set('tailLines', tail);
  }
  const opts: PodLogOptions = {
    follow: queryBool(q, 'follow'),
    previous: queryBool(q, 'previous'),
    timestamps: queryBool(q, 'timestamps'),
  };
  const tailLines = queryInt(q, 'tailLines');
  const sinceSeconds = queryInt(q, 'sinceSeconds');
  const limitBytes = queryInt(q, 'limitBytes');
  const sinceTime = q.get('sinceTime');
  if (tailLines !== undefined) {
    if (tailLines < 0) throw StatusError.of(400, 'tailLines: must be greater than or equal to 0');
    opts.tailLines = tailLines;
  }
  if (limitBytes !== undefined) {
    if (limitBytes < 1) throw StatusError.of(400, 'limitBytes: must be greater than 0');
    opts.limitBytes = limitBytes;
  }
  if (sinceSeconds !== undefined) {
    if (sinceSeconds < 1) throw StatusError.of(400, 'sinceSeconds: must be greater than 0');
    opts.sinceSeconds = sinceSeconds;
  }
  if (sinceTime !== null) {
    const ms = parseTimestamp(sinceTime);
    if (Number.isNaN(ms))
      throw StatusError.of(400, `invalid sinceTime ${JSON.stringify(sinceTime)}: not an RFC 3339 time`);
    opts.sinceTime = new Date(ms);
  }
  if (opts.sinceSeconds !== undefined && opts.sinceTime !== undefined) {
    throw StatusError.of(400, 'at most one of `sinceTime` or `sinceSeconds` may be specified');
  }
  return opts;
}

export interface ContainerLogsContext {
  runtime: RuntimeService;
  /** With `follow`: how often the reader looks at the file without a change event. Default 1000 ms. */
  pollIntervalMs?: number;
  /** Counts the responses being streamed (for close and tests). */
  active: Set<ServerResponse>;
}

/**
 * Finds the log and streams it into `res`. Errors before the first byte reject (the caller
 * writes them as a Status); once streaming, a failure destroys the response.
 */
export async function serveContainerLogs(
  req: IncomingMessage,
  res: ServerResponse,
  route: ContainerLogsRoute,
  ctx: ContainerLogsContext,
): Promise<void> {
  const opts = podLogOptions(new URL(req.url ?? '/', 'http://kubelet').searchParams);
  const { logPath, containerId } = await locateLog(ctx.runtime, route, opts.previous);
  try {
    await fs.promises.access(logPath, fs.constants.R_OK);
  } catch (err) {
    throw StatusError.of(
      400,
      `failed to open log file ${JSON.stringify(logPath)}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
    );
  }
  if (res.destroyed) return;
  const abort = new AbortController();
  res.once('close', () => abort.abort());
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.flushHeaders();
  ctx.active.add(res);
  try {
    await copyCriLog(
      logPath,
      {
        follow: opts.follow,
        tailLines: opts.tailLines,
        timestamps: opts.timestamps,
        sinceSeconds: opts.sinceSeconds,
        sinceTime: opts.sinceTime,
        limitBytes: opts.limitBytes,
        signal: abort.signal,
        isRunning: () => isRunning(ctx.runtime, containerId),
        pollIntervalMs: ctx.pollIntervalMs,
      },
      res,
    );
    res.end();
  } catch {
    res.destroy();
  } finally {
    ctx.active.delete(res);
  }
}

/** Which instance's log (validateContainerLogStatus): the newest, or with `previous` the one before. */
async function locateLog(
  runtime: RuntimeService,
  route: ContainerLogsRoute,
  previous: boolean,
): Promise<{ logPath: string; containerId: string }> {
  const { pod, container } = route;
  const instances = await findContainerInstances(
    runtime,
    route,
    () => `container ${JSON.stringify(container)} not found in pod ${JSON.stringify(pod)}`,
  );
  const target = previous ? instances[1] : instances[0];
  if (!target) {
    throw StatusError.of(
      400,
      `previous terminated container ${JSON.stringify(container)} in pod ${JSON.stringify(pod)} not found`,
    );
  }
  const { status } = await runtime.containerStatus({ container_id: target.id });
  if (!status || status.state === 'CONTAINER_CREATED') {
    throw StatusError.of(
      400,
      `container ${JSON.stringify(container)} in pod ${JSON.stringify(pod)} is waiting to start: ContainerCreating`,
    );
  }
  if (!status.log_path) {
    throw StatusError.of(
      400,
      `container ${JSON.stringify(container)} in pod ${JSON.stringify(pod)} has no log`,
    );
  }
  return { logPath: status.log_path, containerId: target.id };
}

async function isRunning(runtime: RuntimeService, id: string): Promise<boolean> {
  try {
    const { status } = await runtime.containerStatus({ container_id: id });
    return status?.state === 'CONTAINER_RUNNING';
  } catch {
    return false; // removed: nothing more will be written
  }
}
