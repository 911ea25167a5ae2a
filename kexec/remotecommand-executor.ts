/**
 * How exec and attach reach the remotecommand stream: over WebSocket, over SPDY/3.1, or WebSocket
 * first with SPDY as the fallback. One code path for both commands: they differ only in the URL.
 *
 * Mirrors client-go `tools/remotecommand` (NewWebSocketExecutor: a GET upgrade; NewSPDYExecutor: a
 * POST upgrade; NewFallbackExecutor: run the primary, and run the secondary only when the primary
 * failed with `httpstream.IsUpgradeFailure`, i.e. the server answered the WebSocket handshake
 * with something other than 101 — an old apiserver's 400, a proxy's 403) and kubectl
 * `pkg/cmd/util` RemoteCommandWebsockets (`KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false` forces SPDY).
 *
 * As client-go's NewWebSocketExecutor, the WebSocket offers `v5.channel.k8s.io` only ("for correct
 * version skew functionality"): v5 is the first version whose client can close stdin (the CLOSE
 * message). A server that speaks only v4 and older refuses the handshake, and the fallback goes
 * to SPDY, where a FIN closes stdin; offering v4 instead would leave `kexec -i … -- cat` waiting
 * forever at stdin EOF (v4 cannot half-close, kubernetes#89899).
 *
 * Differences: `--protocol websocket` and `spdy` pin one transport without a fallback; the
 * clients are loaded on first use, so `kexec --help` does not pay for them.
 */
import type { Readable, Writable } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import type { Status } from '../shared/status.js';
import type { UpgradeResponse } from '../shared/remotecommand/websocket-client.js';

/** The one WebSocket subprotocol offered (client-go `remotecommand.StreamProtocolV5Name`). */
export const WEBSOCKET_PROTOCOL = 'v5.channel.k8s.io';

export const STREAM_PROTOCOLS = ['websocket', 'spdy', 'auto'] as const;
export type StreamProtocol = (typeof STREAM_PROTOCOLS)[number];

/** kubectl's switch for exec, attach and cp. */
export const REMOTE_COMMAND_WEBSOCKETS_ENV = 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS';

/** What both remotecommand clients take (shared/remotecommand and shared/spdy). */
export interface StreamClientOptions {
  url: string;
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
  stdin?: Readable | null;
  stdout?: Writable | null;
  stderr?: Writable | null;
  tty?: boolean;
  resize?: (send: (size: { width: number; height: number }) => void) => () => void;
  /** The 101's head and the subprotocol chosen (kexec -v, verbose.ts). */
  onUpgrade?: (res: UpgradeResponse) => void;
  /** WebSocket pings this often (client-go: 5 s). */
  pingIntervalMs?: number;
  /** Subprotocols offered: the WebSocket client is given [WEBSOCKET_PROTOCOL]. */
  protocols?: readonly string[];
}

export interface StreamClientResult {
  status: Status;
  exitCode: number;
  protocol?: string;
}

export type StreamClient = (opts: StreamClientOptions) => Promise<StreamClientResult>;

/** The clients, injectable for tests; absent ones are imported when first needed. */
export interface StreamClients {
  /** shared/remotecommand/websocket-client.ts runChannelClient. */
  runChannelClient?: StreamClient;
  /** shared/remotecommand/spdy-client.ts runSpdyClient. */
  runSpdyClient?: StreamClient;
}

/**
 * The protocol to use: the flag when given, else SPDY when the environment disables WebSockets
 * (any capitalisation of `false`, as kubectl reads it), else WebSocket falling back to SPDY, as
 * kubectl 1.30+ does (NewFallbackExecutor).
 */
export function resolveStreamProtocol(
  flag: StreamProtocol | undefined,
  env: NodeJS.ProcessEnv = process.env,
  envName = REMOTE_COMMAND_WEBSOCKETS_ENV,
): StreamProtocol {
  if (flag !== undefined) return flag;
  return env[envName]?.trim().toLowerCase() === 'false' ? 'spdy' : 'auto';
}

/**
 * httpstream.IsUpgradeFailure for our clients: the WebSocket handshake got an HTTP answer other
 * than 101 (the channel client's UpgradeRefusedError carries its code). A refused connection, a
 * TLS failure or a timeout are not upgrade failures: SPDY would fail the same way.
 */
export function isUpgradeFailure(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { httpCode?: unknown }).httpCode;
  return typeof code === 'number' && code !== 101 && code > 0;
}

async function websocketClient(clients: StreamClients): Promise<StreamClient> {
  return (
    clients.runChannelClient ?? (await import('../shared/remotecommand/websocket-client.js')).runChannelClient
  );
}

async function spdyClient(clients: StreamClients): Promise<StreamClient> {
  return clients.runSpdyClient ?? (await import('../shared/remotecommand/spdy-client.js')).runSpdyClient;
}

/**
 * Runs one remotecommand session with the chosen protocol. With `auto`, a WebSocket upgrade
 * failure is retried once over SPDY; nothing has been read from stdin by then (the channel
 * client starts reading it only after the 101), so the second attempt sees all of it.
 */
export async function streamRemoteCommand(
  protocol: StreamProtocol,
  opts: StreamClientOptions,
  clients: StreamClients = {},
  onFallback?: (err: unknown) => void,
): Promise<StreamClientResult> {
  if (protocol === 'spdy') return (await spdyClient(clients))(opts);
  const ws = await websocketClient(clients);
  const wsOpts = { ...opts, protocols: [WEBSOCKET_PROTOCOL] };
  if (protocol === 'websocket') return ws(wsOpts);
  try {
    return await ws(wsOpts);
  } catch (err) {
    if (!isUpgradeFailure(err)) throw err;
    onFallback?.(err);
    return (await spdyClient(clients))(opts);
  }
}
