/**
 * A watch over HTTP: newline-delimited JSON events `{"type":"ADDED","object":{…}}` on a chunked
 * 200 response, until `timeoutSeconds`, the client leaving, or the client falling too far behind.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/watch.go` (serveWatch / WatchServer: one
 * encoded event per frame, flushed at once; the request timeout chosen from timeoutSeconds or the
 * server's minimum request timeout) and the cacher's treatment of slow watchers, which are
 * terminated rather than buffered without bound. A watch from a resourceVersion that is too old
 * answers 200 and one ERROR event carrying a 410 Status, as the watch cache does.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { StatusError, toStatus } from '../../../shared/status.js';
import type { WatchEvent } from '../../../shared/api/core-v1.js';
import type { Context, ListOptions, Watcher, WatchHandle } from '../../registry/rest.js';

export interface WatchLimits {
  /** Used when the client gives no timeoutSeconds (upstream: --min-request-timeout, 1800 s). */
  defaultTimeoutSeconds: number;
  /** Upper bound on any watch's duration. */
  maxTimeoutSeconds: number;
  /** A watcher whose unsent output exceeds this is closed (it can re-list and resume). */
  maxBufferedBytes: number;
}

export const DEFAULT_WATCH_LIMITS: WatchLimits = {
  defaultTimeoutSeconds: 1800,
  maxTimeoutSeconds: 3600,
  maxBufferedBytes: 4 * 1024 * 1024,
};

export async function serveWatch(
  storage: Watcher,
  ctx: Context,
  opts: ListOptions,
  timeoutParam: string | null,
  limits: WatchLimits,
  req: IncomingMessage,
  res: ServerResponse,
  /** Renders each event for the client (a Table per event for kubectl get -w). */
  render: (ev: WatchEvent) => WatchEvent = (ev) => ev,
  /**
   * `sendInitialEvents=true&allowWatchBookmarks=true` (the WatchList that client-go 1.32+ informers
   * and `kubectl wait` use): after the initial ADDED events, a BOOKMARK annotated
   * `k8s.io/initial-events-end` at this resourceVersion, or the client waits for it forever.
   */
  initialEventsEnd?: { kind: string; resourceVersion: () => Promise<string> },
): Promise<void> {
  let timeout = limits.defaultTimeoutSeconds;
  if (timeoutParam !== null) {
    timeout = Number(timeoutParam);
    if (!Number.isFinite(timeout) || timeout < 0)
      throw StatusError.of(400, `invalid timeoutSeconds: ${timeoutParam}`);
  }
  // 0 means "the server's default", as upstream.
  if (timeout === 0) timeout = limits.defaultTimeoutSeconds;
  timeout = Math.min(timeout, limits.maxTimeoutSeconds);

  let handle: WatchHandle | undefined;
  let done = false;
  const queued: WatchEvent[] = [];
  const finish = (): void => {
    if (done) return;
    done = true;
    clearTimeout(timer);
    handle?.stop();
    if (!res.writableEnded) res.end();
  };
  const send = (ev: WatchEvent): void => {
    if (done) return;
    if (!res.headersSent) {
      queued.push(ev);
      return;
    }
    res.write(JSON.stringify(ev.type === 'BOOKMARK' ? ev : render(ev)) + '\n');
    // An ERROR event is the last of a watch (upstream's watch server stops after it).
    if (ev.type === 'ERROR' || res.writableLength > limits.maxBufferedBytes) finish();
  };
  const timer = setTimeout(finish, timeout * 1000);
  res.once('close', finish);

  try {
    // Events delivered while the watch starts (the initial ADDED set) are queued until the head is out.
    handle = await storage.watch(ctx, opts, send);
  } catch (err) {
    if (!(err instanceof StatusError) || err.code !== 410) {
      clearTimeout(timer);
      done = true;
      throw err;
    }
    queued.push({ type: 'ERROR', object: toStatus(err) });
  }
  if (handle && initialEventsEnd) {
    const resourceVersion = await initialEventsEnd.resourceVersion();
    queued.push({
      type: 'BOOKMARK',
      object: {
        kind: initialEventsEnd.kind,
        apiVersion: 'v1',
        metadata: { resourceVersion, annotations: { 'k8s.io/initial-events-end': 'true' } },
      },
    });
  }
  if (done) {
    handle?.stop();
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
  req.socket.setNoDelay(true);
  res.flushHeaders();
  for (const ev of queued.splice(0)) send(ev);
  if (!handle) finish();
}
