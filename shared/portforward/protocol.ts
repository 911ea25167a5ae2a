/**
 * Port-forward on the wire, the parts both ends share: subprotocol names, how the ports are asked
 * for, which WebSocket channel carries what, the port prefix, and the framing of one message.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/portforward/` (websocket.go: v4 channels and port
 * prefix; httpstream.go and constants.go: the SPDY protocol name and stream headers;
 * portforward.go: NewV4Options, which reads the `port` query values) and apimachinery
 * `pkg/util/wsstream/conn.go` (message framing).
 *
 * WebSocket (`v4.channel.k8s.io`, `v4.base64.channel.k8s.io`, or no subprotocol = binary):
 * the i-th requested port gets channel 2i for its data (both ways) and 2i+1 for its errors (server
 * to client, text). The server's first message on each of the two channels is the port number as
 * two bytes, little-endian. Binary messages are one channel byte then the payload; base64 ones are
 * text, `'0' + channel` then the payload in base64. There is no half-close in v4.
 */

/** The SPDY port-forward protocol (`X-Stream-Protocol-Version`). */
export const PORT_FORWARD_PROTOCOL_V1 = 'portforward.k8s.io';
export const V4_BINARY = 'v4.channel.k8s.io';
export const V4_BASE64 = 'v4.base64.channel.k8s.io';
/** WebSocket subprotocols a port-forward server accepts, in preference order. */
export const WEBSOCKET_PROTOCOLS: readonly string[] = [V4_BINARY, V4_BASE64];

/** SPDY stream headers (kubelet portforward constants.go / api.PortHeader …). */
export const HEADER_STREAM_TYPE = 'streamType';
export const HEADER_PORT = 'port';
export const HEADER_REQUEST_ID = 'requestID';
export const STREAM_TYPE_DATA = 'data';
export const STREAM_TYPE_ERROR = 'error';

/** Channels are one byte: at most 128 ports (two channels each) on one connection. */
export const MAX_PORTS = 128;

export type PortForwardErrorCode =
  | 'BAD_PORT'
  | 'NO_PORTS'
  | 'TOO_MANY_PORTS'
  | 'EMPTY_MESSAGE'
  | 'UNKNOWN_CHANNEL'
  | 'BAD_BASE64'
  | 'BAD_PREFIX'
  | 'UPGRADE_REFUSED'
  | 'REMOTE_ERROR'
  | 'CONNECTION_CLOSED';

export class PortForwardError extends Error {
  constructor(
    readonly code: PortForwardErrorCode,
    message: string,
    /** For UPGRADE_REFUSED: the HTTP status of the refusal. */
    readonly httpCode?: number,
  ) {
    super(message);
    this.name = 'PortForwardError';
  }
}

export const dataChannel = (index: number): number => 2 * index;
export const errorChannel = (index: number): number => 2 * index + 1;

/** A port number as a decimal string: 1-65535, nothing else. */
export function parsePort(text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw new PortForwardError('BAD_PORT', `unable to parse "${text}" as a port`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new PortForwardError('BAD_PORT', `port "${text}" must be 1-65535`);
  return port;
}

/**
 * The ports of a request: every value of the query parameter (`port` at the kubelet and the CRI
 * streaming server, `ports` at the apiserver), each possibly comma-separated (`?port=80,443` is
 * what the apiserver sends the kubelet). Empty when the parameter is absent.
 */
export function parsePortsQuery(query: URLSearchParams, name = 'port'): number[] {
  const ports: number[] = [];
  for (const value of query.getAll(name)) {
    if (value === '') throw new PortForwardError('BAD_PORT', `query parameter "${name}" cannot be empty`);
    for (const p of value.split(',')) ports.push(parsePort(p.trim()));
  }
  if (ports.length > MAX_PORTS) {
    throw new PortForwardError('TOO_MANY_PORTS', `at most ${MAX_PORTS} ports can be forwarded at once`);
  }
  return ports;
}

/** The two-byte little-endian port prefix of each channel. */
export function encodePortPrefix(port: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(port, 0);
  return b;
}

export function decodePortPrefix(b: Buffer): number {
  if (b.length < 2) throw new PortForwardError('BAD_PREFIX', 'port prefix needs two bytes');
  return b.readUInt16LE(0);
}

/** One message for `channel`: binary, or text for the base64 protocol. */
export function encodeFrame(base64: boolean, channel: number, payload: Buffer): Buffer | string {
  if (base64) return String.fromCharCode(48 + channel) + payload.toString('base64');
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = channel;
  payload.copy(out, 1);
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Decodes one received message, text or binary alike (as wsstream); `channels` is how many exist (2 × ports). */
export function decodeFrame(
  base64: boolean,
  data: Buffer,
  channels: number,
): { channel: number; payload: Buffer } {
  let channel: number;
  let payload: Buffer;
  if (base64) {
    const text = data.toString('utf8');
    if (text.length === 0) throw new PortForwardError('EMPTY_MESSAGE', 'empty message: no channel character');
    channel = text.charCodeAt(0) - 48;
    if (!BASE64.test(text.slice(1))) throw new PortForwardError('BAD_BASE64', 'payload is not valid base64');
    payload = Buffer.from(text.slice(1), 'base64');
  } else {
    if (data.length === 0) throw new PortForwardError('EMPTY_MESSAGE', 'empty message: no channel byte');
    channel = data[0]!;
    payload = data.subarray(1);
  }
  if (channel < 0 || channel >= channels) {
    throw new PortForwardError('UNKNOWN_CHANNEL', `unknown channel ${channel}`);
  }
  return { channel, payload };
}
