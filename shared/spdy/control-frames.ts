/**
 * The control-frame budget of one SPDY connection: how many control frames it has queued (PING
 * echoes, RST_STREAM answers, SYN_REPLYs …) that its socket has not taken yet.
 *
 * Mirrors golang.org/x/net `http2/server.go` (`queuedControlFrames`, `maxQueuedControlFrames`: the
 * fix for CVE-2019-9512 "ping flood" and CVE-2019-9515 "settings flood"); moby/spdystream has no
 * bound at all (kexec-lab issue 11: 69 MiB of PINGs took a cri-shim to 1.5 GiB).
 *
 * Differences: Go counts every control frame not yet written and closes the connection past
 * 10,000. Here a frame counts only while the socket is full (written frames the socket took at
 * once never count), the connection stops reading past `highWaterMark` (a peer that does not read
 * our answers gets no more of them), and the peer is flooding (GOAWAY) past `max`, or when it stays
 * past the high-water mark for `graceMs`: a client pinging every 5 s needs minutes of not reading
 * to get there.
 */
import { SpdyError } from './errors.js';

export interface ControlFrameLimits {
  /** Queued control frames beyond which the connection is no longer read. */
  highWaterMark: number;
  /** Queued control frames beyond which the peer is flooding. */
  max: number;
  /** How long the peer may keep more than highWaterMark queued before it counts as flooding. */
  graceMs: number;
}

export const DEFAULT_CONTROL_FRAME_LIMITS: Readonly<ControlFrameLimits> = {
  highWaterMark: 64,
  max: 1024,
  graceMs: 5_000,
};

export class ControlFrameBudget {
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly limits: ControlFrameLimits,
    /** The peer floods: the connection should GOAWAY and close. */
    private readonly onFlood: (err: SpdyError) => void,
    /** `behind` changed: the connection should pause or resume reading. */
    private readonly onBehindChange: () => void,
  ) {}

  /** True while more than highWaterMark are queued: stop reading the peer. */
  get behind(): boolean {
    return this.queued > this.limits.highWaterMark;
  }

  /** A control frame was queued; false when it is one too many (onFlood has been called). */
  add(): boolean {
    if (++this.queued > this.limits.max) {
      this.onFlood(flood(`more than ${this.limits.max}`));
      return false;
    }
    if (this.queued === this.limits.highWaterMark + 1) this.changed();
    return true;
  }

  /** The socket took one. */
  taken(): void {
    if (--this.queued === this.limits.highWaterMark) this.changed();
  }

  /** The connection is gone: nothing is queued any more. */
  clear(): void {
    this.queued = 0;
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private changed(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.behind) {
      const { graceMs, highWaterMark } = this.limits;
      this.timer = setTimeout(
        () => this.onFlood(flood(`for ${graceMs} ms more than ${highWaterMark}`)),
        graceMs,
      );
      this.timer.unref?.();
    }
    this.onBehindChange();
  }
}

function flood(howMany: string): SpdyError {
  return new SpdyError(
    'TOO_MANY_CONTROL_FRAMES',
    `${howMany} control frames queued for a peer that does not read them`,
  );
}
