/**
 * The port-forward tunnel of kubectl 1.31+: a WebSocket whose subprotocol is
 * `SPDY/3.1+portforward.k8s.io` and whose binary messages carry the bytes of a SPDY connection.
 * The apiserver dials the kubelet with an ordinary SPDY upgrade (`portforward.k8s.io`) and then
 * copies bytes between the WebSocket's messages and the kubelet connection; it never parses the
 * SPDY frames inside.
 *
 * Mirrors kubernetes/apiserver `pkg/util/proxy/streamtunnel.go` (TunnelingHandler, the
 * tunnelingConnection that turns WebSocket messages into a byte stream) and client-go
 * `tools/portforward/tunneling_dialer.go`. Differences: upstream drives its UpgradeAwareHandler
 * through a hijacked fake response; we dial the kubelet first with the shared SPDY dialer, so a
 * refusal (or a redirect, CVE-2020-8559) is answered as a Status before any WebSocket exists, and
 * kubectl falls back to plain SPDY as it does against older servers.
 *
 * `--max-connection-bytes-per-sec` limits each direction of the kubelet connection, as upstream's
 * tunnel inherits it from the throttled UpgradeAwareHandler it wraps (flowrate on the backend
 * connection): the bytes pass through a Throttle (shared/proxy/throttle.ts) each way.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex, Readable, Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { WebSocket } from 'ws';
import { Throttle } from '../../../shared/proxy/throttle.js';
import { UpgradeRefusedError } from '../../../shared/httpstream/upgrade-refusal.js';
import { dialSpdy } from '../../../shared/spdy/dial.js';
import { closeWebSocket, webSocketServer } from '../../../shared/remotecommand/ws-messages.js';
import { failureStatus, writeStatus, writeStatusToSocket } from '../../../shared/status.js';
import { auditIdHeader, kubeletHeaders } from '../../kubelet-client.js';
import type { ConnectHandler } from '../../registry/rest.js';
import { errorMessage } from '../../../shared/logging.js';

export const TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';
const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
/** Above this many bytes queued towards the client, the kubelet side is paused. */
const MAX_BUFFERED = 1024 * 1024;
/**
 * Largest message the client may send (ws closes with 1009 beyond it, kexec-lab issue 11: ws's
 * 100 MiB default let six connections take the apiserver to 685 MiB). Upstream's gorilla reader
 * streams a message instead of buffering it, so it has no limit; kubectl's tunnelled SPDY sends
 * one frame per message, DATA frames of a 32 KiB copy buffer.
 */
const MAX_CLIENT_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A WebSocket upgrade offering the port-forward tunnel subprotocol. */
export function isTunnelRequest(req: IncomingMessage): boolean {
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
  return offered.includes(TUNNEL_PROTOCOL);
}

// `SPDY/3.1+portforward.k8s.io` is not an RFC 7230 token (the `/`), so ws refuses the header
// outright; the request's header is taken away before ws sees it and the chosen protocol is put
// into the 101 here (gorilla/websocket, which Kubernetes uses, does not check).
const tunnels = new WeakSet<IncomingMessage>();
const wss = webSocketServer(MAX_CLIENT_MESSAGE_BYTES);
wss.on('headers', (headers, req) => {
  if (tunnels.has(req)) headers.push(`Sec-WebSocket-Protocol: ${TUNNEL_PROTOCOL}`);
});

export interface TunnelConfig {
  /** The `Authorization` value the apiserver presents to kubelets (none with a client certificate). */
  authorization?: () => string;
  /** TLS settings for an https kubelet (CA, the apiserver's client certificate). */
  tls?: ConnectionOptions;
  /** `--max-connection-bytes-per-sec` for each direction; 0 or absent is unlimited. */
  maxBytesPerSec?: number;
  /** Told each tunnel's outcome, 101 or the refusal's code (apiserver_stream_tunnel_requests_total). */
  onTunnel?: (code: string) => void;
}

export class TunnelingHandler implements ConnectHandler {
  constructor(
    private readonly location: URL,
    private readonly cfg: TunnelConfig,
  ) {}

  handle(_req: IncomingMessage, res: ServerResponse): void {
    writeStatus(res, failureStatus(400, 'Upgrade request required'));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gone = new AbortController();
    socket.once('close', () => gone.abort());
    dialSpdy(
      {
        url: this.location.href,
        headers: { ...kubeletHeaders(this.cfg), ...auditIdHeader(req) },
        tls: this.cfg.tls,
        signal: gone.signal,
      },
      [PORT_FORWARD_PROTOCOL],
    ).then(
      (kubelet) => {
        if (socket.destroyed) return void kubelet.socket.destroy();
        tunnels.add(req);
        this.cfg.onTunnel?.('101');
        delete req.headers['sec-websocket-protocol'];
        const rate = this.cfg.maxBytesPerSec ?? 0;
        wss.handleUpgrade(req, socket, head, (ws) => splice(ws, kubelet.socket, kubelet.head, rate));
      },
      (err: unknown) => {
        const status =
          err instanceof UpgradeRefusedError
            ? err.status
            : failureStatus(503, `error dialing backend: ${errorMessage(err)}`);
        this.cfg.onTunnel?.(String(status.code ?? 500));
        writeStatusToSocket(socket, status);
      },
    );
  }
}

/**
 * Copies WebSocket message payloads to the kubelet and the kubelet's bytes back as messages, each
 * direction through a Throttle when `rate` is set.
 */
function splice(ws: WebSocket, kubelet: Duplex, head: Buffer, rate: number): void {
  const throttles: Throttle[] = [];
  const throttled = (): Throttle => {
    const t = new Throttle({ bytesPerSec: rate });
    throttles.push(t);
    return t;
  };
  // What the kubelet sends, as the client may have it (the bytes read past the 101 first), and
  // where the client's bytes go.
  let fromKubelet: Readable = kubelet;
  let toKubelet: Writable = kubelet;
  if (rate > 0) {
    const down = throttled();
    if (head.length) down.write(head);
    fromKubelet = kubelet.pipe(down);
    const up = throttled();
    up.pipe(kubelet);
    toKubelet = up;
  }

  // The apiserver paused the client socket while it dialled; ws only reads a flowing one.
  ws.resume();
  const closeBoth = (code = 1000, reason = ''): void => {
    for (const t of throttles) t.destroy();
    kubelet.destroy();
    void closeWebSocket(ws, code, reason);
  };
  kubelet.on('error', () => closeBoth());
  // An orderly end from the kubelet closes the tunnel once the throttle has passed everything on.
  fromKubelet.once('end', () => closeBoth());
  kubelet.once('close', () => {
    if (!kubelet.readableEnded) closeBoth();
  });
  // ws has sent its close frame (1009 …) and finishes closing on its own.
  ws.on('error', () => closeBoth());
  ws.once('close', () => closeBoth());

  const toClient = (chunk: Buffer): void => {
    ws.send(chunk, { binary: true }, () => {
      if (ws.bufferedAmount < MAX_BUFFERED && fromKubelet.isPaused()) fromKubelet.resume();
    });
    if (ws.bufferedAmount >= MAX_BUFFERED) fromKubelet.pause();
  };
  if (fromKubelet === kubelet && head.length) toClient(head);
  fromKubelet.on('data', toClient);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    // client-go's TunnelingConnection refuses any other message type ("invalid message type
    // received"); this is no channel protocol, so text is no stdin here.
    if (!isBinary) return closeBoth(1003, 'text message in a SPDY tunnel');
    if (!toKubelet.write(data)) {
      ws.pause();
      toKubelet.once('drain', () => ws.resume());
    }
  });
}
