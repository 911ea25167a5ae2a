/**
 * A token-bucket throttle as a Transform stream, for the bytes of one direction of a splice.
 *
 * Mirrors the role of apimachinery's `MaxBytesPerSec` in `pkg/util/proxy/upgradeaware.go`, which
 * wraps both directions in a flowrate reader/writer (github.com/mxk/go-flowrate). We use a token
 * bucket instead of flowrate's sampling: tokens refill continuously at `bytesPerSec`, the bucket
 * holds at most `burstBytes`, and a chunk larger than the bucket is released in bucket-sized
 * slices. Waiting is a single timer per slice (no busy-waiting); while the transform waits it does
 * not call back, so the writable side fills and the upstream `pipe` pauses (backpressure).
 */
import { Transform, type TransformCallback } from 'node:stream';

export interface ThrottleOptions {
  bytesPerSec: number;
  /** Bucket size; defaults to a tenth of a second's worth, at least 1 KiB and at most 256 KiB. */
  burstBytes?: number;
}

export class Throttle extends Transform {
  private readonly rate: number;
  private readonly burst: number;
  private tokens: number;
  private last = performance.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(opts: ThrottleOptions) {
    super();
    if (!(opts.bytesPerSec > 0)) throw new RangeError('bytesPerSec must be positive');
    this.rate = opts.bytesPerSec;
    this.burst = Math.max(
      1,
      Math.floor(opts.burstBytes ?? Math.min(256 * 1024, Math.max(1024, this.rate / 10))),
    );
    this.tokens = this.burst;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.release(chunk, done);
  }

  override _destroy(err: Error | null, cb: (error: Error | null) => void): void {
    if (this.timer) clearTimeout(this.timer);
    cb(err);
  }

  private refill(): void {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }

  private release(chunk: Buffer, done: TransformCallback): void {
    if (this.destroyed) return;
    this.refill();
    const slice = Math.min(chunk.length, this.burst);
    if (this.tokens >= slice) {
      this.tokens -= slice;
      this.push(chunk.subarray(0, slice));
      if (slice === chunk.length) done();
      else this.release(chunk.subarray(slice), done);
      return;
    }
    const waitMs = Math.ceil(((slice - this.tokens) / this.rate) * 1000);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.release(chunk, done);
    }, waitMs);
  }
}
