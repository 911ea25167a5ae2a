/**
 * Copies bytes both ways between two upgraded connections, with backpressure in each direction
 * and an optional throttle, and closes both when either direction ends or fails.
 *
 * Mirrors the copy loop at the end of apimachinery `UpgradeAwareHandler.tryUpgrade`: two copies,
 * and as soon as one finishes both connections are closed. Node's `pipe` gives backpressure
 * (the source is paused while the destination's buffer is full), so memory per direction stays at
 * a few socket/stream buffers whatever the speed difference between the two peers.
 */
import type { Duplex } from 'node:stream';
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
  /** Time allowed, once one direction has ended, for the other socket to flush before it is destroyed. */
  closeGraceMs?: number;
  onClose?: (stats: SpliceStats) => void;
}

const ignore = (): void => {};

export function splice(client: Duplex, backend: Duplex, opts: SpliceOptions = {}): void {
  const stats: SpliceStats = { up: 0, down: 0 };
  // A socket may still report an error (a reset) after the copies are done; without a listener
  // that would crash the process.
  client.on('error', ignore);
  backend.on('error', ignore);

  let closing = false;
  let open = 2;
  const onSocketClose = (): void => {
    if (--open === 0) opts.onClose?.(stats);
  };
  client.once('close', onSocketClose);
  backend.once('close', onSocketClose);

  const closeBoth = (err?: Error | null): void => {
    if (err && !stats.error) stats.error = err;
    if (closing) return;
    closing = true;
    for (const s of [client, backend]) {
      if (err) {
        s.destroy();
        continue;
      }
      s.end(() => s.destroy());
      setTimeout(() => s.destroy(), opts.closeGraceMs ?? 5000).unref();
    }
  };

  // pipe() rather than pipeline(): it gives the same backpressure, and pipeline's end-of-stream
  // watchers (two per stream and pipeline) would push each socket past Node's listener warning.
  const direction = (src: Duplex, dst: Duplex, count: (n: number) => void): void => {
    src.on('data', (chunk: Buffer) => count(chunk.length));
    const rate = opts.maxBytesPerSec ?? 0;
    const last = rate > 0 ? src.pipe(new Throttle({ bytesPerSec: rate })) : src;
    last.pipe(dst, { end: false });
    last.once('end', () => closeBoth());
    last.once('error', closeBoth);
    src.once('error', closeBoth);
    // A source destroyed without an end (a reset) closes both; an orderly end waits for `last`
    // to drain, which matters when a throttle still holds bytes.
    src.once('close', () => {
      if (!src.readableEnded) closeBoth();
    });
  };
  direction(client, backend, (n) => (stats.up += n));
  direction(backend, client, (n) => (stats.down += n));
}
