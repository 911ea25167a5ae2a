/**
 * Serves one port-forward: for each requested port, dials it in the pod and splices the bytes
 * with the client's data stream; a failure to connect is written as text on the port's error
 * stream (kubectl prints it and keeps the listener going).
 *
 * Plays containerd's `sandbox_portforward_linux.go` (PortForward: dial inside the sandbox's
 * network namespace, copy both ways) behind kubelet `portforward/websocket.go`'s per-port loop and
 * its error text ("error forwarding port P to pod X, uid : …"). Under bubblewrap the dial happens
 * inside the pod's network namespace: `kexec-nsexec portforward` enters the pod init's netns,
 * connects to 127.0.0.1:PORT there and relays over its stdin/stdout (containerd does the same in
 * a goroutine locked to the netns; the old dockershim ran `nsenter -n socat`). A port only the
 * host listens on is therefore unreachable, as upstream; a `hostNetwork` pod's namespace is the
 * host's. Under `--isolation none` there is no pod namespace and the shim dials the HOST's
 * loopback (the documented unsafe mode).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Duplex } from 'node:stream';
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
  /** The pod's network namespace: its init's pid and the helper that enters it; none = host. */
  netns?: { pid: number; helper: string };
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
 * A TCP connection to 127.0.0.1:port inside a pod's network namespace, through the helper's
 * relay. Emits 'connect' once connected; an 'error' whose `code` is ECONNREFUSED etc. (from the
 * helper's strerror text) when the dial fails.
 */
class PodConnection extends Duplex {
  private readonly child: ChildProcess;

  constructor(netns: { pid: number; helper: string }, port: number) {
    // As a net.Socket: once the pod side has closed, ours ends too (the relay has exited).
    super({ allowHalfOpen: false });
    this.child = spawn(netns.helper, ['portforward', '--target', String(netns.pid), '--port', String(port)], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const { stdin, stdout, stderr } = this.child;
    stdin!.on('error', () => {});
    stdout!.on('data', (c: Buffer) => {
      if (!this.push(c)) stdout!.pause();
    });
    let text = '';
    stderr!.on('data', (c: Buffer) => {
      text += c.toString();
      if (text.length > 4096) text = text.slice(-4096);
      if (/^connected$/m.test(text)) {
        text = text.replace(/^connected\n?/m, '');
        this.emit('connect');
      }
    });
    this.child.once('error', (err) => this.destroy(err));
    // Once the relay has exited and its output is read: the end of the pod side, or why not.
    this.child.once('close', (code) => {
      if (this.destroyed) return;
      if (code === 0) {
        this.push(null);
        return;
      }
      const line = text.trim().split('\n').pop() ?? '';
      const m = /^(dial|read|write): (.*)$/.exec(line);
      const reason = (m?.[2] ?? (line || `relay exited with ${code}`)).replace(/^./, (c) => c.toLowerCase());
      const err = Object.assign(new Error(reason), {
        code: reason === 'connection refused' ? 'ECONNREFUSED' : undefined,
      }) as NodeJS.ErrnoException;
      this.destroy(err);
    });
  }

  override _read(): void {
    this.child.stdout?.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    // A relay that has gone (a failed dial, the pod side closed) reports why through its exit;
    // the write's EPIPE says nothing more.
    this.child.stdin!.write(chunk, () => cb());
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.child.stdin!.end();
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    cb(err);
  }
}

export function forwardPort(stream: PortStreams, target: ForwardTarget): Promise<void> {
  const { port } = stream;
  return new Promise<void>((resolve) => {
    const sock: Duplex = target.netns
      ? new PodConnection(target.netns, port)
      : net.connect({ host: POD_LOOPBACK, port });
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
