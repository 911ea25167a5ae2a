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
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { ChannelClientError } from '../../shared/remotecommand/websocket-client.js';
import { dialSpdy } from '../../shared/spdy/dial.js';
import { failureStatus, writeStatus, writeStatusToSocket } from '../../shared/status.js';
import type { ConnectHandler } from './rest.js';

export const TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io';
const PORT_FORWARD_PROTOCOL = 'portforward.k8s.io';
/** Above this many bytes queued towards the client, the kubelet side is paused. */
const MAX_BUFFERED = 1024 * 1024;

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
const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, clientTracking: false });
wss.on('headers', (headers, req) => {
  if (tunnels.has(req)) headers.push(`Sec-WebSocket-Protocol: ${TUNNEL_PROTOCOL}`);
});

export class TunnelingHandler implements ConnectHandler {
  constructor(
    private readonly location: URL,
    private readonly authorization: () => string,
  ) {}

  handle(_req: IncomingMessage, res: ServerResponse): void {
    writeStatus(res, failureStatus(400, 'Upgrade request required'));
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const gone = new AbortController();
    socket.once('close', () => gone.abort());
    dialSpdy(
      { url: this.location.href, headers: { Authorization: this.authorization() }, signal: gone.signal },
      [PORT_FORWARD_PROTOCOL],
    ).then(
      (kubelet) => {
        if (socket.destroyed) return void kubelet.socket.destroy();
        tunnels.add(req);
        delete req.headers['sec-websocket-protocol'];
        wss.handleUpgrade(req, socket, head, (ws) => splice(ws, kubelet.socket, kubelet.head));
      },
      (err: unknown) => {
        const status =
          err instanceof ChannelClientError
            ? err.status
            : failureStatus(
                503,
                `error dialing backend: ${err instanceof Error ? err.message : String(err)}`,
              );
        writeStatusToSocket(socket, status);
      },
    );
  }
}

/** Copies WebSocket message payloads to the kubelet and the kubelet's bytes back as messages. */
function splice(ws: WebSocket, kubelet: Duplex, head: Buffer): void {
  // The apiserver paused the client socket while it dialled; ws only reads a flowing one.
  ws.resume();
  const closeBoth = (): void => {
    kubelet.destroy();
    if (ws.readyState === ws.OPEN) ws.close(1000);
    else ws.terminate();
  };
  kubelet.on('error', closeBoth);
  kubelet.once('close', closeBoth);
  ws.on('error', closeBoth);
  ws.once('close', closeBoth);

  const toClient = (chunk: Buffer): void => {
    ws.send(chunk, { binary: true }, () => {
      if (ws.bufferedAmount < MAX_BUFFERED && kubelet.isPaused()) kubelet.resume();
    });
    if (ws.bufferedAmount >= MAX_BUFFERED) kubelet.pause();
  };
  if (head.length) toClient(head);
  kubelet.on('data', toClient);
  ws.on('message', (data: Buffer, isBinary: boolean) => {
    if (!isBinary) return closeBoth();
    if (!kubelet.write(data)) {
      ws.pause();
      kubelet.once('drain', () => ws.resume());
    }
  });
}
