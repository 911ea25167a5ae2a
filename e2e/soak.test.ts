/**
 * Leaks and memory, bounded versions (bench/soak.ts and bench/slow-reader.ts run the big ones):
 * - N exec sessions in a row and M at once through apiserver → kubelet-sim → cri-shim: afterwards
 *   every service's open file descriptors and child processes are back to where they started
 *   (a small slack for fds that come and go, e.g. a pooled keep-alive socket);
 * - a slow reader: the container writes as fast as it can while the client drains slowly; the
 *   producer must be paused by backpressure (it has written little more than the client read)
 *   and no hop's resident memory may grow without bound.
 * Needs `npm run build`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { startLab, type Lab } from '../lab/lab.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { holdings, labExec, rssBytes, type Holdings } from './support/faults.js';
import { pidsWhere } from '../shared/test-support/procfs.js';

const SERVICES = ['apiserver', 'kubelet-sim', 'cri-shim'] as const;
const FD_SLACK = 4;
const MiB = 1024 * 1024;
const PRODUCER = 'head -c 1073741824 /dev/zero';

let dir = '';
let lab: Lab;
const logs: string[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'soak-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: (l) => logs.push(l) });
  void lab.failed.then((f) => {
    throw new Error(`${f.service} died (${f.code ?? f.signal}):\n${logs.slice(-20).join('\n')}`);
  });
  // Warm up: the first exec opens what stays open (the kubelet's gRPC channel to the runtime …).
  expect((await labExec(lab, ['true'])).exitCode).toBe(0);
}, 60_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

function snapshot(): Record<string, Holdings> {
  return Object.fromEntries(SERVICES.map((s) => [s, holdings(lab.pids[s]!)]));
}

/** Waits (bounded) until every service holds no more than at `base`; returns the last snapshot. */
async function backTo(base: Record<string, Holdings>): Promise<Record<string, Holdings>> {
  let now = snapshot();
  await holdsWithin(() => {
    now = snapshot();
    return SERVICES.every(
      (s) =>
        now[s]!.fds <= base[s]!.fds + FD_SLACK &&
        now[s]!.children <= base[s]!.children &&
        now[s]!.descendants <= base[s]!.descendants,
    );
  }, 10_000);
  return now;
}

function expectBack(base: Record<string, Holdings>, now: Record<string, Holdings>): void {
  for (const s of SERVICES) {
    expect({ service: s, fds: now[s]!.fds <= base[s]!.fds + FD_SLACK }).toEqual({ service: s, fds: true });
    expect({ service: s, children: now[s]!.children }).toEqual({ service: s, children: base[s]!.children });
    expect({ service: s, descendants: now[s]!.descendants }).toEqual({
      service: s,
      descendants: base[s]!.descendants,
    });
  }
}

describe('resources after many sessions', () => {
  it('holds no more fds or processes after 100 sessions in a row', async () => {
    const base = snapshot();
    for (let i = 0; i < 100; i++) {
      const r = await labExec(lab, ['sh', '-c', `echo ${i}`]);
      expect({ i, code: r.exitCode, out: r.stdout }).toEqual({ i, code: 0, out: `${i}\n` });
    }
    expectBack(base, await backTo(base));
  }, 50_000);

  it('holds no more fds or processes after 50 sessions at once', async () => {
    const base = snapshot();
    const peak = { ...base };
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        labExec(lab, ['sh', '-c', `sleep 0.5; echo ${i}`]).then((r) => {
          for (const s of SERVICES) {
            const h = holdings(lab.pids[s]!);
            if (h.fds > peak[s]!.fds) peak[s] = h;
          }
          return r;
        }),
      ),
    );
    results.forEach((r, i) =>
      expect({ code: r.exitCode, out: r.stdout }).toEqual({ code: 0, out: `${i}\n` }),
    );
    // They were really concurrent: the runtime held many session sockets at some point.
    expect(peak['cri-shim']!.fds).toBeGreaterThan(base['cri-shim']!.fds + 10);
    expectBack(base, await backTo(base));
  }, 40_000);
});

describe('a slow reader', () => {
  it('pauses the producer by backpressure and keeps every hop’s memory bounded', async () => {
    const before = Object.fromEntries(SERVICES.map((s) => [s, rssBytes(lab.pids[s]!)]));
    const peak = { ...before };
    let read = 0;
    const ac = new AbortController();
    // 64 KiB every 50 ms: about 1.3 MiB/s, against a producer that could write GiB/s.
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(chunk: Buffer, _enc, cb) {
        read += chunk.length;
        if (!ac.signal.aborted)
          for (const s of SERVICES) peak[s] = Math.max(peak[s]!, rssBytes(lab.pids[s]!));
        setTimeout(cb, 50);
      },
    });
    const session = labExec(lab, ['sh', '-c', `${PRODUCER}; echo done >&2`], {
      stdout: slow,
      signal: ac.signal,
    }).catch((err: unknown) => err);
    // Read for a bounded while (3 s), then hang up: the 1 GiB is never meant to finish.
    await holdsWithin(() => read >= 4 * MiB, 3000);
    // What the producer has written so far (/proc/PID/io wchar): with backpressure, little more
    // than the client read plus what the pipes and socket buffers of three hops hold.
    const [head] = pidsWhere((a) => a.join(' ') === PRODUCER);
    expect(head).toBeDefined();
    const written = Number(/^wchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${head}/io`, 'utf8'))?.[1]);
    ac.abort();
    const outcome = await session;
    slow.destroy();
    expect(outcome).toBeInstanceOf(Error);
    expect(read).toBeGreaterThan(0);
    expect(written).toBeLessThan(read + 64 * MiB);
    for (const s of SERVICES) {
      expect({ service: s, grewMiB: Math.round((peak[s]! - before[s]!) / MiB) < 200 }).toEqual({
        service: s,
        grewMiB: true,
      });
    }
    // And the abandoned `head` is gone.
    expect(await holdsWithin(() => pidsWhere((a) => a.join(' ') === PRODUCER).length === 0, 5000)).toBe(true);
  }, 30_000);
});
