/**
 * An exec over a WebSocket spoken by hand on one TLS connection, so that a test sees the exact
 * response head (the 101 and its `Audit-Id`) and counts every stream byte each way: what the
 * `/metrics` byte counters of each hop must then show. The client sends nothing but the masked
 * close frame that answers the server's close (6 bytes).
 */
import { randomBytes } from 'node:crypto';
import tls from 'node:tls';

export interface RawExecResult {
  status: number;
  headers: Record<string, string>;
  /** Stream bytes the client sent after its request head. */
  up: number;
  /** Stream bytes received after the response head. */
  down: number;
  /** Channel 1's payload. */
  stdout: string;
}

export function rawExec(
  apiserverUrl: string,
  token: string,
  ca: string,
  path: string,
  protocol: string,
): Promise<RawExecResult> {
  const url = new URL(apiserverUrl);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: url.hostname, port: Number(url.port), ca });
    const timer = setTimeout(() => socket.destroy(new Error('raw exec timed out')), 30_000);
    let buf = Buffer.alloc(0);
    let head: { status: number; headers: Record<string, string> } | undefined;
    let up = 0;
    let received = 0;
    let headLength = 0;
    let stdout = '';
    let parsed = 0;
    socket.on('secureConnect', () => {
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\n` +
          `Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`,
      );
    });
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
      buf = Buffer.concat([buf, chunk]);
      if (!head) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
        const headers: Record<string, string> = {};
        for (const l of lines.slice(1)) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        head = { status: Number(lines[0]!.split(' ')[1]), headers };
        headLength = end + 4;
        buf = buf.subarray(end + 4);
        if (head.status !== 101) return;
      }
      if (head.status !== 101) return;
      // Server frames are unmasked: FIN/opcode, length (7, 16 or 64 bits), payload.
      for (;;) {
        const rest = buf.subarray(parsed);
        if (rest.length < 2) break;
        let len = rest[1]! & 0x7f;
        let off = 2;
        if (len === 126) {
          if (rest.length < 4) break;
          len = rest.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (rest.length < 10) break;
          len = Number(rest.readBigUInt64BE(2));
          off = 10;
        }
        if (rest.length < off + len) break;
        const opcode = rest[0]! & 0x0f;
        const payload = rest.subarray(off, off + len);
        if (opcode === 2 && payload[0] === 1) stdout += payload.subarray(1).toString('utf8');
        if (opcode === 8) {
          const close = Buffer.from([0x88, 0x80, ...randomBytes(4)]);
          up += close.length;
          socket.write(close);
        }
        parsed += off + len;
      }
    });
    socket.on('error', reject);
    socket.on('close', () => {
      clearTimeout(timer);
      if (!head) return reject(new Error('connection closed before a response head'));
      resolve({ ...head, up, down: received - headLength, stdout });
    });
  });
}
