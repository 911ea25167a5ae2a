/**
 * The client end of a remotecommand session over SPDY/3.1: what `kexec --protocol spdy` uses, and
 * what tests use to drive a hop the way kubectl (KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false) does.
 *
 * Mirrors client-go `tools/remotecommand/spdy.go` and `transport/spdy/spdy.go` (a POST with
 * `Connection: Upgrade`, `Upgrade: SPDY/3.1` and one `X-Stream-Protocol-Version` line per version
 * offered; the 101 names the chosen one, none meaning v1) and `v2.go`…`v4.go` (open `error`, then
 * `stdin`, `stdout`, `stderr` unless tty, `resize` with tty from v3, each waiting for its reply; copy
 * stdin and FIN the stream at EOF; read stdout and stderr to EOF; then the error stream's Status).
 * Same options and result as websocket-client.ts's runChannelClient; a refused upgrade is the same
 * UpgradeRefusedError.
 *
 * Differences: a connection lost before the exit status is an error, never a silent success
 * (kubernetes#26424, #73056): with v4 the error stream must end with a Status or a FIN; before v4,
 * where success writes nothing, the error stream must have ended by FIN, RST_STREAM or GOAWAY
 * rather than by the socket dropping.
 */
import type { Readable } from 'node:stream';
import { encodeResize } from './codec.js';
import { decodeStatus, exitCodeOf } from './exit-status.js';
import { flushed } from './flush.js';
import { protocolByName } from './protocol.js';
import type { ChannelClientOptions, ChannelClientResult } from './websocket-client.js';
import { SpdyConnection, type SpdyConnectionOptions } from '../spdy/connection.js';
import { dialSpdy } from '../spdy/dial.js';
import type { SpdyStream } from '../spdy/stream.js';
import { DEFAULT_STREAM_CREATION_TIMEOUT_MS, SPDY_CLIENT_PROTOCOLS, StreamType } from '../spdy/upgrade.js';

export interface SpdyClientOptions extends ChannelClientOptions {
  /** How long each stream may wait for the server's SYN_REPLY (client-go: 30 s). */
  streamCreationTimeoutMs?: number;
  connection?: Omit<SpdyConnectionOptions, 'role' | 'head'>;
  /**
   * Hand back the result as soon as the exit status is in, and let the connection's close (GOAWAY
   * both ways, the FINs) finish on its own. For the StreamTranslator, whose client is waiting for
   * that Status: the close is one more round trip across every hop behind it (kexec-lab issue 16).
   * By default the result comes once the connection is closed, so a CLI can exit right after it.
   */
  resultBeforeClose?: boolean;
}

const MAX_STATUS_BYTES = 1024 * 1024;

export async function runSpdyClient(opts: SpdyClientOptions): Promise<ChannelClientResult> {
  const { socket, head, protocol, response } = await dialSpdy(
    {
      url: opts.url,
      headers: opts.headers,
      tls: opts.tls,
      timeoutMs: opts.handshakeTimeoutMs,
      signal: opts.signal,
    },
    opts.protocols ?? SPDY_CLIENT_PROTOCOLS,
  );
  const proto = protocolByName(protocol || 'channel.k8s.io');
  if (!proto || proto.base64) {
    socket.destroy();
    throw new Error(`server chose an unknown protocol version ${JSON.stringify(protocol)}`);
  }
  if (response) opts.onUpgrade?.({ ...response, protocol });
  const conn = new SpdyConnection(socket, { ...opts.connection, role: 'client', head });
  const abort = (): void => void conn.close();
  if (opts.signal?.aborted) abort();
  else opts.signal?.addEventListener('abort', abort, { once: true });
  let goaway = false;
  conn.once('goaway', () => (goaway = true));

  const open = (type: string): SpdyStream => conn.createStream({ streamType: type });
  const errorStream = open(StreamType.Error);
  const stdin = opts.stdin ? open(StreamType.Stdin) : undefined;
  const stdout = opts.stdout ? open(StreamType.Stdout) : undefined;
  const stderr = opts.stderr && !opts.tty ? open(StreamType.Stderr) : undefined;
  const resize = opts.tty && proto.version >= 3 ? open(StreamType.Resize) : undefined;
  const all = [errorStream, stdin, stdout, stderr, resize].filter((s): s is SpdyStream => !!s);
  // Collect the error stream from the start: the server may answer before we are done waiting.
  const errorData = collect(errorStream, MAX_STATUS_BYTES);
  const outputs = [copyOut(stdout, opts.stdout), copyOut(stderr, opts.stderr)];
  try {
    const timeout = opts.streamCreationTimeoutMs ?? DEFAULT_STREAM_CREATION_TIMEOUT_MS;
    await Promise.all(all.map((s) => s.waitReply(timeout)));
  } catch (err) {
    await conn.close();
    throw err;
  }

  // Nothing comes back on stdin or resize: drain them so they cannot hold the socket.
  stdin?.resume();
  resize?.resume();
  if (stdin && opts.stdin) void pumpStdin(opts.stdin, stdin);
  let unsubscribe: (() => void) | undefined;
  if (resize && opts.resize) {
    unsubscribe = opts.resize((size) => {
      if (!resize.writableEnded) resize.write(Buffer.concat([encodeResize(size), Buffer.from('\n')]));
    });
  }

  try {
    await Promise.all(outputs);
    // The output is through to the caller's writers before the result is (client-go's io.Copy).
    await Promise.all([flushed(opts.stdout), flushed(opts.stderr)]);
    const data = await errorData;
    const end = errorStream.remoteEnd;
    const clean = proto.version >= 4 ? data.length > 0 || end === 'fin' : end !== 'closed' || goaway;
    if (!clean) throw new Error('connection closed before the command finished');
    const status = decodeStatus(proto, data);
    return { status, exitCode: exitCodeOf(status), protocol: proto.name };
  } finally {
    unsubscribe?.();
    opts.signal?.removeEventListener('abort', abort);
    const closed = conn.close();
    if (!opts.resultBeforeClose) await closed;
  }
}

/** Everything the stream delivers up to `limit` bytes (the rest is read and dropped). */
function collect(stream: SpdyStream, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  stream.on('data', (c: Buffer) => {
    if (size + c.length <= limit) chunks.push(c);
    size += c.length;
  });
  return new Promise((resolve) => stream.once('end', () => resolve(Buffer.concat(chunks))));
}

/** Copies a remote output stream into the caller's writer with backpressure; resolves at its end. */
function copyOut(
  stream: SpdyStream | undefined,
  target: NodeJS.WritableStream | null | undefined,
): Promise<void> {
  if (!stream) return Promise.resolve();
  const ended = new Promise<void>((resolve) => stream.once('end', resolve));
  if (target) stream.pipe(target, { end: false });
  else stream.resume();
  return ended;
}

/** Copies stdin to its stream, waiting whenever the stream is full; FIN at EOF. */
async function pumpStdin(input: Readable, stream: SpdyStream): Promise<void> {
  try {
    for await (const chunk of input) {
      if (stream.writableEnded || stream.destroyed) return;
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
      if (buf.length && !stream.write(buf)) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            stream.off('drain', done);
            stream.off('close', done);
            resolve();
          };
          stream.on('drain', done);
          stream.on('close', done);
        });
      }
    }
  } catch {
    // A failing local stdin ends the input like EOF.
  }
  if (!stream.writableEnded && !stream.destroyed) stream.end();
}
