/**
 * Test helpers for flood drills against a running lab: an attacker that upgrades an exec or a
 * port-forward to SPDY/3.1 (or opens a WebSocket) and then writes one kind of frame as fast as
 * the connection takes it, never reading an answer; and the RSS of the lab's own service
 * processes (/proc/PID/status VmRSS), sampled while it does.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import { dialSpdy } from '../../shared/spdy/dial.js';
import { controlFrame, dataFrame, FrameEncoder } from '../../shared/spdy/frames.js';
import { toSpdyHeaders } from '../../shared/spdy/header-block.js';

export const MiB = 1024 * 1024;

/** Resident set size of a process, in bytes. */
export function rss(pid: number): number {
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Number(kb ?? 0) * 1024;
}

/** Samples the RSS of `pids` every 50 ms until stopped; `peak` is the most seen for each. */
export function watchRss(pids: Record<string, number>): { peak: Record<string, number>; stop: () => void } {
  const peak = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, rss(pid)]));
  const sample = (): void => {
    for (const [name, pid] of Object.entries(pids)) peak[name] = Math.max(peak[name]!, rss(pid));
  };
  const timer = setInterval(sample, 50);
  return {
    peak,
    stop: () => {
      clearInterval(timer);
      sample();
    },
  };
}

const u32 = (n: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
};

/** One frame of each flood, the i-th of its burst. */
export const SPDY_FLOODS = {
  PING: (i: number) => controlFrame(6, 0, u32(2 * i + 1)),
  SETTINGS: () => controlFrame(4, 0, Buffer.concat([u32(1), u32(4), u32(100)])),
  RST_STREAM: (i: number) => controlFrame(3, 0, Buffer.concat([u32(2 * (i % 1_000_000) + 101), u32(5)])),
  'unknown-stream DATA': (i: number) => dataFrame(2 * (i % 1_000_000) + 101, Buffer.alloc(0), false),
} as const;
export type SpdyFlood = keyof typeof SPDY_FLOODS;

export interface FloodTarget {
  url: string;
  headers: Record<string, string>;
  tls?: ConnectionOptions;
}

export interface FloodResult {
  /** Bytes written before the limits (or the connection) stopped the flood. */
  offered: number;
  /** The attacker's socket, unread until now: see `readToEnd`. */
  socket: Duplex;
}

/**
 * Upgrades `target` to SPDY/3.1 offering `protocol`, opens `streams` (one SYN_STREAM each, with
 * these `streamType` headers), then writes frames for at most `seconds` or `maxBytes`, never
 * reading.
 */
export async function spdyFlood(
  target: FloodTarget,
  protocol: string,
  streams: Record<string, string>[],
  frame: (i: number) => Buffer,
  limits: { seconds: number; maxBytes: number },
): Promise<FloodResult> {
  const { socket } = await dialSpdy({ ...target, timeoutMs: 10_000 }, [protocol]);
  const enc = new FrameEncoder();
  for (const [i, headers] of streams.entries()) {
    socket.write(
      await enc.encode({
        type: 'SYN_STREAM',
        streamId: 2 * i + 1,
        associatedToStreamId: 0,
        priority: 0,
        slot: 0,
        fin: false,
        unidirectional: false,
        headers: toSpdyHeaders(headers),
      }),
    );
  }
  enc.close();
  return floodBytes(
    socket,
    (i) => Buffer.concat(Array.from({ length: 4096 }, (_, k) => frame(i * 4096 + k))),
    limits,
  );
}

/** Writes `burst(i)` for i = 0, 1, … until the limits or the socket's close, never reading. */
export async function floodBytes(
  socket: Duplex,
  burst: (i: number) => Buffer,
  limits: { seconds: number; maxBytes: number },
): Promise<FloodResult> {
  socket.pause();
  socket.on('error', () => {});
  let closed = false;
  socket.once('close', () => (closed = true));
  let offered = 0;
  const deadline = Date.now() + limits.seconds * 1000;
  for (let i = 0; !closed && offered < limits.maxBytes && Date.now() < deadline; i++) {
    const b = burst(i);
    offered += b.length;
    if (!socket.write(b)) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          clearTimeout(timer);
          socket.off('drain', done);
          socket.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, 200);
        socket.on('drain', done);
        socket.on('close', done);
      });
    }
  }
  return { offered, socket };
}

/**
 * Now reads what the server sent, until the connection ends (FIN or reset) or `ms` pass; then
 * destroys it. `first` holds the first 64 KiB, `ended` says whether the server closed.
 */
export function readToEnd(
  socket: Duplex,
  ms: number,
): Promise<{ ended: boolean; first: Buffer; total: number }> {
  const chunks: Buffer[] = [];
  let kept = 0;
  let total = 0;
  return new Promise((resolve) => {
    const finish = (ended: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ended, first: Buffer.concat(chunks), total });
    };
    const timer = setTimeout(() => finish(false), ms);
    if (socket.readableEnded || socket.destroyed) return finish(true);
    socket.on('data', (c: Buffer) => {
      total += c.length;
      if (kept < 64 * 1024) {
        chunks.push(c);
        kept += c.length;
      }
    });
    socket.once('end', () => finish(true));
    socket.once('close', () => finish(true));
    socket.resume();
  });
}

/**
 * Opens a WebSocket by hand (any subprotocol, even `SPDY/3.1+portforward.k8s.io`, which the ws
 * client refuses to offer) and resolves with the upgraded socket; the server's frames are left
 * unread.
 */
export function openWebSocket(target: FloodTarget, protocol: string): Promise<Duplex> {
  const url = new URL(target.url);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise((resolve, reject) => {
    const req = request(url, {
      ...(url.protocol === 'https:' ? target.tls : {}),
      agent: false,
      headers: {
        ...target.headers,
        Connection: 'Upgrade',
        Upgrade: 'websocket',
        'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
        'Sec-WebSocket-Protocol': protocol,
      },
    });
    req.on('error', reject);
    req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
    req.on('upgrade', (_res, socket: Duplex) => resolve(socket));
    req.end();
  });
}

/**
 * The head of one client frame (masked with a zero key, so the payload goes as it is) announcing
 * `length` payload bytes; `opcode` 0x2 binary, 0x9 ping.
 */
export function clientFrameHead(opcode: number, length: number): Buffer {
  const mask = Buffer.alloc(4);
  if (length < 126) return Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | length]), mask]);
  if (length < 65536) {
    const h = Buffer.from([0x80 | opcode, 0x80 | 126, 0, 0]);
    h.writeUInt16BE(length, 2);
    return Buffer.concat([h, mask]);
  }
  const h = Buffer.alloc(10);
  h[0] = 0x80 | opcode;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return Buffer.concat([h, mask]);
}
