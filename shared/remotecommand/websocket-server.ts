/**
 * The server end of a remotecommand session over WebSocket: what the CRI streaming server speaks
 * (and, later, the apiserver's StreamTranslator).
 *
 * Mirrors apimachinery `pkg/util/wsstream/conn.go` (handshake, channel routing, the empty "ready"
 * message) and kubelet `pkg/kubelet/cri/streaming/remotecommand/websocket.go` (which channels
 * exist for which options). The WebSocket itself is the `ws` package's; we add the channels.
 *
 * Deliberately stricter than wsstream: a malformed message (unknown channel, bad base64, a CLOSE of
 * the wrong length, an unparseable resize) ends the session with close code 1002 and the reason,
 * where upstream logs and drops it; a session that cannot be trusted is not kept. A message over
 * MAX_CLIENT_MESSAGE_BYTES gets a Status on the error channel and close 1009, where wsstream
 * logs the receive error and drops the connection.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import { Readable, Writable, type Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { failureStatus, type Status } from '../status.js';
import {
  decodeMessage,
  decodeResize,
  encodeMessage,
  RemoteCommandError,
  type TerminalSize,
} from './codec.js';
import { encodeStatus } from './exit-status.js';
import {
  closeWebSocket,
  onMessageTooBig,
  refuseWebSocketUpgrade,
  sendMessage,
  webSocketServer,
} from './ws-messages.js';
import {
  Channel,
  negotiateProtocol,
  protocolByName,
  SERVER_PROTOCOLS,
  type ChannelProtocol,
} from './protocol.js';

/** Which streams a session has (upstream `pkg/kubelet/cri/streaming/remotecommand` Options). */
export interface RemoteCommandOptions {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

/**
 * Largest message a client may send (stdin, resize): 32 MiB, what the kubelet's streaming server
 * and the apiserver's StreamTranslator accept, both reading with apimachinery wsstream
 * (`pkg/util/httpstream/wsstream/conn.go`, `websocket.Message.Receive`) whose golang.org/x/net
 * `websocket/hybi.go` limit is `DefaultMaxPayloadBytes = 32 << 20`. @kubernetes/client-node sends
 * a Buffer stdin as one message. Beyond it: a Status on the error channel and close 1009.
 */
export const MAX_CLIENT_MESSAGE_BYTES = 32 * 1024 * 1024;
const WRITE_HIGH_WATER = 64 * 1024;

// One server object for every handshake: noServer, so the HTTP server routes upgrades itself.
const wss = webSocketServer(MAX_CLIENT_MESSAGE_BYTES, (offered) => negotiateProtocol(offered) ?? false);

/**
 * Completes the WebSocket handshake for a remotecommand session. On a request that is not a
 * WebSocket handshake, or offers no channel protocol we speak, it answers with a Status and
 * closes the connection, and returns undefined.
 */
export function acceptChannelSession(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  streams: RemoteCommandOptions,
): ChannelServerSession | undefined {
  if (refuseWebSocketUpgrade(req, socket, SERVER_PROTOCOLS)) return undefined;
  let session: ChannelServerSession | undefined;
  // With no verifyClient, ws completes the handshake synchronously.
  wss.handleUpgrade(req, socket, head, (ws) => {
    session = new ChannelServerSession(ws, protocolByName(ws.protocol)!, streams);
  });
  return session;
}

interface SessionEvents {
  resize: [size: TerminalSize];
  /** The connection is gone (client left, finish() done, protocol error, shutdown). */
  close: [];
  /** A malformed message from the client; the session is closing. */
  protocolError: [err: RemoteCommandError];
}

export class ChannelServerSession extends EventEmitter<SessionEvents> {
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  private closed = false;
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly ws: WebSocket,
    readonly protocol: ChannelProtocol,
    readonly streams: RemoteCommandOptions,
  ) {
    super();
    this.stdin = streams.stdin
      ? new Readable({ highWaterMark: WRITE_HIGH_WATER, read: () => this.ws.resume() })
      : null;
    this.stdout = streams.stdout ? this.channelWriter(Channel.Stdout) : null;
    // A terminal merges stderr into stdout (upstream drops stderr when tty is set).
    this.stderr = streams.stderr && !streams.tty ? this.channelWriter(Channel.Stderr) : null;

    ws.on('message', (data: Buffer) => this.onMessage(data));
    // ws has sent its close frame (1002, 1009 …) and finishes closing on its own; terminating here
    // could reset the connection before that frame, or the Status before it, reached the client.
    ws.on('error', () => {});
    onMessageTooBig(ws, () => {
      const status = failureStatus(
        413,
        `message too large: a client message may carry at most ${MAX_CLIENT_MESSAGE_BYTES} bytes`,
      );
      const bytes = encodeStatus(this.protocol, status);
      if (bytes) void this.send(Channel.Error, bytes);
    });
    ws.on('close', () => {
      this.closed = true;
      this.stdin?.push(null);
      this.stdout?.destroy();
      this.stderr?.destroy();
      this.emit('close');
    });
    // The upgrade handler may have paused the socket (the apiserver does until the backend has
    // accepted) and ws does not resume it: unread, the client's CLOSE frame and pings would go
    // unanswered and every close would wait out ws's 30 s close timer. Reading starts now; stdin
    // backpressure pauses it again (onMessage).
    ws.resume();
    // The "ready" signal: an empty message on the first channel the server writes to.
    const first = this.stdout ? Channel.Stdout : this.stderr ? Channel.Stderr : Channel.Error;
    this.send(first, Buffer.alloc(0));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Ends the session: lets stdout and stderr drain, writes the Status on the error channel, and
   * closes the WebSocket normally. Resolves once the connection is closed.
   */
  finish(status: Status): Promise<void> {
    this.finishing ??= (async () => {
      await Promise.all([endWritable(this.stdout), endWritable(this.stderr)]);
      const bytes = encodeStatus(this.protocol, status);
      if (bytes) await this.send(Channel.Error, bytes);
      await this.close(1000, '');
    })();
    return this.finishing;
  }

  /** Closes at once (client gone, protocol error, shutdown); resolves when closed. */
  close(code = 1000, reason = ''): Promise<void> {
    return this.closed ? Promise.resolve() : closeWebSocket(this.ws, code, reason);
  }

  private send(channel: number, payload: Buffer): Promise<void> {
    return this.closed
      ? Promise.resolve()
      : sendMessage(this.ws, encodeMessage(this.protocol, channel, payload));
  }

  private channelWriter(channel: number): Writable {
    return new Writable({
      highWaterMark: WRITE_HIGH_WATER,
      // The callback fires once ws has written the frame to the socket: that is the backpressure.
      write: (chunk: Buffer, _enc, cb) => void this.send(channel, chunk).then(() => cb()),
    });
  }

  private onMessage(data: Buffer): void {
    try {
      const msg = decodeMessage(this.protocol, data);
      if (msg.kind === 'close') {
        if (msg.channel === Channel.Stdin) {
          this.stdin?.push(null);
          // Nobody reads stdin any more to resume a paused socket; keep reading (pings, close).
          this.ws.resume();
        }
        return;
      }
      if (msg.channel === Channel.Stdin) {
        if (this.stdin && !this.stdin.readableEnded && !this.stdin.push(msg.payload)) this.ws.pause();
      } else if (msg.channel === Channel.Resize) {
        if (this.protocol.version >= 3 && this.streams.tty) this.emit('resize', decodeResize(msg.payload));
      } else {
        throw new RemoteCommandError(
          'UNKNOWN_CHANNEL',
          `channel ${msg.channel} cannot be written by a client`,
        );
      }
    } catch (err) {
      if (!(err instanceof RemoteCommandError)) throw err;
      this.emit('protocolError', err);
      void this.close(1002, err.message);
    }
  }
}

function endWritable(w: Writable | null): Promise<void> {
  if (!w || w.destroyed || w.writableFinished) return Promise.resolve();
  return new Promise((resolve) => {
    w.once('finish', resolve);
    w.once('close', resolve);
    w.end();
  });
}
