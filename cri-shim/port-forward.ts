/**
 * Serves one port-forward: for each requested port, dials it in the pod and splices the bytes
 * with the client's data stream; a failure to connect is written as text on the port's error
 * stream (kubectl prints it and keeps the listener going).
 *
 * Plays containerd's `sandbox_portforward_linux.go` (PortForward: dial inside the sandbox's
 * network namespace, copy both ways) behind kubelet `portforward/websocket.go`'s per-port loop and
 * its error text ("error forwarding port P to pod X, uid : …").
 * Difference, on purpose: our sandboxes have no network namespace of their own: every container
 * shares the HOST's network, so "the pod's loopback" is the host's 127.0.0.1 and the shim dials
 * there. Anything listening on that host port is reachable, whether a container of this pod
 * opened it or not; that is the lab's trade-off for running without root.
 */
import net from 'node:net';
import type { PortStreams } from '../shared/portforward/websocket-server.js';
import { type Logger } from '../shared/logging.js';

export const POD_LOOPBACK = '127.0.0.1';
/**
 * Once the client has sent everything (SPDY FIN, WebSocket gone), how long the target has to
 * answer and close before the connection is cut (containerd waits 1 s, like socat).
 */
export const CLOSE_GRACE_MS = 1000;

export interface ForwardTarget {
  sandboxId: string;
  log: Logger;
}

/** Go's words for the usual dial failures, so messages read like upstream's. */
function dialError(err: NodeJS.ErrnoException, port: number): string {
  const reason =
    err.code === 'ECONNREFUSED'
      ? 'connection refused'
      : err.code === 'ETIMEDOUT'
        ? 'connection timed out'
        : err.code === 'ECONNRESET'
          ? 'connection reset by peer'
          : err.message;
  return `dial tcp4 ${POD_LOOPBACK}:${port}: connect: ${reason}`;
}

/**
 * Forwards one port for one client connection; resolves when the target connection is closed
 * (ended by either side) or could not be made. Ending the streams is the caller's: the
 * WebSocket session closes when all its ports are done, a SPDY pair gets FINs.
 */
export function forwardPort(stream: PortStreams, target: ForwardTarget): Promise<void> {
  const { port } = stream;
  return new Promise<void>((resolve) => {
    const sock = net.connect({ host: POD_LOOPBACK, port });
    let connected = false;
    sock.once('connect', () => {
      connected = true;
      target.log(`port-forward ${target.sandboxId.slice(0, 12)}: connected to ${POD_LOOPBACK}:${port}`);
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const detail = connected
        ? `read/write on ${POD_LOOPBACK}:${port}: ${err.message}`
        : dialError(err, port);
      const msg = `error forwarding port ${port} to pod ${target.sandboxId}, uid : ${detail}`;
      target.log(`port-forward: ${msg}`);
      if (!stream.error.destroyed) stream.error.write(msg);
    });
    let grace: NodeJS.Timeout | undefined;
    sock.once('close', () => {
      clearTimeout(grace);
      stream.data.unpipe(sock);
      resolve();
    });
    stream.data.once('end', () => (grace = setTimeout(() => sock.destroy(), CLOSE_GRACE_MS)));
    // Client bytes written before the connection is up wait in the socket's buffer.
    stream.data.pipe(sock);
    sock.pipe(stream.data);
    // The client went away: nothing more will come or can go.
    stream.data.once('close', () => sock.destroy());
  });
}
