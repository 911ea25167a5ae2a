/**
 * What a remotecommand program (exec, attach) sees of its client, whatever carries the session:
 * a WebSocket (websocket-server.ts, ChannelServerSession) or SPDY/3.1
 * (spdy-server.ts, SpdyServerSession). The CRI shim serves both through this one
 * interface.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/remotecommand/httpstream.go` (`remoteContext`: the
 * stdin/stdout/stderr streams, the resize channel and `writeStatus`), which both of its transports
 * fill in.
 */
import type { Readable, Writable } from 'node:stream';
import type { Status } from '../status.js';
import type { TerminalSize } from './codec.js';
import type { ChannelProtocol } from './protocol.js';
import type { RemoteCommandOptions } from './websocket-server.js';

export interface RemoteCommandSession {
  /** The client's input; ends when the client closes it (v5 CLOSE, SPDY FIN) or goes away. */
  readonly stdin: Readable | null;
  /** Output to the client, with backpressure; null when not requested. */
  readonly stdout: Writable | null;
  /** Null when not requested, and with a terminal (stderr is merged into stdout then). */
  readonly stderr: Writable | null;
  /** The negotiated channel protocol (v1–v5; the SPDY ones share the names). */
  readonly protocol: ChannelProtocol;
  readonly streams: RemoteCommandOptions;
  readonly isClosed: boolean;
  /** Flushes stdout and stderr, writes the exit Status (as the protocol version wants) and closes. */
  finish(status: Status): Promise<void>;
  /** Closes at once; resolves when closed. */
  close(): Promise<void>;
  /** 'resize': a terminal size from the client (tty, v3+). 'close': the connection is gone. */
  on(event: 'resize', listener: (size: TerminalSize) => void): this;
  on(event: 'close', listener: () => void): this;
  once(event: 'resize', listener: (size: TerminalSize) => void): this;
  once(event: 'close', listener: () => void): this;
}
