/**
 * Test helper: a cri-shim on a temporary root with one ready sandbox, a CRI client, and a raw
 * interactive v5 WebSocket session (send stdin/resize/CLOSE while watching the output), for the
 * SPDY, terminal and attach tests.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { connectRuntime, type RuntimeServiceClient } from '../../shared/cri/client.js';
import type { ContainerConfigIn } from '../../shared/cri/types.js';
import type { IsolationMode } from '../isolation.js';
import { startCriShim, type CriShim, type CriShimOptions } from '../server.js';

export interface ShimFixture {
  shim: CriShim;
  rt: RuntimeServiceClient;
  sandboxId: string;
  /** Creates and starts a busybox container; returns its id. */
  start(config: Omit<ContainerConfigIn, 'metadata' | 'image'> & { name: string }): Promise<string>;
  /**
   * A TCP server where port-forward reaches it: inside the pod (a container of its own) under
   * bwrap, on the host's loopback under `none`. `echo` sends every byte back and closes when the
   * client does; `silent` accepts and says nothing.
   */
  podServer(kind: 'echo' | 'silent'): Promise<{ port: number; close(): Promise<void> }>;
  close(): Promise<void>;
}

/** The pod-side server of `podServer`, for the container's python3 (the host's /usr). */
const POD_SERVER = `
import socket, sys, threading
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(16)
def serve(c):
    while sys.argv[2] == "echo":
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    else:
        c.recv(1)
    c.close()
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
`;

/** A host loopback server (for `--isolation none`, whose pods share the host's network). */
async function hostServer(kind: 'echo' | 'silent'): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    sockets.add(c);
    c.on('close', () => sockets.delete(c));
    c.on('error', () => {});
    if (kind === 'echo') c.pipe(c);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const c of sockets) c.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

export async function startFixture(
  mode: IsolationMode,
  extra: Partial<CriShimOptions> = {},
): Promise<ShimFixture> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-fx-'));
  const shim = await startCriShim({
    listen: `unix://${tmp}/cri.sock`,
    root: path.join(tmp, 'root'),
    isolation: mode,
    log: process.env.SHIM_LOG ? (l) => process.stderr.write(`shim: ${l}\n`) : () => {},
    ...extra,
  });
  const rt = connectRuntime(shim.endpoint);
  await rt.waitForReady(5000);
  const { pod_sandbox_id: sandboxId } = await rt.runPodSandbox({
    config: { metadata: { name: `fx-${mode}`, namespace: 'default', uid: 'uid-fx' } },
  });
  return {
    shim,
    rt,
    sandboxId,
    async start({ name, ...config }) {
      const { container_id } = await rt.createContainer({
        pod_sandbox_id: sandboxId,
        config: { metadata: { name }, image: { image: 'busybox' }, ...config },
      });
      await rt.startContainer({ container_id });
      return container_id;
    },
    async podServer(kind) {
      if (mode === 'none') return hostServer(kind);
      const port = 8080;
      const { container_id } = await rt.createContainer({
        pod_sandbox_id: sandboxId,
        config: {
          metadata: { name: `${kind}-server` },
          image: { image: 'busybox' },
          command: ['python3', '-c', POD_SERVER, String(port), kind],
        },
      });
      await rt.startContainer({ container_id });
      const probe = `import socket; socket.create_connection(("127.0.0.1", ${port}), 1).close()`;
      const deadline = Date.now() + 10_000;
      while (
        (await rt.execSync({ container_id, cmd: ['python3', '-c', probe], timeout: 5 })).exit_code !== 0
      ) {
        if (Date.now() > deadline) throw new Error(`the pod's ${kind} server did not listen within 10 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return { port, close: async () => void (await rt.removeContainer({ container_id })) };
    },
    async close() {
      rt.close();
      await shim.close();
      fs.rmSync(tmp, { recursive: true, force: true });
    },
  };
}

/** A live v5 session: what came so far, and ways to talk. */
export interface WsSession {
  ws: WebSocket;
  stdout(): string;
  stderr(): string;
  /** Resolves once stdout matches (rejects after `timeoutMs`). */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  stdin(data: string | Buffer): void;
  closeStdin(): void;
  resize(width: number, height: number): void;
  /** The error channel's Status once the server closed the session. */
  closed: Promise<{ status?: { status: string; reason?: string; message?: string } }>;
}

export function openWs(url: string): Promise<WsSession> {
  const ws = new WebSocket(url.replace(/^http/, 'ws'), ['v5.channel.k8s.io']);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  const errorCh: Buffer[] = [];
  const waiters = new Set<() => void>();
  ws.on('message', (data: Buffer) => {
    const payload = data.subarray(1);
    if (data[0] === 1) out.push(payload);
    else if (data[0] === 2) err.push(payload);
    else if (data[0] === 3) errorCh.push(payload);
    for (const w of waiters) w();
  });
  const closed = new Promise<{ status?: { status: string; reason?: string; message?: string } }>((resolve) =>
    ws.on('close', () => {
      const text = Buffer.concat(errorCh).toString();
      resolve({ status: text ? (JSON.parse(text) as { status: string }) : undefined });
    }),
  );
  const session: WsSession = {
    ws,
    stdout: () => Buffer.concat(out).toString(),
    stderr: () => Buffer.concat(err).toString(),
    waitFor: (re, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = (): void => {
          const s = session.stdout();
          if (!re.test(s)) return;
          clearTimeout(timer);
          waiters.delete(check);
          resolve(s);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`stdout never matched ${re}: ${JSON.stringify(session.stdout())}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    stdin: (data) => ws.send(Buffer.concat([Buffer.from([0]), Buffer.from(data)])),
    closeStdin: () => ws.send(Buffer.from([255, 0])),
    resize: (width, height) =>
      ws.send(
        Buffer.concat([Buffer.from([4]), Buffer.from(JSON.stringify({ Width: width, Height: height }))]),
      ),
    closed,
  };
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve(session));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`refused: ${res.statusCode}`)));
  });
}
