/**
 * The HTTP side of a SPDY/3.1 upgrade: header names, protocol-version negotiation, the 101.
 *
 * Mirrors apimachinery `pkg/util/httpstream/httpstream.go` (`Handshake`: the client offers one or
 * more `X-Stream-Protocol-Version` values, comma-separated or repeated; the server picks the first
 * the CLIENT listed that it supports; no header → 400; nothing in common → 403 naming what the
 * server accepts in `X-Accepted-Stream-Protocol-Versions`) and `pkg/util/httpstream/spdy/upgrade.go`
 * (`Connection: Upgrade` and `Upgrade: SPDY/3.1` required, and echoed in the 101).
 *
 * Differences: refusals are JSON Status bodies (upstream writes plain text with http.Error), and the
 * accepted versions go in one comma-separated header line rather than one line each.
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { failureStatus, writeStatusToSocket } from '../status.js';

export const HEADER_PROTOCOL_VERSION = 'X-Stream-Protocol-Version';
export const HEADER_ACCEPTED_PROTOCOL_VERSIONS = 'X-Accepted-Stream-Protocol-Versions';
export const SPDY_31 = 'SPDY/3.1';

/** kubelet and client-go: how long a client has to open its streams (and each to be answered). */
export const DEFAULT_STREAM_CREATION_TIMEOUT_MS = 30_000;

/** The `streamType` header values (core/v1 StreamType*), one stream per channel. */
export const StreamType = {
  Error: 'error',
  Stdin: 'stdin',
  Stdout: 'stdout',
  Stderr: 'stderr',
  Resize: 'resize',
} as const;
export type StreamTypeName = (typeof StreamType)[keyof typeof StreamType];

/**
 * What the kubelet's CRI streaming server offers over SPDY (apimachinery
 * `remotecommand.SupportedStreamingProtocols`): v4 down to v1. v5 exists only for WebSockets (its
 * CLOSE signal is what a SPDY FIN already does), so a client offering v5 first gets v4.
 */
export const SPDY_SERVER_PROTOCOLS: readonly string[] = [
  'v4.channel.k8s.io',
  'v3.channel.k8s.io',
  'v2.channel.k8s.io',
  'channel.k8s.io',
];

/** What a client here offers: v4 down to v1 (client-go also offers v5, which servers treat as v4). */
export const SPDY_CLIENT_PROTOCOLS: readonly string[] = SPDY_SERVER_PROTOCOLS;

function hasToken(value: string | string[] | undefined, token: string): boolean {
  const all = Array.isArray(value) ? value.join(',') : (value ?? '');
  return all.toLowerCase().includes(token.toLowerCase());
}

/** `Connection: upgrade` and `Upgrade: SPDY/3.1`, case-insensitively (as upstream, by substring). */
export function isSpdyUpgrade(headers: IncomingHttpHeaders): boolean {
  return hasToken(headers.connection, 'upgrade') && hasToken(headers.upgrade, SPDY_31);
}

/**
 * The protocol versions a request offers, in its order: every `X-Stream-Protocol-Version` line,
 * split on commas. Undefined when the header is absent.
 */
export function offeredProtocols(req: IncomingMessage): string[] | undefined {
  const lines = req.headersDistinct[HEADER_PROTOCOL_VERSION.toLowerCase()];
  if (!lines) return undefined;
  return lines
    .flatMap((l) => l.split(','))
    .map((p) => p.trim())
    .filter(Boolean);
}

/** The first protocol the client offered that the server supports. */
export function negotiate(offered: readonly string[], supported: readonly string[]): string | undefined {
  return offered.find((p) => supported.includes(p));
}

/** Writes the 101 that completes the upgrade. */
export function writeSwitchingProtocols(socket: Duplex, protocol: string): void {
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      `Upgrade: ${SPDY_31}\r\n` +
      `${HEADER_PROTOCOL_VERSION}: ${protocol}\r\n\r\n`,
  );
}

/**
 * The server side of the handshake, as apimachinery `httpstream.Handshake`: checks the upgrade
 * headers, picks the first offered protocol the server supports and writes the 101. A refusal is
 * a Status on the socket (400 for a missing or empty header, 403 with the accepted versions when
 * nothing matches) and returns undefined.
 */
export function acceptSpdyUpgrade(
  req: IncomingMessage,
  socket: Duplex,
  supported: readonly string[],
): string | undefined {
  if (!isSpdyUpgrade(req.headers)) {
    writeStatusToSocket(socket, failureStatus(400, 'unable to upgrade: missing upgrade headers in request'));
    return undefined;
  }
  const offered = offeredProtocols(req);
  if (!offered || offered.length === 0) {
    const why = offered ? 'contains no valid protocols' : 'does not exist in request';
    writeStatusToSocket(
      socket,
      failureStatus(400, `unable to upgrade: header ${HEADER_PROTOCOL_VERSION} ${why}`),
    );
    return undefined;
  }
  const chosen = negotiate(offered, supported);
  if (!chosen) {
    const message =
      `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], ` +
      `server accepts [${supported.join(' ')}]`;
    writeStatusToSocket(socket, failureStatus(403, message), {
      [HEADER_ACCEPTED_PROTOCOL_VERSIONS]: supported.join(', '),
    });
    return undefined;
  }
  writeSwitchingProtocols(socket, chosen);
  return chosen;
}
