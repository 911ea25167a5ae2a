/**
 * Sees the response head written on a hijacked (upgrade) connection, whoever writes it: the
 * relayed 101 of a splice, the StreamTranslator's WebSocket handshake, a refusal Status. It adds
 * headers the server owes every response (the apiserver's `Audit-Id`) and reports the status code
 * and the head's length in bytes (where the stream's own bytes start, for byte counts).
 *
 * Mirrors the response writer decorators of k8s.io/apiserver `pkg/endpoints/filters/audit.go`
 * (auditResponseWriter, which notes the code at WriteHeader and assumes 101 at Hijack) for a
 * connection that Node hands over raw: the first chunk written (by `write` or `end`) is the head,
 * as every writer here sends it in one piece. Unlike upstream's Hijack, the real code is seen, so a
 * refused upgrade is reported as refused.
 */
import type { Duplex } from 'node:stream';

type WriteFn = (...args: unknown[]) => boolean;
type EndFn = (...args: unknown[]) => Duplex;

export function onResponseHead(
  socket: Duplex,
  headers: Record<string, string>,
  seen: (code: number, headBytes: number) => void,
): void {
  const write = socket.write as unknown as WriteFn;
  const end = socket.end as unknown as EndFn;
  const restore = (): void => {
    socket.write = write as unknown as Duplex['write'];
    socket.end = end as unknown as Duplex['end'];
  };
  const stamp = (chunk: unknown): unknown => {
    restore();
    const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('latin1') : '';
    const m = /^HTTP\/1\.[01] (\d{3})[^\r\n]*\r\n/.exec(text);
    if (!m) return chunk;
    const extra = Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    const stamped = m[0] + extra + text.slice(m[0].length);
    const end = stamped.indexOf('\r\n\r\n');
    const head = end < 0 ? stamped : stamped.slice(0, end + 4);
    seen(Number(m[1]), typeof chunk === 'string' ? Buffer.byteLength(head) : head.length);
    return typeof chunk === 'string' ? stamped : Buffer.from(stamped, 'latin1');
  };
  socket.write = function (this: Duplex, chunk: unknown, ...rest: unknown[]) {
    return write.call(this, stamp(chunk), ...rest);
  } as unknown as Duplex['write'];
  socket.end = function (this: Duplex, chunk?: unknown, ...rest: unknown[]) {
    if (chunk === undefined || typeof chunk === 'function') {
      restore();
      return end.call(this, chunk, ...rest);
    }
    return end.call(this, stamp(chunk), ...rest);
  } as unknown as Duplex['end'];
}
