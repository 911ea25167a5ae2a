/**
 * Helpers for driving the lab with @kubernetes/client-node 1.x the way its users do: a KubeConfig
 * loaded from the lab's kubeconfig (server, CA, token all from there), Exec/Attach with plain
 * streams, and a stdout that looks like a terminal (rows, columns, 'resize') for tty sessions.
 * Also a raw `ws` client that takes the same CA and token from the kubeconfig, for sending
 * messages client-node never would.
 */
import { once } from 'node:events';
import { PassThrough, Readable, type Writable } from 'node:stream';
import * as k8s from '@kubernetes/client-node';
import WebSocket from 'ws';

export function loadKubeConfig(file: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

/** A Writable that keeps everything written to it. */
export class Sink extends PassThrough {
  private readonly chunks: Buffer[] = [];
  constructor() {
    super();
    this.on('data', (c: Buffer) => this.chunks.push(c));
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
  get text(): string {
    return this.buffer.toString('utf8');
  }
  /** Resolves once the text satisfies `test`; rejects after `timeoutMs` or if the sink ends first. */
  async waitFor(test: (text: string) => boolean, timeoutMs: number, what = 'output'): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (!test(this.text)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.text)}`);
      if (this.readableEnded || this.destroyed) {
        throw new Error(`stream ended before ${what}; got ${JSON.stringify(this.text)}`);
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.off('data', done);
          this.off('end', done);
          this.off('close', done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.on('data', done);
        this.on('end', done);
        this.on('close', done);
      });
    }
    return this.text;
  }
}

/**
 * A stdout that client-node's `isResizable` takes for a terminal: it has `rows`, `columns` and
 * emits 'resize', like a tty.WriteStream. Exec/Attach then open a TerminalSizeQueue and send
 * `{"height":rows,"width":columns}` on the resize channel, first at once, then on every 'resize'.
 */
export class TerminalSink extends Sink {
  constructor(
    public columns: number,
    public rows: number,
  ) {
    super();
  }
  resize(columns: number, rows: number): void {
    this.columns = columns;
    this.rows = rows;
    this.emit('resize');
  }
}

/** `data` as a stream of `chunk`-byte pieces, as a file or a pipe would deliver it. */
export function chunkedReadable(data: Buffer, chunk = 64 * 1024): Readable {
  let offset = 0;
  return new Readable({
    read() {
      if (offset >= data.length) return void this.push(null);
      this.push(data.subarray(offset, offset + chunk));
      offset += chunk;
    },
  });
}

/** The exit code a client derives from a remotecommand Status (as kubectl does), or undefined. */
export function exitCodeOf(status: k8s.V1Status | undefined): number | undefined {
  if (!status) return undefined;
  if (status.status === 'Success') return 0;
  if (status.reason !== 'NonZeroExitCode') return undefined;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : undefined;
}

export interface ExecResult {
  status: k8s.V1Status | undefined;
  exitCode: number | undefined;
  stdout: Buffer;
  stderr: string;
  /** The WebSocket close code the client saw. */
  closeCode: number;
  /** From the Status (client-node then closes) to the connection being closed. */
  statusToCloseMs: number | undefined;
}

export interface ExecOptions {
  container?: string;
  stdin?: Readable;
  /** A terminal stdout (tty=true); stderr is then not requested, as kubectl -t does. */
  terminal?: TerminalSink;
  /** Called once the WebSocket is open (e.g. to resize or type). */
  onOpen?: (ws: WebSocket, out: Sink) => void | Promise<void>;
  timeoutMs?: number;
}

/** Runs one command through client-node's Exec and waits (bounded) for the connection to close. */
export async function clientExec(
  kc: k8s.KubeConfig,
  pod: string,
  command: string[],
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const out = opts.terminal ?? new Sink();
  const err = opts.terminal ? null : new Sink();
  let status: k8s.V1Status | undefined;
  let statusAt: number | undefined;
  const ws = (await new k8s.Exec(kc).exec(
    'default',
    pod,
    opts.container ?? pod,
    command,
    out,
    err,
    opts.stdin ?? null,
    opts.terminal !== undefined,
    (s) => {
      status = s;
      statusAt = Date.now();
    },
  )) as unknown as WebSocket;
  const closed = once(ws, 'close') as Promise<[number, Buffer]>;
  await opts.onOpen?.(ws, out);
  const [closeCode] = await withTimeout(closed, opts.timeoutMs ?? 30_000, `exec ${command.join(' ')}`);
  const statusToCloseMs = statusAt === undefined ? undefined : Date.now() - statusAt;
  return {
    status,
    exitCode: exitCodeOf(status),
    stdout: out.buffer,
    stderr: err?.text ?? '',
    closeCode,
    statusToCloseMs,
  };
}

export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Ends `w` and waits for it to finish (streams client-node ends itself, e.g. on the Status). */
export function finished(w: Writable): Promise<void> {
  if (w.writableFinished) return Promise.resolve();
  return new Promise((resolve, reject) => {
    w.once('finish', resolve);
    w.once('error', reject);
  });
}

/**
 * A raw WebSocket to the apiserver with the kubeconfig's CA (`certificate-authority-data`) and
 * bearer token, offering `protocols`. Resolves once open (rejects on a refused upgrade).
 */
export async function rawWebSocket(
  kc: k8s.KubeConfig,
  apiPath: string,
  protocols: string[],
): Promise<WebSocket> {
  const cluster = kc.getCurrentCluster();
  const user = kc.getCurrentUser();
  if (!cluster || !user?.token) throw new Error('kubeconfig has no current cluster or token');
  const url = new URL(apiPath, cluster.server);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ca = cluster.caData ? Buffer.from(cluster.caData, 'base64') : undefined;
  const ws = new WebSocket(url, protocols, {
    headers: { Authorization: `Bearer ${user.token}` },
    ...(ca ? { ca } : {}),
  });
  ws.on('error', () => {});
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('unexpected-response', (_req, res) =>
        reject(new Error(`upgrade refused: ${res.statusCode ?? 0}`)),
      );
      ws.once('error', reject);
    }),
    10_000,
    `WebSocket ${apiPath}`,
  );
  return ws;
}

export interface TarEntry {
  name: string;
  type: string;
  data: Buffer;
}

/**
 * The entries of an uncompressed ustar/GNU tar archive (enough to check what `tar cf` sent: pax
 * and GNU long-name headers are skipped, not interpreted). Bounded by the archive's length.
 */
export function readTar(archive: Buffer): TarEntry[] {
  const entries: TarEntry[] = [];
  const field = (h: Buffer, start: number, len: number) =>
    h
      .subarray(start, start + len)
      .toString('utf8')
      .replace(/\0.*$/s, '');
  for (let off = 0; off + 512 <= archive.length;) {
    const h = archive.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const size = parseInt(field(h, 124, 12).trim() || '0', 8);
    const type = field(h, 156, 1) || '0';
    const prefix = field(h, 345, 155);
    const name = prefix ? `${prefix}/${field(h, 0, 100)}` : field(h, 0, 100);
    const data = archive.subarray(off + 512, off + 512 + size);
    if (!['x', 'g', 'L', 'K'].includes(type)) entries.push({ name, type, data });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return entries;
}
