/**
 * Terminal sizes from a SPDY resize stream: JSON objects back to back (`{"Width":80,"Height":24}`,
 * usually each followed by a newline, as Go's json.Encoder writes them), split on arbitrary chunk
 * boundaries.
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/remotecommand/httpstream.go` (`handleResizeEvents`:
 * a json.Decoder over the stream). Differences: each object is bounded in size, and anything but
 * whitespace between objects is an error (the Go decoder would stop at it silently).
 */
import { decodeResize, RemoteCommandError, type TerminalSize } from './codec.js';

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const WHITESPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

export class ResizeDecoder {
  private parts: Buffer[] = [];
  private size = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;

  constructor(private readonly maxObjectBytes = 1024) {}

  /** The sizes completed by `chunk`. Throws RemoteCommandError BAD_RESIZE on malformed input. */
  push(chunk: Buffer): TerminalSize[] {
    const out: TerminalSize[] = [];
    let start = -1; // where the current object begins within chunk
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.depth === 0) {
        if (WHITESPACE.has(b)) continue;
        if (b !== OPEN) throw new RemoteCommandError('BAD_RESIZE', 'resize stream: expected a JSON object');
        start = i;
        this.depth = 1;
        continue;
      }
      if (start < 0) start = i;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
      } else if (b === QUOTE) this.inString = true;
      else if (b === OPEN) this.depth++;
      else if (b === CLOSE && --this.depth === 0) {
        this.append(chunk.subarray(start, i + 1));
        out.push(decodeResize(Buffer.concat(this.parts, this.size)));
        this.parts = [];
        this.size = 0;
        start = -1;
      }
    }
    if (this.depth > 0 && start >= 0) this.append(chunk.subarray(start));
    return out;
  }

  private append(part: Buffer): void {
    this.size += part.length;
    if (this.size > this.maxObjectBytes) {
      throw new RemoteCommandError('BAD_RESIZE', `resize message longer than ${this.maxObjectBytes} bytes`);
    }
    this.parts.push(part);
  }
}
