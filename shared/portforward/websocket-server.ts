/**
 * The server end of a WebSocket port-forward: the handshake and, for every requested port, a
 * data Duplex and an error Writable. Whoever accepts the session (the CRI streaming server) dials
 * the ports and splices; this module only speaks the protocol.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/portforward/websocket.go` (handleWebSocketStreams:
 * channels 2i/2i+1, the port prefix written first on both) over apimachinery `wsstream/conn.go`.
 * Differences: a message on a channel a client may not write (an error channel, or one beyond
 * the ports) ends the session with close code 1002, where wsstream drops it; backpressure is
 * explicit: a full data Duplex pauses the WebSocket, a write waits for its frame to reach the socket.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Duplex, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import {
  dataChannel,
  decodeFrame,
  encodeFrame,
  encodePortPrefix,
  errorChannel,
  PortForwardError,
  V4_BASE64,
  WEBSOCKET_PROTOCOLS,
} from './protocol.js';
import {
  closeWebSocket,
  refuseWebSocketUpgrade,
  sendMessage,
  webSocketServer,
} from '../remotecommand/ws-messages.js';

/**
 * Largest message a client may send; ws closes with 1009 beyond it. Below wsstream's 32 MiB on
 * purpose: port-forward clients send what one read of a local connection gave (client-node: at
 * most 64 KiB), and every open port may hold one message.
 */
export const MAX_CLIENT_MESSAGE_BYTES = 4 * 1024 * 1024;
const HIGH_WATER = 64 * 1024;

const wss = webSocketServer(
  MAX_CLIENT_MESSAGE_BYTES,
  (offered) => [...offered].find((p) => WEBSOCKET_PROTOCOLS.includes(p)) ?? false,
);

export interface PortStreams {
  port: number;
  /** Bytes from the client (readable side) and to it (writable side) for this port. */
  data: Duplex;
  /** Text for the client's error channel of this port. */
  error: Writable;
}

/**
 * Completes the WebSocket handshake for `ports`. A request that is not a WebSocket upgrade, or
 * offers only subprotocols we do not speak, gets a 400 Status and undefined.
 */
export function acceptPortForwardSession(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  ports: readonly number[],
): PortForwardServerSession | undefined {
  if (refuseWebSocketUpgrade(req, socket, WEBSOCKET_PROTOCOLS)) return undefined;
  let session: PortForwardServerSession | undefined;
  // With no verifyClient, ws completes the handshake synchronously.
  wss.handleUpgrade(req, socket, head, (ws) => {
    session = new PortForwardServerSession(ws, ports);
  });
  return session;
}

interface SessionEvents {
  close: [];
  protocolError: [err: PortForwardError];
}

export class PortForwardServerSession extends EventEmitter<SessionEvents> {
  readonly streams: PortStreams[];
  readonly protocol: string;
  private readonly base64: boolean;
  private closed = false;

  constructor(
    private readonly ws: WebSocket,
    ports: readonly number[],
  ) {
    super();
    this.protocol = ws.protocol;
    this.base64 = ws.protocol === V4_BASE64;
    this.streams = ports.map((port, i) => {
      // The prefix goes out before anything else on each channel: ws keeps send order.
      void this.send(dataChannel(i), encodePortPrefix(port));
      void this.send(errorChannel(i), encodePortPrefix(port));
      return { port, data: this.dataDuplex(i), error: this.errorWriter(i) };
    });
    ws.on('message', (data: Buffer) => this.onMessage(data));
    // ws has sent its close frame (1002, 1009 …) and finishes closing on its own.
    ws.on('error', () => {});
    ws.on('close', () => {
      this.closed = true;
      for (const s of this.streams) {
        s.data.push(null);
        // The client is gone: nothing more can be written to it.
        if (!s.data.writableFinished) s.data.destroy();
        s.error.destroy();
      }
      this.emit('close');
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Lets every error writer and data writer flush, then closes normally (upstream closes the
   * connection once every port's forwarding has returned).
   */
  async finish(): Promise<void> {
    await Promise.all(this.streams.flatMap((s) => [flushed(s.data), flushed(s.error)]));
    await this.close(1000, '');
  }

  close(code = 1000, reason = ''): Promise<void> {
    return this.closed ? Promise.resolve() : closeWebSocket(this.ws, code, reason);
  }

  private send(channel: number, payload: Buffer): Promise<void> {
    return this.closed ? Promise.resolve() : sendMessage(this.ws, encodeFrame(this.base64, channel, payload));
  }

  private dataDuplex(index: number): Duplex {
    return new Duplex({
      highWaterMark: HIGH_WATER,
      // No half-close in v4: when the target ends, nothing goes on the wire; finish() closes.
      allowHalfOpen: true,
      read: () => this.ws.resume(),
      write: (chunk: Buffer, _enc, cb) => void this.send(dataChannel(index), chunk).then(() => cb()),
    });
  }

  private errorWriter(index: number): Writable {
    return new Writable({
      write: (chunk: Buffer, _enc, cb) => void this.send(errorChannel(index), chunk).then(() => cb()),
    });
  }

  private onMessage(data: Buffer): void {
    try {
      const { channel, payload } = decodeFrame(this.base64, data, this.streams.length * 2);
      if (channel % 2 === 1) {
        throw new PortForwardError('UNKNOWN_CHANNEL', `channel ${channel} cannot be written by a client`);
      }
      const target = this.streams[channel / 2]!.data;
      if (payload.length && !target.readableEnded && !target.push(payload)) this.ws.pause();
    } catch (err) {
      if (!(err instanceof PortForwardError)) throw err;
      this.emit('protocolError', err);
      void this.close(1002, err.message);
    }
  }
}

function flushed(w: Writable): Promise<void> {
  if (w.destroyed || w.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('finish', resolve);
    w.once('close', resolve);
    w.end();
  });
}
