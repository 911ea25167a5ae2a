/**
 * StreamTranslator: the apiserver ends the client's WebSocket (v5.channel.k8s.io) itself and
 * speaks SPDY/3.1 to the kubelet, so that runtimes which only serve SPDY (every real CRI runtime)
 * still work with WebSocket clients.
 *
 * Mirrors kubernetes/apiserver `pkg/util/proxy/streamtranslator.go` and the
 * `translatingHandler` in kubernetes `pkg/registry/core/pod/rest/subresources.go` (feature gate
 * TranslateStreamCloseWebsocketRequests, on by default since 1.30): only a WebSocket upgrade that
 * offers v5 is translated; everything else (SPDY, older WebSocket protocols) is spliced by the
 * UpgradeAwareHandler as before. This is the one place the apiserver reads stream bytes.
 *
 * `--max-connection-bytes-per-sec` applies here too, as upstream's `MaxBytesPerSec` does: stdin,
 * stdout and stderr each pass through their own Throttle (shared/proxy/throttle.ts), as
 * streamtranslator.go wraps them in flowrate readers/writers (so two output streams both at the
 * limit may together carry twice the rate, a limitation upstream names). The exit Status is sent
 * only once the throttled output has been delivered.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { finished } from 'node:stream/promises';
import { Throttle } from '../../../shared/proxy/throttle.js';
import type { TerminalSize } from '../../../shared/remotecommand/codec.js';
import { internalErrorStatus } from '../../../shared/remotecommand/exit-status.js';
import { UpgradeRefusedError } from '../../../shared/httpstream/upgrade-refusal.js';
import {
  acceptChannelSession,
  type RemoteCommandOptions,
} from '../../../shared/remotecommand/websocket-server.js';
import { runSpdyClient } from '../../../shared/remotecommand/spdy-client.js';
import { failureStatus, writeStatus, type Status } from '../../../shared/status.js';
import { auditIdHeader, kubeletHeaders } from '../../kubelet-client.js';
import type { StreamInfo, StreamSessions } from '../../../shared/metrics/stream-sessions.js';
import type { ConnectHandler } from '../../registry/rest.js';
import { errorMessage } from '../../../shared/logging.js';

export const V5_PROTOCOL = 'v5.channel.k8s.io';

/** wsstream.IsWebSocketRequestWithStreamCloseProtocol: a WebSocket upgrade offering v5. */
export function isWebSocketV5Request(req: IncomingMessage): boolean {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return offered.includes(V5_PROTOCOL);
}

export interface TranslatorConfig {
  /** The `Authorization` value the apiserver presents to kubelets (none with a client certificate). */
  authorization?: () => string;
  /** TLS settings for an https kubelet (CA, the apiserver's client certificate). */
  tls?: ConnectionOptions;
  /** `--max-connection-bytes-per-sec` for each stream of the session; 0 or absent is unlimited. */
  maxBytesPerSec?: number;
  /** Called once per translated session with how it ended (for logs and metrics). */
  onEnd?: (status: Status) => void;
  /** Counts the session's bytes on the client connection and lists it for /debug/sessions. */
  streams?: StreamSessions;
  stream?: StreamInfo;
}

export class StreamTranslatorHandler implements ConnectHandler {
  constructor(
    private readonly location: URL,
    private readonly streams: RemoteCommandOptions,
    private readonly cfg: TranslatorConfig,
  ) {}

  handle(_req: IncomingMessage, res: ServerResponse): void {
    writeStatus(res, failureStatus(400, 'Upgrade request required'));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const session = acceptChannelSession(req, socket, head, this.streams);
    if (!session) return;
    const counted = this.cfg.streams?.open({ ...this.cfg.stream!, protocol: V5_PROTOCOL }, socket);
    if (counted) session.once('close', counted);
    const limit = new StreamLimits(this.cfg.maxBytesPerSec ?? 0);
    // The client leaving closes the kubelet connection, which kills the process there.
    const gone = new AbortController();
    session.once('close', () => {
      gone.abort();
      limit.destroy();
    });
    // Clients send their terminal size right after the upgrade, long before the SPDY resize
    // stream to the kubelet exists: keep the latest size and hand it over then (k8s #47990).
    let latest: TerminalSize | undefined;
    let forward: ((size: TerminalSize) => void) | undefined;
    session.on('resize', (size) => {
      latest = size;
      forward?.(size);
    });
    runSpdyClient({
      url: this.location.href,
      headers: { ...kubeletHeaders(this.cfg), ...auditIdHeader(req) },
      tls: this.cfg.tls,
      stdin: limit.reader(session.stdin),
      stdout: limit.writer(session.stdout),
      stderr: limit.writer(session.stderr),
      tty: this.streams.tty,
      resize: (send) => {
        forward = send;
        if (latest) send(latest);
        return () => (forward = undefined);
      },
      signal: gone.signal,
      // The Status goes to the client while the kubelet connection closes behind it.
      resultBeforeClose: true,
    }).then(
      // The kubelet's output has ended; what the throttles still hold goes out before the Status.
      async (result) => {
        await limit.flush();
        this.end(session, result.status);
      },
      (err: unknown) => {
        limit.destroy();
        this.end(session, statusOf(err));
      },
    );
  }

  private end(session: { finish(s: Status): Promise<void> }, status: Status): void {
    this.cfg.onEnd?.(status);
    void session.finish(status);
  }
}

/**
 * The throttles of one session, one per stream (upstream: flowrate.NewReader on stdin,
 * flowrate.NewWriter on stdout and stderr). With no limit the streams are passed through as they are.
 */
class StreamLimits {
  private readonly outputs: Throttle[] = [];
  private readonly all: Throttle[] = [];

  constructor(private readonly bytesPerSec: number) {}

  /** The client's stdin as the kubelet should get it. */
  reader(src: Readable | null): Readable | null {
    if (!src || !(this.bytesPerSec > 0)) return src;
    const t = this.throttle();
    return src.pipe(t);
  }

  /** Where the kubelet's output is written so that it reaches `dst` at the limit. */
  writer(dst: Writable | null): Writable | null {
    if (!dst || !(this.bytesPerSec > 0)) return dst;
    const t = this.throttle();
    t.pipe(dst, { end: false });
    this.outputs.push(t);
    return t;
  }

  /** Ends the output throttles and resolves once they have handed everything on (or died). */
  async flush(): Promise<void> {
    await Promise.all(
      this.outputs.map((t) => {
        const done = finished(t, { writable: false }).catch(() => {});
        t.end();
        return done;
      }),
    );
  }

  /** Stops every throttle (and its timer) at once. */
  destroy(): void {
    for (const t of this.all) t.destroy();
  }

  private throttle(): Throttle {
    const t = new Throttle({ bytesPerSec: this.bytesPerSec });
    this.all.push(t);
    return t;
  }
}

/** A kubelet refusal keeps its Status; anything else is an InternalError, as upstream. */
function statusOf(err: unknown): Status {
  if (err instanceof UpgradeRefusedError) return err.status;
  return internalErrorStatus(`error translating stream: ${errorMessage(err)}`);
}
