/**
 * The channel.k8s.io family of WebSocket subprotocols that carry remotecommand (exec, attach).
 *
 * Mirrors apimachinery `pkg/util/remotecommand/constants.go` and `pkg/util/wsstream/conn.go`:
 * - v1 `channel.k8s.io`: binary messages, one channel byte then the payload; errors as text;
 * - v2 `v2.channel.k8s.io`: same framing, stdin handled properly (no wait on an unused stdin);
 * - v3 `v3.channel.k8s.io`: adds the resize channel (4);
 * - v4 `v4.channel.k8s.io`: the error channel carries a JSON metav1.Status, always;
 * - v5 `v5.channel.k8s.io`: adds CLOSE, two bytes `[255, channel]`, to half-close a stream
 *   (kubernetes#89899: before it, a client could only close stdin by closing the socket);
 * - `base64.channel.k8s.io`, `v4.base64.channel.k8s.io`: text messages, `'0' + channel` then the
 *   payload in base64 (for browsers that could not send binary frames).
 */

export const Channel = { Stdin: 0, Stdout: 1, Stderr: 2, Error: 3, Resize: 4 } as const;
export type ChannelId = (typeof Channel)[keyof typeof Channel];

/** The first byte of a v5 CLOSE message. */
export const CLOSE_SIGNAL = 255;

export interface ChannelProtocol {
  /** The subprotocol as negotiated ('' when the client offered none). */
  name: string;
  version: 1 | 2 | 3 | 4 | 5;
  base64: boolean;
}

const KNOWN: readonly ChannelProtocol[] = [
  { name: 'v5.channel.k8s.io', version: 5, base64: false },
  { name: 'v4.channel.k8s.io', version: 4, base64: false },
  { name: 'v4.base64.channel.k8s.io', version: 4, base64: true },
  { name: 'v3.channel.k8s.io', version: 3, base64: false },
  { name: 'v2.channel.k8s.io', version: 2, base64: false },
  { name: 'channel.k8s.io', version: 1, base64: false },
  { name: 'base64.channel.k8s.io', version: 1, base64: true },
];

/** Every subprotocol a server here accepts, newest first. */
export const SERVER_PROTOCOLS: readonly string[] = KNOWN.map((p) => p.name);

/** What a client here offers by default: binary protocols, newest first (as @kubernetes/client-node). */
export const CLIENT_PROTOCOLS: readonly string[] = [
  'v5.channel.k8s.io',
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];

/**
 * The protocol for a negotiated subprotocol name. A client that offered no subprotocol gets the
 * original binary channel protocol, as wsstream does for an empty protocol.
 */
export function protocolByName(name: string): ChannelProtocol | undefined {
  if (name === '') return { name: '', version: 1, base64: false };
  return KNOWN.find((p) => p.name === name);
}

/**
 * Picks the subprotocol for a handshake: the first one the CLIENT offered that the server
 * supports (wsstream `handshake` walks the client's list in order).
 */
export function negotiateProtocol(
  offered: Iterable<string>,
  supported: readonly string[] = SERVER_PROTOCOLS,
): string | undefined {
  for (const p of offered) if (supported.includes(p)) return p;
  return undefined;
}
