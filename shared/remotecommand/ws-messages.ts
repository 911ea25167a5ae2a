/**
 * The WebSocket chores every WebSocket server here shares (remotecommand, port-forward, the
 * apiserver's port-forward tunnel): the server's limits, refusing a handshake we cannot serve,
 * sending one message with its write as the backpressure, noticing a message over the limit in
 * time to answer it, and closing properly.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type ServerOptions, type WebSocket } from 'ws';
import { failureStatus, writeStatusToSocket } from '../status.js';

/**
 * Unanswered pings a client may have pending (our pongs not yet taken by the socket) before it is
 * cut off: a client that pings and never reads cannot grow our write buffer (ws's default, stated).
 */
const MAX_PENDING_PONGS = 60;
/** After our close frame, how long the client has to answer and close (ws's default, stated). */
const CLOSE_TIMEOUT_MS = 30_000;

/**
 * A `noServer` WebSocketServer with every limit explicit (kexec-lab issue 11: the tunnel took ws's
 * 100 MiB default): `maxPayload` per message (ws answers a bigger one with close 1009 before
 * buffering it), no compression, pongs bounded by MAX_PENDING_PONGS. Text messages must be UTF-8
 * (RFC 6455 §8.1, close 1007), which golang.org/x/net/websocket does not check; the sessions then
 * read them like binary ones.
 */
export function webSocketServer(
  maxPayload: number,
  handleProtocols?: ServerOptions['handleProtocols'],
): WebSocketServer {
  // ws 8.23 options @types/ws does not know yet.
  const bounds = { maxPendingAutoPongs: MAX_PENDING_PONGS, closeTimeout: CLOSE_TIMEOUT_MS };
  return new WebSocketServer({
    ...bounds,
    noServer: true,
    maxPayload,
    perMessageDeflate: false,
    clientTracking: false,
    autoPong: true,
    handleProtocols,
  });
}

/**
 * Calls `answer` when the client sends a message over the server's maxPayload, while the
 * WebSocket is still open: ws sends its close frame (1009) before it reports the error, too late
 * for a last message such as a Status. ws then stops reading the message and closes normally.
 */
export function onMessageTooBig(ws: WebSocket, answer: () => void): void {
  // ws keeps its frame parser private; its 'error' is emitted before ws's own handler runs.
  const receiver = (ws as unknown as { _receiver?: EventEmitter })._receiver;
  receiver?.prependListener('error', (err: Error & { code?: string }) => {
    if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' && ws.readyState === ws.OPEN) answer();
  });
}

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
 * A WebSocket already closing finishes its close handshake (ws bounds it by its close timeout):
 * terminating it could reset the connection before the close frame, or a Status, is delivered.
 */
export function closeWebSocket(ws: WebSocket, code: number, reason: string): Promise<void> {
  if (ws.readyState === ws.CLOSED) return Promise.resolve();
  const done = new Promise<void>((resolve) => ws.once('close', () => resolve()));
  ws.resume();
  if (ws.readyState === ws.OPEN) ws.close(code, reason.slice(0, 120));
  else if (ws.readyState === ws.CONNECTING) ws.terminate();
  return done;
}
