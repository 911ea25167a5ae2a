/**
 * The two WebSocket chores every channel session here shares (remotecommand and port-forward):
 * sending one message with its write as the backpressure, and closing properly.
 */
import type { WebSocket } from 'ws';

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
