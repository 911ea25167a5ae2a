/**
 * Copies bytes both ways between two upgraded connections, with backpressure in each direction
 * and an optional throttle, and closes both without losing what either side still has to deliver.
 *
 * Mirrors the copy loop at the end of apimachinery `UpgradeAwareHandler.tryUpgrade` (two copies)
 * and Go's `net/http/httputil/reverseproxy.go` switchProtocolCopier (a direction that reaches EOF
 * half-closes its destination with CloseWrite). Node's `pipe` gives backpressure (the source is
 * paused while the destination's buffer is full), so memory per direction stays at a few
 * socket/stream buffers whatever the speed difference between the two peers.
 *
 * Differences: upstream closes both connections as soon as one copy ends. Closing a socket whose
 * peer still sends makes the kernel answer with RST, and an RST throws away whatever the kernel
 * had not yet delivered or the peer had not yet read (kexec-lab issue 11: 3.4 MiB missing from a
 * 256 MiB exec). So, as nginx's `lingering_close`:
 * - a direction that ends passes the FIN on (`end()`, after every byte before it) and nothing
 *   is closed yet;
 * - a socket is destroyed only once it has ended both ways (its peer's FIN read, ours flushed),
 *   so nothing can arrive after the close to provoke an RST;
 * - a socket that fails is destroyed at once; the other one is half-closed and then read and
 *   its bytes dropped (there is nowhere to send them) until its peer closes too;
 * - once anything has ended, both sockets are destroyed after `lingerMs` without a byte read on
 *   either: a peer that never closes is cut off then, a slow one that keeps reading is not.
 */
import type { Duplex, Readable } from 'node:stream';
import { Throttle } from './throttle.js';

export interface SpliceStats {
  /** Bytes copied from the client to the backend. */
  up: number;
  /** Bytes copied from the backend to the client. */
  down: number;
  error?: Error;
}

export interface SpliceOptions {
  /** Rate limit applied to each direction separately; 0 or absent means unlimited. */
  maxBytesPerSec?: number;
  /**
   * Once one direction has ended (or a socket failed), how long both sockets may stay without a
   * byte read on either before they are destroyed (nginx's `lingering_time`); 30 s by default.
   */
  lingerMs?: number;
  onClose?: (stats: SpliceStats) => void;
}

/** nginx's default `lingering_time`. */
export const DEFAULT_LINGER_MS = 30_000;

const ignore = (): void => {};

export function splice(client: Duplex, backend: Duplex, opts: SpliceOptions = {}): void {
  const stats: SpliceStats = { up: 0, down: 0 };
  // A socket may still report an error (a reset) after the copies are done; without a listener
  // that would crash the process.
  client.on('error', ignore);
  backend.on('error', ignore);

  // Once anything has ended, both sockets go after lingerMs without a byte read on either.
  let linger: NodeJS.Timeout | undefined;
  const startLinger = (): void => {
    linger ??= setTimeout(() => {
      client.destroy();
      backend.destroy();
    }, opts.lingerMs ?? DEFAULT_LINGER_MS).unref();
  };
  let open = 2;
  const onSocketClose = (): void => {
    if (--open > 0) return;
    clearTimeout(linger);
    opts.onClose?.(stats);
  };

  const rate = opts.maxBytesPerSec ?? 0;
  const direction = (src: Duplex, dst: Duplex, count: (n: number) => void): void => {
    // `last` is what feeds dst: src itself, or the throttle src feeds.
    const last: Readable = rate > 0 ? src.pipe(new Throttle({ bytesPerSec: rate })) : src;
    let delivering = true;
    src.on('data', (chunk: Buffer) => {
      linger?.refresh();
      if (delivering) count(chunk.length);
    });
    last.pipe(dst, { end: false });
    const passEnd = (): void => {
      startLinger();
      if (!dst.destroyed && !dst.writableEnded) dst.end();
    };
    // src's peer sent FIN: pass it on once everything before it is through (CloseWrite).
    last.once('end', passEnd);
    // src is gone without a FIN (reset, destroyed): nothing more comes from it either.
    src.once('close', () => {
      if (src.readableEnded) return;
      if (last === src) passEnd();
      else (last as Throttle).end(); // what it still holds goes first, then passEnd
    });
    // dst takes nothing more (its side is closed, or it failed): what src still sends is read
    // and dropped, so that no close of ours meets bytes in flight.
    const stopDelivering = (): void => {
      if (!delivering) return;
      delivering = false;
      startLinger();
      last.unpipe(dst);
      if (last !== src) (last as Throttle).destroy();
      src.resume();
    };
    dst.once('finish', stopDelivering);
    dst.once('close', stopDelivering);
  };
  direction(client, backend, (n) => (stats.up += n));
  direction(backend, client, (n) => (stats.down += n));

  for (const s of [client, backend]) {
    s.once('close', onSocketClose);
    s.once('error', (err: Error) => {
      stats.error ??= err;
      s.destroy();
    });
    // Ended both ways: our FIN went out after everything, and the peer sends nothing more.
    const done = (): void => {
      if (s.readableEnded && s.writableFinished) s.destroy();
    };
    s.once('end', done);
    s.once('finish', done);
  }
}
