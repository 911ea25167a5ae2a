/**
 * Encoding and decoding of single channel messages for every channel.k8s.io subprotocol.
 *
 * Pure functions over one WebSocket message (binary Buffer or text string); the socket handling
 * lives in websocket-server.ts and websocket-client.ts. Every malformed message becomes a
 * RemoteCommandError with a stable code, never an exception of another kind.
 */
import { Channel, CLOSE_SIGNAL, type ChannelProtocol } from './protocol.js';

export type RemoteCommandErrorCode =
  'EMPTY_MESSAGE' | 'UNKNOWN_CHANNEL' | 'BAD_BASE64' | 'BAD_CLOSE' | 'BAD_RESIZE';

export class RemoteCommandError extends Error {
  constructor(
    readonly code: RemoteCommandErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RemoteCommandError';
  }
}

export type Decoded = { kind: 'data'; channel: number; payload: Buffer } | { kind: 'close'; channel: number };

/** Channels a message may name (stdin … resize). */
const MAX_CHANNEL = Channel.Resize;

/** One message for `channel`: a binary frame, or a text frame for the base64 protocols. */
export function encodeMessage(proto: ChannelProtocol, channel: number, payload: Buffer): Buffer | string {
  if (proto.base64) return String.fromCharCode(48 + channel) + payload.toString('base64');
  const out = Buffer.allocUnsafe(payload.length + 1);
  out[0] = channel;
  payload.copy(out, 1);
  return out;
}

/** The v5 CLOSE message for `channel`: exactly two bytes. */
export function encodeClose(channel: number): Buffer {
  return Buffer.from([CLOSE_SIGNAL, channel]);
}

/**
 * Decodes one received message; throws RemoteCommandError when it is malformed. Text and binary
 * WebSocket messages are read alike, as wsstream's `websocket.Message.Receive` into a []byte does
 * (golang.org/x/net `websocket/websocket.go` unmarshal): Python's client sends a `str` stdin or
 * resize as a text message.
 */
export function decodeMessage(proto: ChannelProtocol, data: Buffer): Decoded {
  if (proto.base64) return decodeBase64(data.toString('utf8'));
  if (data.length === 0) throw new RemoteCommandError('EMPTY_MESSAGE', 'empty message: no channel byte');
  const channel = data[0]!;
  if (channel === CLOSE_SIGNAL && proto.version >= 5) {
    if (data.length !== 2) {
      throw new RemoteCommandError('BAD_CLOSE', `close message must be exactly 2 bytes, got ${data.length}`);
    }
    return { kind: 'close', channel: checkChannel(data[1]!) };
  }
  return { kind: 'data', channel: checkChannel(channel), payload: data.subarray(1) };
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function decodeBase64(text: string): Decoded {
  if (text.length === 0) throw new RemoteCommandError('EMPTY_MESSAGE', 'empty message: no channel character');
  const code = text.charCodeAt(0) - 48;
  if (code < 0 || code > 9) {
    throw new RemoteCommandError('UNKNOWN_CHANNEL', `invalid channel character ${JSON.stringify(text[0])}`);
  }
  const body = text.slice(1);
  if (!BASE64.test(body)) throw new RemoteCommandError('BAD_BASE64', 'payload is not valid base64');
  return { kind: 'data', channel: checkChannel(code), payload: Buffer.from(body, 'base64') };
}

function checkChannel(channel: number): number {
  if (channel > MAX_CHANNEL) throw new RemoteCommandError('UNKNOWN_CHANNEL', `unknown channel ${channel}`);
  return channel;
}

export interface TerminalSize {
  width: number;
  height: number;
}

/**
 * A resize message's JSON. Go decodes the keys case-insensitively (`{"Width":80,"Height":24}` from
 * kubectl, `{"width":…,"height":…}` from @kubernetes/client-node); sizes are uint16 upstream.
 */
export function decodeResize(payload: Buffer): TerminalSize {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch {
    throw new RemoteCommandError('BAD_RESIZE', 'resize message is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RemoteCommandError('BAD_RESIZE', 'resize message is not a JSON object');
  }
  const size: Partial<TerminalSize> = {};
  for (const [k, v] of Object.entries(parsed)) {
    const key = k.toLowerCase();
    if (key !== 'width' && key !== 'height') continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new RemoteCommandError('BAD_RESIZE', `resize ${key} must be an integer from 0 to 65535`);
    }
    size[key] = v;
  }
  return { width: size.width ?? 0, height: size.height ?? 0 };
}

export function encodeResize(size: TerminalSize): Buffer {
  return Buffer.from(JSON.stringify({ Width: size.width, Height: size.height }));
}
