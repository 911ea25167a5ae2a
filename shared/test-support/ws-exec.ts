/**
 * Test helper: a raw `ws` client speaking remotecommand v5.channel.k8s.io by hand (any hop: the
 * apiserver, a kubelet, a CRI streaming URL), so tests check the bytes on the wire (stdout on
 * channel 1, stderr on 2, the exit Status on 3) rather than our own client's reading of them.
 */
import WebSocket from 'ws';

export interface ExecResult {
  protocol: string;
  stdout: string;
  stderr: string;
  /** Raw bytes of the error channel (JSON Status under v4/v5). */
  error: string;
  status?: {
    status: string;
    reason?: string;
    message?: string;
    details?: { causes?: { reason?: string; message?: string }[] };
  };
  /** Channels of every message, in order (the first is the empty "ready" message). */
  channels: number[];
}

export interface Refusal {
  code: number;
  body: string;
}

/** Opens the session; resolves when the server closes it. */
export function wsExec(
  url: string,
  opts: {
    headers?: Record<string, string>;
    stdin?: string;
    protocols?: string[];
    onOpen?: (ws: WebSocket) => void;
    timeoutMs?: number;
  } = {},
): Promise<ExecResult> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), opts.protocols ?? ['v5.channel.k8s.io'], {
    headers: opts.headers,
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const errorCh: Buffer[] = [];
  const channels: number[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`exec session did not end within ${opts.timeoutMs ?? 15000} ms`));
    }, opts.timeoutMs ?? 15000);
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        reject(
          Object.assign(new Error(`refused: ${res.statusCode} ${Buffer.concat(chunks).toString()}`), {
            refusal: { code: res.statusCode, body: Buffer.concat(chunks).toString() },
          }),
        );
      });
    });
    ws.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    ws.on('open', () => {
      if (opts.stdin !== undefined) {
        ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(opts.stdin)]));
        ws.send(Buffer.from([255, 0]));
      }
      opts.onOpen?.(ws);
    });
    ws.on('message', (data: Buffer) => {
      channels.push(data[0]!);
      const payload = data.subarray(1);
      if (data[0] === 1) out.push(payload);
      else if (data[0] === 2) err.push(payload);
      else if (data[0] === 3) errorCh.push(payload);
    });
    ws.on('close', () => {
      clearTimeout(timer);
      const error = Buffer.concat(errorCh).toString();
      resolve({
        protocol: ws.protocol,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        error,
        status: error ? (JSON.parse(error) as ExecResult['status']) : undefined,
        channels,
      });
    });
  });
}

/** The refusal (status code and body) of a streaming URL that does not upgrade. */
export async function wsRefusal(url: string): Promise<Refusal> {
  try {
    await wsExec(url);
  } catch (e) {
    const r = (e as { refusal?: Refusal }).refusal;
    if (r) return r;
    throw e;
  }
  throw new Error('the upgrade was accepted');
}
