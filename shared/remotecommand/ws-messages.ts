/**
 * The WebSocket chores every channel session here shares (remotecommand and port-forward):
 * refusing a handshake we cannot serve, sending one message with its write as the
 * backpressure, and closing properly.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { failureStatus, writeStatusToSocket } from '../status.js';

/**
 * Refuses with a 400 Status (and closes) a request that is not a WebSocket upgrade or offers only
 * subprotocols outside `supported`; true when it did. No subprotocol at all is accepted (wsstream).
 */
export function refuseWebSocketUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  supported: readonly string[],
): boolean {
  let message: string | undefined;
  const offered = (req.headers['sec-websocket-protocol'] ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean);
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
    message = `unable to upgrade: expected a websocket upgrade, got ${JSON.stringify(req.headers.upgrade)}`;
  } else if (offered.length > 0 && !offered.some((p) => supported.includes(p))) {
    message = `unable to upgrade: unable to match client requested protocol ${JSON.stringify(offered)}`;
  }
  if (message) writeStatusToSocket(socket, failureStatus(400, message));
  return message !== undefined;
}

/** Sends one message; resolves once ws has written it to the socket (or at once when not open). */
export function sendMessage(ws: WebSocket, data: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState !== ws.OPEN) return resolve();
    ws.send(data, () => resolve());
  });
}

/**
 * Closes with `code` and resolves on 'close'. The socket is resumed first: paused by
 * backpressure, it would never read the peer's close frame and ws would wait out its 30 s timer.
 */
export function closeWebSocket(ws: WebSocket, code: number, reason: string): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  const done = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.resume();
  if (ws.readyState === ws.OPEN) ws.close(code, reason.slice(0, 120));
  else ws.terminate();
  return done;
}
