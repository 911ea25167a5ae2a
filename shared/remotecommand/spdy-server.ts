/**
 * The server end of a remotecommand session over SPDY/3.1: what the CRI streaming server speaks to
 * a kubelet, an apiserver, or kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/remotecommand/httpstream.go` (`createHTTPStreamStreams`:
 * negotiate the version, upgrade, then wait up to the creation timeout for one stream per channel,
 * told apart by their `streamType` header, each answered with SYN_REPLY; `v4WriteStatusFunc` /
 * `v1WriteStatusFunc`; `handleResizeEvents`) and `exec.go` (the Status, then the connection closes).
 * It gives the program the same RemoteCommandSession a WebSocket session does.
 *
 * Differences:
 * - only the streams this session expects count, each once; upstream counts any stream, so a
 *   duplicate `stdout` could stand in for a missing `stderr`. A duplicate is reset, a stream of an
 *   unknown type is answered and drained (as upstream answers it and ignores it), and streams
 *   opened once the session started are refused (upstream's handler would block on them);
 * - finish() sends FIN on stdout, stderr and the error stream before GOAWAY, where upstream resets
 *   every stream; a client that waits for EOF sees the same either way;
 * - a malformed resize message ends the session, as on the WebSocket side.
 */
import { EventEmitter } from 'node:events';
import type { IncomingMessage } from 'node:http';
import type { Readable, Writable, Duplex } from 'node:stream';
import type { Status } from '../status.js';
import { RemoteCommandError, type TerminalSize } from './codec.js';
import { encodeStatus } from './exit-status.js';
import { protocolByName, type ChannelProtocol } from './protocol.js';
import type { RemoteCommandSession } from './session.js';
import type { RemoteCommandOptions } from './websocket-server.js';
import { SpdyConnection, type SpdyConnectionOptions } from '../spdy/connection.js';
import { RstStatus, SpdyError } from '../spdy/errors.js';
import { headerValue } from '../spdy/header-block.js';
import { ResizeDecoder } from './resize-stream.js';
import type { SpdyStream } from '../spdy/stream.js';
import {
  DEFAULT_STREAM_CREATION_TIMEOUT_MS,
  acceptSpdyUpgrade,
  SPDY_SERVER_PROTOCOLS,
  StreamType,
  type StreamTypeName,
} from '../spdy/upgrade.js';

export interface SpdySessionOptions {
  /** How long the client has to open its streams (kubelet: 30 s, `--stream-creation-timeout`). */
  streamCreationTimeoutMs?: number;
  /** Versions offered, most preferred first. */
  supportedProtocols?: readonly string[];
  connection?: Omit<SpdyConnectionOptions, 'role' | 'head'>;
}

/** The streams a client must open for these options under this protocol version. */
export function expectedStreamTypes(streams: RemoteCommandOptions, version: number): StreamTypeName[] {
  const out: StreamTypeName[] = [StreamType.Error];
  if (streams.stdin) out.push(StreamType.Stdin);
  if (streams.stdout) out.push(StreamType.Stdout);
  if (streams.stderr && !streams.tty) out.push(StreamType.Stderr);
  if (streams.tty && version >= 3) out.push(StreamType.Resize);
  return out;
}

/**
 * Completes a SPDY/3.1 upgrade and waits for the client's streams. Resolves undefined when the
 * handshake was refused (a Status was written and the connection closed); rejects with SpdyError
 * TIMEOUT when the streams do not all arrive in time, CONNECTION_CLOSED when the client leaves first.
 */
export async function acceptSpdySession(
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
  streams: RemoteCommandOptions,
  opts: SpdySessionOptions = {},
): Promise<SpdyServerSession | undefined> {
  // Only versions that name a channel protocol (v1–v4) can be served.
  const supported = (opts.supportedProtocols ?? SPDY_SERVER_PROTOCOLS).filter((p) => protocolByName(p));
  const chosen = acceptSpdyUpgrade(req, socket, supported);
  if (!chosen) return undefined;
  const protocol = protocolByName(chosen)!;
  const conn = new SpdyConnection(socket, { ...opts.connection, role: 'server', head });
  const found = await waitForStreams(
    conn,
    expectedStreamTypes(streams, protocol.version),
    opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS,
  );
  return new SpdyServerSession(conn, protocol, streams, found);
}

function waitForStreams(
  conn: SpdyConnection,
  expected: StreamTypeName[],
  timeoutMs: number,
): Promise<Map<StreamTypeName, SpdyStream>> {
  const found = new Map<StreamTypeName, SpdyStream>();
  return new Promise((resolve, reject) => {
    const done = (): void => {
      clearTimeout(timer);
      conn.off('stream', onStream);
      conn.off('close', onClose);
      // From now on the session has what it needs: later streams are refused.
      conn.on('stream', (s) => s.refuse());
    };
    const timer = setTimeout(() => {
      done();
      void conn.close();
      reject(new SpdyError('TIMEOUT', `timed out waiting for client to create streams (${timeoutMs} ms)`));
    }, timeoutMs);
    const onClose = (): void => {
      done();
      reject(new SpdyError('CONNECTION_CLOSED', 'client went away before creating its streams'));
    };
    const onStream = (s: SpdyStream): void => {
      const type = (headerValue(s.headers, 'streamType') ?? '') as StreamTypeName;
      if (!expected.includes(type)) {
        s.accept();
        s.resume(); // answered and ignored, as upstream; drained so it cannot stall the connection
        s.end();
        return;
      }
      if (found.has(type)) {
        s.refuse(RstStatus.ProtocolError);
        return;
      }
      s.accept();
      found.set(type, s);
      if (found.size === expected.length) {
        done();
        resolve(found);
      }
    };
    conn.on('stream', onStream);
    conn.once('close', onClose);
  });
}

interface SessionEvents {
  resize: [size: TerminalSize];
  /** The connection is gone (client left, finish() done, protocol error, shutdown). */
  close: [];
  /** A malformed resize message, or a SPDY protocol error; the session is closing. */
  protocolError: [err: RemoteCommandError | SpdyError];
}

export class SpdyServerSession extends EventEmitter<SessionEvents> implements RemoteCommandSession {
  readonly stdin: Readable | null;
  readonly stdout: Writable | null;
  readonly stderr: Writable | null;
  private readonly errorStream: SpdyStream;
  private closed = false;
  private finishing: Promise<void> | undefined;

  constructor(
    private readonly conn: SpdyConnection,
    readonly protocol: ChannelProtocol,
    readonly streams: RemoteCommandOptions,
    found: Map<StreamTypeName, SpdyStream>,
  ) {
    super();
    this.errorStream = found.get(StreamType.Error)!;
    const stdin = found.get(StreamType.Stdin);
    const stdout = found.get(StreamType.Stdout);
    const stderr = found.get(StreamType.Stderr);
    // Directions nobody reads are drained, so a stray byte cannot hold the socket paused.
    for (const s of [this.errorStream, stdout, stderr]) s?.resume();
    this.stdin = stdin ?? null;
    this.stdout = stdout ?? null;
    this.stderr = stderr ?? null;

    const resize = found.get(StreamType.Resize);
    if (resize) {
      const decoder = new ResizeDecoder();
      resize.on('data', (chunk: Buffer) => {
        try {
          for (const size of decoder.push(chunk)) this.emit('resize', size);
        } catch (err) {
          if (!(err instanceof RemoteCommandError)) throw err;
          resize.removeAllListeners('data');
          resize.resume();
          this.emit('protocolError', err);
          void this.close();
        }
      });
    }

    conn.once('close', (reason) => {
      this.closed = true;
      if (reason.error) this.emit('protocolError', reason.error);
      // Writes from a program that has not noticed yet are discarded, not errors.
      stdout?.destroy();
      stderr?.destroy();
      this.emit('close');
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Ends the session: lets stdout and stderr drain and half-close, writes the Status on the error
   * stream (v4: JSON always; v1–v3: failures only, as text), then GOAWAY and close. Resolves once
   * the connection is closed.
   */
  finish(status: Status): Promise<void> {
    this.finishing ??= (async () => {
      await Promise.all([endWritable(this.stdout), endWritable(this.stderr)]);
      const bytes = encodeStatus(this.protocol, status);
      if (bytes) this.errorStream.write(bytes);
      await endWritable(this.errorStream);
      await this.close();
    })();
    return this.finishing;
  }

  /** Closes at once (GOAWAY, then the socket); resolves when closed. */
  async close(): Promise<void> {
    if (this.closed) return;
    const done = new Promise<void>((resolve) => this.once('close', resolve));
    void this.conn.close();
    await done;
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
