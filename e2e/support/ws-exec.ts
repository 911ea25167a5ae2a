/**
 * Test helper: a raw `ws` client speaking remotecommand v5.channel.k8s.io by hand, so tests check
 * the bytes on the wire (stdout on channel 1, the exit Status on channel 3).
 */
import WebSocket from 'ws';

export interface WsExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  status?: { status: string; message?: string; reason?: string };
}

export function wsExec(
  url: string,
  headers: Record<string, string>,
  timeoutMs = 15_000,
): Promise<WsExecResult> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io'], { headers });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const status: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`exec session did not end within ${timeoutMs} ms`));
    }, timeoutMs);
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        reject(new Error(`refused: ${res.statusCode} ${Buffer.concat(chunks).toString()}`));
      });
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('message', (data: Buffer) => {
      const payload = data.subarray(1);
      if (data[0] === 1) out.push(payload);
      else if (data[0] === 2) err.push(payload);
      else if (data[0] === 3) status.push(payload);
    });
    ws.on('close', () => {
      clearTimeout(timer);
      const s = Buffer.concat(status).toString();
      resolve({
        protocol: ws.protocol,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        ...(s ? { status: JSON.parse(s) as WsExecResult['status'] } : {}),
      });
    });
  });
}
