/**
 * The streams a hop carries right now, and the bytes each has carried: what `/debug/sessions`
 * lists (the lab's dashboard reads it) and what the stream metrics count.
 *
 * A spliced stream is counted from the UpgradeAwareHandler's `onSplice` / `onSpliceClose` hooks
 * (shared/proxy/upgrade-aware-handler.ts): every chunk read from the client is a byte up, every
 * chunk read from the backend a byte down, the same bytes the splice copies. A stream a hop ends
 * itself (the StreamTranslator, the runtime's sessions) is counted on its client connection
 * (bytes read, and the socket's `bytesWritten`).
 * Upstream has no per-hop byte metric; the names carry a `kexec_lab_` prefix to say so.
 */
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { SpliceStats } from '../proxy/splice.js';
import { Counter, Gauge, type Registry } from './registry.js';

/**
 * The audit annotations the apiserver puts on an upgraded stream's Events: how it carries the
 * stream (StreamInfo's `path`) and the `Upgrade` protocol the client asked for. The lab's own keys:
 * upstream tells the ways apart only in apiserver_websocket_streaming_requests_total.
 */
export const STREAM_PATH_ANNOTATION = 'kexec-lab/stream-path';
export const STREAM_PROTOCOL_ANNOTATION = 'kexec-lab/stream-protocol';

export interface StreamInfo {
  /** The request's Audit-Id, which every hop of it logs. */
  auditID?: string;
  /** exec, attach, portforward. */
  kind?: string;
  user?: string;
  /** namespace/pod (or a container id at the runtime). */
  target?: string;
  /** WebSocket subprotocol or SPDY/3.1. */
  protocol?: string;
  /** How this hop carries it: spliced to the next hop, translated (WebSocket↔SPDY), or served here. */
  path: 'spliced' | 'translated' | 'tunnelled' | 'served';
}

export interface StreamSnapshot extends StreamInfo {
  hop: string;
  id: number;
  startedAt: string;
  ageSeconds: number;
  bytesUp: number;
  bytesDown: number;
}

interface Live extends StreamInfo {
  id: number;
  started: number;
  up: number;
  down: number;
  /** Bytes written to the client since the start, for a stream ended here. */
  written?: () => number;
}

/** Bytes written to a socket since `base` (by default: since now). */
function writtenBy(socket: Duplex, base?: number): () => number {
  const from = base ?? bytesWritten(socket);
  return () => bytesWritten(socket) - from;
}

/** A socket's `bytesWritten` (0 for a stream that is not a socket). */
export function bytesWritten(socket: Duplex): number {
  return (socket as Partial<Socket>).bytesWritten ?? 0;
}

export class StreamSessions {
  private readonly live = new Map<number, Live>();
  private nextId = 1;
  private readonly bytes: Counter<'hop' | 'direction'>;
  private readonly active: Gauge<'hop'>;

  constructor(
    readonly hop: string,
    registry: Registry,
  ) {
    this.bytes = new Counter({
      name: 'kexec_lab_stream_bytes_total',
      help: 'Bytes carried by upgraded streams at this hop, up (from the client) and down (to it)',
      labelNames: ['hop', 'direction'],
      registers: [registry],
    });
    this.active = new Gauge({
      name: 'kexec_lab_stream_sessions_active',
      help: 'Upgraded streams open at this hop',
      labelNames: ['hop'],
      registers: [registry],
    });
    // Both series exist from the start, at 0, so a reader sees them before the first stream.
    this.bytes.inc({ hop, direction: 'up' }, 0);
    this.bytes.inc({ hop, direction: 'down' }, 0);
    this.active.set({ hop }, 0);
  }

  /** Hooks for an UpgradeAwareHandler: count what the splice copies, forget it when it closes. */
  spliceHooks(info: StreamInfo): {
    onSplice: (client: Duplex, backend: Duplex, before?: { up: number; down: number }) => void;
    onSpliceClose: (stats: SpliceStats) => void;
  } {
    let end: (() => void) | undefined;
    return {
      onSplice: (client, backend, before) => {
        end = this.open(info, client, backend, before);
      },
      onSpliceClose: () => end?.(),
    };
  }

  /**
   * Starts counting a stream: bytes read from `client` go up, bytes read from `backend` down
   * (`before`: what was passed on before the splice, the over-read after the heads). A
   * stream ended at this hop has no backend: what it sent down is the client socket's
   * `bytesWritten` since `sentBase` (the count at the end of its response head; default: now).
   * Returns the function that ends it (idempotent).
   */
  open(
    info: StreamInfo,
    client: Duplex,
    backend?: Duplex,
    before = { up: 0, down: 0 },
    sentBase?: number,
  ): () => void {
    const s: Live = { ...info, id: this.nextId++, started: Date.now(), up: 0, down: 0 };
    this.live.set(s.id, s);
    this.active.inc({ hop: this.hop });
    const add = (direction: 'up' | 'down', n: number): void => {
      s[direction] += n;
      this.bytes.inc({ hop: this.hop, direction }, n);
    };
    add('up', before.up);
    add('down', before.down);
    const count = (direction: 'up' | 'down') => (chunk: Buffer) => add(direction, chunk.length);
    client.on('data', count('up'));
    if (backend) backend.on('data', count('down'));
    else s.written = writtenBy(client, sentBase);
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (s.written) this.bytes.inc({ hop: this.hop, direction: 'down' }, s.written());
      this.live.delete(s.id);
      this.active.dec({ hop: this.hop });
    };
  }

  snapshot(): StreamSnapshot[] {
    const now = Date.now();
    return [...this.live.values()].map(({ started, up, down, written, ...info }) => ({
      ...info,
      hop: this.hop,
      startedAt: new Date(started).toISOString(),
      ageSeconds: Math.round((now - started) / 100) / 10,
      bytesUp: up,
      bytesDown: written ? written() : down,
    }));
  }
}
