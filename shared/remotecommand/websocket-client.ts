/**
 * The client end of a remotecommand session over WebSocket: what `kexec` uses, and what tests
 * use to drive a hop directly.
 *
 * Mirrors client-go `tools/remotecommand/websocket.go` (offer v5 first, send CLOSE when stdin
 * ends, read the exit Status from the error channel) and @kubernetes/client-node `exec.ts`
 * (same channel handling). A handshake that is answered with anything but 101 becomes an
 * UpgradeRefusedError carrying the server's Status (../httpstream/upgrade-refusal.ts).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Readable, Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import WebSocket from 'ws';
import { readRefusal } from '../httpstream/upgrade-refusal.js';
import type { Status } from '../status.js';
import { decodeMessage, encodeClose, encodeMessage, encodeResize, type TerminalSize } from './codec.js';
import { decodeStatus, exitCodeOf } from './exit-status.js';
import { flushed } from './flush.js';
import { Channel, CLIENT_PROTOCOLS, protocolByName, type ChannelProtocol } from './protocol.js';

export interface ChannelClientOptions {
  /** The exec/attach URL with its query; http(s) is turned into ws(s). */
  url: string;
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
  protocols?: readonly string[];
  stdin?: Readable | null;
  stdout?: Writable | null;
  stderr?: Writable | null;
  tty?: boolean;
  /** Subscribes to terminal sizes: call `send` for the initial size and every change; returns unsubscribe. */
  resize?: (send: (size: TerminalSize) => void) => () => void;
  /** Time allowed for the handshake. */
  handshakeTimeoutMs?: number;
  /** Aborting closes the connection at once (the session then fails as a lost connection). */
  signal?: AbortSignal;
  /** Told the 101's status, headers and the subprotocol the server chose (kexec -v). */
  onUpgrade?: (res: UpgradeResponse) => void;
  /**
   * WebSocket pings this often, so that proxies do not drop an idle session (client-go's
   * remotecommand WebSocket executor pings every 5 s); none when absent.
   */
  pingIntervalMs?: number;
}

/** The head of a 101 and what it agreed on. */
export interface UpgradeResponse {
  statusCode?: number;
  statusMessage?: string;
  headers: IncomingHttpHeaders;
  protocol: string;
}

export interface ChannelClientResult {
  status: Status;
  exitCode: number;
  protocol: string;
}

export function runChannelClient(opts: ChannelClientOptions): Promise<ChannelClientResult> {
  const url = opts.url.replace(/^http(s?):/, 'ws$1:');
  const ws = new WebSocket(url, [...(opts.protocols ?? CLIENT_PROTOCOLS)], {
    ...opts.tls,
    headers: opts.headers,
    perMessageDeflate: false,
    handshakeTimeout: opts.handshakeTimeoutMs ?? 30_000,
  });

  return new Promise<ChannelClientResult>((resolve, reject) => {
    let proto: ChannelProtocol | undefined;
    const errorData: Buffer[] = [];
    let settled = false;
    let unsubscribe: (() => void) | undefined;
    const paused = new Set<Writable>();

    const settle = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      unsubscribe?.();
      fn();
    };

    ws.on('unexpected-response', (_req, res) => {
      void readRefusal(res).then((refused) => {
        settle(() => reject(refused));
        ws.terminate();
      });
    });

    ws.on('error', (err) => settle(() => reject(err)));
    let upgrade: IncomingMessage | undefined;
    ws.on('upgrade', (res) => (upgrade = res));
    let pinger: NodeJS.Timeout | undefined;
    ws.once('close', () => clearInterval(pinger));
    const abort = (): void => ws.terminate();
    if (opts.signal?.aborted) abort();
    else opts.signal?.addEventListener('abort', abort, { once: true });

    ws.on('open', () => {
      if (upgrade) {
        const { statusCode, statusMessage, headers } = upgrade;
        opts.onUpgrade?.({ statusCode, statusMessage, headers, protocol: ws.protocol });
      }
      if (opts.pingIntervalMs) pinger = setInterval(() => ws.ping(), opts.pingIntervalMs).unref();
      proto = protocolByName(ws.protocol);
      if (!proto) {
        ws.terminate();
        settle(() => reject(new Error(`server chose an unknown subprotocol ${JSON.stringify(ws.protocol)}`)));
        return;
      }
      const p = proto;
      if (opts.stdin) void pumpStdin(ws, p, opts.stdin);
      if (opts.tty && opts.resize && p.version >= 3) {
        unsubscribe = opts.resize((size) => send(ws, encodeMessage(p, Channel.Resize, encodeResize(size))));
      }
    });

    ws.on('message', (data: Buffer) => {
      if (!proto) return;
      let msg;
      try {
        msg = decodeMessage(proto, data);
      } catch (err) {
        ws.close(1002, (err as Error).message.slice(0, 120));
        settle(() => reject(err as Error));
        return;
      }
      if (msg.kind === 'close') return;
      const target =
        msg.channel === Channel.Stdout
          ? opts.stdout
          : msg.channel === Channel.Stderr
            ? opts.stderr
            : undefined;
      if (msg.channel === Channel.Error) errorData.push(msg.payload);
      else if (target && msg.payload.length && !target.write(msg.payload) && !paused.has(target)) {
        // Backpressure: stop reading the socket until the local writer drains.
        paused.add(target);
        ws.pause();
        target.once('drain', () => {
          paused.delete(target);
          if (paused.size === 0) ws.resume();
        });
      }
    });

    ws.on('close', (code, reason) => {
      if (!proto) {
        settle(() => reject(new Error(`connection closed during the handshake (${code})`)));
        return;
      }
      const gotStatus = errorData.length > 0;
      if (!gotStatus && code !== 1000) {
        const why = reason.length ? `: ${reason.toString()}` : '';
        settle(() => reject(new Error(`connection closed before the command finished (code ${code}${why})`)));
        return;
      }
      const status = decodeStatus(proto, Buffer.concat(errorData));
      const p = proto;
      // The output is through to the caller's writers before the result is (client-go's io.Copy).
      void Promise.all([flushed(opts.stdout), flushed(opts.stderr)]).then(() =>
        settle(() => resolve({ status, exitCode: exitCodeOf(status), protocol: p.name })),
      );
    });
  });
}

function send(ws: WebSocket, data: Buffer | string): Promise<void> {
  return new Promise((resolve) => {
    if (ws.readyState !== ws.OPEN) return resolve();
    ws.send(data, () => resolve());
  });
}

/** Copies stdin to channel 0, waiting for each frame to reach the socket; v5 then sends CLOSE. */
async function pumpStdin(ws: WebSocket, proto: ChannelProtocol, stdin: Readable): Promise<void> {
  try {
    for await (const chunk of stdin) {
      if (ws.readyState !== ws.OPEN) return;
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      if (buf.length) await send(ws, encodeMessage(proto, Channel.Stdin, buf));
    }
  } catch {
    // A failing local stdin ends the input like EOF.
  }
  // Before v5 there is no way to close stdin but to close the connection, which would lose the
  // output and the exit status (kubernetes#89899); so older protocols leave it open.
  if (proto.version >= 5) await send(ws, encodeClose(Channel.Stdin));
}
