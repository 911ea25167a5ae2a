/**
 * The one error type of the SPDY layer: every malformed frame, exceeded limit or broken
 * connection becomes a SpdyError with a stable `code`, never an exception of another kind.
 *
 * Mirrors moby/spdystream `spdy/types.go` (`Error` with an `ErrorCode`) and the RST_STREAM and
 * GOAWAY status codes. spdystream reports most of these as a bare read error and drops the
 * connection; we keep the reason so a session can log and report it.
 */

export type SpdyErrorCode =
  /** A control frame with a version other than 3. */
  | 'UNSUPPORTED_VERSION'
  /** A frame longer than the configured maximum for its kind. */
  | 'FRAME_TOO_LARGE'
  /** A frame whose length or fields do not fit its type (zero stream id, RST status 0 …). */
  | 'INVALID_FRAME'
  /** A SETTINGS frame announcing more entries than allowed (CVE-2026-35469). */
  | 'TOO_MANY_SETTINGS'
  /** A header block announcing more headers than allowed (CVE-2026-35469). */
  | 'TOO_MANY_HEADERS'
  /** A header name or value over its limit (CVE-2026-35469). */
  | 'HEADER_TOO_LARGE'
  /** A header block, once decompressed, over its limit. */
  | 'HEADER_BLOCK_TOO_LARGE'
  /** A header block that does not parse (truncated, trailing bytes, empty name). */
  | 'BAD_HEADER_BLOCK'
  /** The zlib stream of header blocks is corrupt, or made with another dictionary. */
  | 'BAD_COMPRESSION'
  /** A frame that breaks the session rules (stream ids going backwards, wrong parity …). */
  | 'PROTOCOL_ERROR'
  /** DATA or a reply for a stream that was never opened. */
  | 'UNKNOWN_STREAM'
  /** DATA after the peer's FIN on that stream. */
  | 'STREAM_ALREADY_CLOSED'
  /** The peer made us queue more control frames (PING echoes, RST_STREAM answers) than allowed without reading them. */
  | 'TOO_MANY_CONTROL_FRAMES'
  /** The peer opened more concurrent streams than allowed. */
  | 'TOO_MANY_STREAMS'
  /** A stream was not answered (SYN_REPLY) in time, or streams were not created in time. */
  | 'TIMEOUT'
  /** The peer refused or reset a stream. */
  | 'STREAM_RESET'
  /** The connection is closed, or going away, and takes no new streams. */
  | 'CONNECTION_CLOSED'
  /** A header we were asked to send cannot be encoded (empty name, NUL in a value). */
  | 'INVALID_HEADER';

export class SpdyError extends Error {
  constructor(
    readonly code: SpdyErrorCode,
    message: string,
    /** The stream the error concerns, 0 when it concerns the connection. */
    readonly streamId = 0,
  ) {
    super(message);
    this.name = 'SpdyError';
  }
}

/** RST_STREAM status codes (SPDY/3 section 2.4.2). */
export const RstStatus = {
  ProtocolError: 1,
  InvalidStream: 2,
  RefusedStream: 3,
  UnsupportedVersion: 4,
  Cancel: 5,
  InternalError: 6,
  FlowControlError: 7,
  StreamInUse: 8,
  StreamAlreadyClosed: 9,
  FrameTooLarge: 11,
} as const;

/** GOAWAY status codes (SPDY/3 section 2.6.6). */
export const GoAwayStatus = { Ok: 0, ProtocolError: 1, InternalError: 2 } as const;
