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
 * Differences: upstream rate-limits the translated stream with MaxBytesPerSec; we apply the
 * throttle only to spliced streams for now.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { TerminalSize } from '../../shared/remotecommand/codec.js';
import { internalErrorStatus } from '../../shared/remotecommand/exit-status.js';
import { ChannelClientError } from '../../shared/remotecommand/websocket-client.js';
import { acceptChannelSession, type StreamOptions } from '../../shared/remotecommand/websocket-server.js';
import { runSpdyClient } from '../../shared/spdy/remotecommand-client.js';
import { failureStatus, writeStatus, type Status } from '../../shared/status.js';
import type { ConnectHandler } from './rest.js';

export const V5_PROTOCOL = 'v5.channel.k8s.io';

/** wsstream.IsWebSocketRequestWithStreamCloseProtocol: a WebSocket upgrade offering v5. */
export function isWebSocketV5Request(req: IncomingMessage): boolean {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return offered.includes(V5_PROTOCOL);
}

export interface TranslatorConfig {
  /** The `Authorization` value the apiserver presents to kubelets. */
  authorization: () => string;
  /** Called once per translated session with how it ended (for logs). */
  onEnd?: (status: Status) => void;
}

export class StreamTranslatorHandler implements ConnectHandler {
  constructor(
    private readonly location: URL,
    private readonly streams: StreamOptions,
    private readonly cfg: TranslatorConfig,
  ) {}

  handle(_req: IncomingMessage, res: ServerResponse): void {
    writeStatus(res, failureStatus(400, 'Upgrade request required'));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const session = acceptChannelSession(req, socket, head, this.streams);
    if (!session) return;
    // The client leaving closes the kubelet connection, which kills the process there.
    const gone = new AbortController();
    session.once('close', () => gone.abort());
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
      headers: { Authorization: this.cfg.authorization() },
      stdin: session.stdin,
      stdout: session.stdout,
      stderr: session.stderr,
      tty: this.streams.tty,
      resize: (send) => {
        forward = send;
        if (latest) send(latest);
        return () => (forward = undefined);
      },
      signal: gone.signal,
    }).then(
      (result) => this.end(session, result.status),
      (err: unknown) => this.end(session, statusOf(err)),
    );
  }

  private end(session: { finish(s: Status): Promise<void> }, status: Status): void {
    this.cfg.onEnd?.(status);
    void session.finish(status);
  }
}

/** A kubelet refusal keeps its Status; anything else is an InternalError, as upstream. */
function statusOf(err: unknown): Status {
  if (err instanceof ChannelClientError) return err.status;
  return internalErrorStatus(`error translating stream: ${err instanceof Error ? err.message : String(err)}`);
}
