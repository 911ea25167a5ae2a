/**
 * Unit tests of the Throttle transform (token bucket): argument checks, byte-exact output, slicing of
 * chunks larger than the bucket, timer cleanup on destroy, and backpressure towards the writer.
 * Where the schedule matters, time is faked (timers and `performance.now`) so it is exact; ticks and
 * immediates stay real because streams rely on them.
 */
import { randomBytes } from 'node:crypto';
import { jest } from '@jest/globals';
import { Throttle } from './throttle.js';

const REAL = ['nextTick', 'queueMicrotask', 'setImmediate', 'clearImmediate'] as const;

/** Lets stream callbacks scheduled on ticks and immediates run. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Collects what the throttle emits, with the (fake) time of each chunk. */
function collect(t: Throttle): { chunks: Buffer[]; times: number[]; total: () => number } {
  const chunks: Buffer[] = [];
  const times: number[] = [];
  t.on('data', (c: Buffer) => {
    chunks.push(c);
    times.push(performance.now());
  });
  return { chunks, times, total: () => chunks.reduce((n, c) => n + c.length, 0) };
}

afterEach(() => {
  jest.useRealTimers();
});

describe('Throttle', () => {
  it.each([0, -1, NaN, -Infinity])('rejects bytesPerSec %p', (rate) => {
    expect(() => new Throttle({ bytesPerSec: rate })).toThrow(RangeError);
  });

  it('emits exactly the bytes written, in order, whatever the chunk sizes', async () => {
    const input = randomBytes(300_000);
    // 1 MB/s with a 4 KiB bucket: ~0.3 s of real waiting, spread over many slices.
    const t = new Throttle({ bytesPerSec: 1_000_000, burstBytes: 4096 });
    const out = collect(t);
    const ended = new Promise((resolve) => t.on('end', resolve));
    let at = 0;
    for (const size of [1, 7, 4096, 4097, 65_536, 100, 100_000]) {
      t.write(input.subarray(at, at + size));
      at += size;
    }
    t.end(input.subarray(at));
    await ended;
    expect(Buffer.concat(out.chunks).equals(input)).toBe(true);
    for (const c of out.chunks) expect(c.length).toBeLessThanOrEqual(4096);
  });

  it('releases a chunk larger than the bucket in bucket-sized slices, one per refill', async () => {
    jest.useFakeTimers({ doNotFake: [...REAL] });
    const t = new Throttle({ bytesPerSec: 1000, burstBytes: 1000 });
    const start = performance.now();
    const out = collect(t);
    let written = false;
    t.write(Buffer.alloc(3500, 7), () => (written = true));
    await settle();
    // The full bucket lets the first slice out at once; the rest waits for tokens.
    expect(out.chunks.map((c) => c.length)).toEqual([1000]);
    // Each later slice is due once its tokens have refilled: 1000 ms for a full one, 500 ms for the tail.
    for (const [waitMs, want] of [
      [1000, [1000, 1000]],
      [1000, [1000, 1000, 1000]],
      [500, [1000, 1000, 1000, 500]],
    ] as const) {
      jest.advanceTimersByTime(waitMs - 1);
      await settle();
      expect(out.chunks).toHaveLength(want.length - 1);
      jest.advanceTimersByTime(1);
      await settle();
      expect(out.chunks.map((c) => c.length)).toEqual(want);
    }
    // The last 500 bytes needed half a second, not a full bucket's worth.
    expect(out.times.map((ms) => ms - start)).toEqual([0, 1000, 2000, 2500]);
    expect(written).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('refills continuously but never beyond the bucket', async () => {
    jest.useFakeTimers({ doNotFake: [...REAL] });
    const t = new Throttle({ bytesPerSec: 1000, burstBytes: 500 });
    const out = collect(t);
    t.write(Buffer.alloc(500));
    await settle();
    expect(out.total()).toBe(500);
    // Ten idle seconds still only buy one bucket.
    jest.advanceTimersByTime(10_000);
    t.write(Buffer.alloc(1000));
    await settle();
    expect(out.total()).toBe(1000);
    jest.advanceTimersByTime(499);
    await settle();
    expect(out.total()).toBe(1000);
    jest.advanceTimersByTime(1);
    await settle();
    expect(out.total()).toBe(1500);
  });

  it('clears its timer when destroyed while waiting, and emits nothing more', async () => {
    jest.useFakeTimers({ doNotFake: [...REAL] });
    const t = new Throttle({ bytesPerSec: 100, burstBytes: 100 });
    const out = collect(t);
    const errors: Error[] = [];
    t.on('error', (e) => errors.push(e));
    t.write(Buffer.alloc(1000));
    await settle();
    expect(out.total()).toBe(100);
    expect(jest.getTimerCount()).toBe(1);
    t.destroy();
    await settle();
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(60_000);
    await settle();
    expect(out.total()).toBe(100);
    expect(errors).toEqual([]);
    expect(t.destroyed).toBe(true);
  });

  it('clears the real timer it is waiting on when destroyed', async () => {
    // Spies rather than a count of the process's timers, which other suites' leftovers can change.
    const set = jest.spyOn(globalThis, 'setTimeout');
    const clear = jest.spyOn(globalThis, 'clearTimeout');
    try {
      // One byte per second with a one-byte bucket: the second byte alone waits a second.
      const t = new Throttle({ bytesPerSec: 1, burstBytes: 1 });
      t.resume();
      t.write(Buffer.from('ab'));
      await settle();
      const waits = set.mock.calls.flatMap(([, ms], i) => (ms === 1000 ? [set.mock.results[i]!.value] : []));
      expect(waits).toHaveLength(1);
      const cleared = (): unknown[] => clear.mock.calls.map(([handle]) => handle);
      expect(cleared()).not.toContain(waits[0]);
      t.destroy();
      await settle();
      expect(cleared()).toContain(waits[0]);
    } finally {
      set.mockRestore();
      clear.mockRestore();
    }
  });

  it('applies backpressure: while it waits, the writer sees write() return false, then drain', async () => {
    jest.useFakeTimers({ doNotFake: [...REAL] });
    const t = new Throttle({ bytesPerSec: 10_000, burstBytes: 1000 });
    const out = collect(t); // flowing: the readable side is never what holds things up
    const chunk = Buffer.alloc(1000);
    let accepted = 0;
    let ok = true;
    for (let i = 0; i < 1000 && ok; i++) {
      ok = t.write(chunk);
      accepted += chunk.length;
    }
    expect(ok).toBe(false);
    // Refused once about a writable buffer's worth was queued behind the one chunk in progress.
    expect(accepted).toBeLessThanOrEqual(t.writableHighWaterMark + 2 * chunk.length);
    await settle();
    expect(out.total()).toBe(1000);
    let drained = false;
    t.once('drain', () => (drained = true));
    // The queue empties at 10 kB/s: not after half of that time, then drain (loop bounded to 10 s).
    const queued = accepted - out.total();
    jest.advanceTimersByTime(((queued / 10_000) * 1000) / 2);
    await settle();
    expect(drained).toBe(false);
    expect(out.total()).toBeLessThan(accepted);
    for (let i = 0; i < 100 && !drained; i++) {
      jest.advanceTimersByTime(100);
      await settle();
    }
    expect(drained).toBe(true);
    expect(out.total()).toBe(accepted);
  });
});
