/**
 * Test helpers: real servers and clients on 127.0.0.1 with ephemeral ports.
 * A fake backend sees raw bytes, so tests can count every request that reaches it.
 */
import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { Writable } from 'node:stream';

export async function listen(server: net.Server): Promise<number> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return (server.address() as net.AddressInfo).port;
}

/** Closes a server and destroys every connection it still has. */
export async function closeServer(server: net.Server, sockets?: Set<net.Socket>): Promise<void> {
  for (const s of sockets ?? []) s.destroy();
  if (server instanceof http.Server) server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

export interface BackendConnection {
  socket: net.Socket;
  /** Every byte received on this connection. */
  received: () => Buffer;
}

export interface FakeBackend {
  port: number;
  connections: BackendConnection[];
  /** Requests seen over all connections, counted by request line. */
  requestCount: () => number;
  close: () => Promise<void>;
}

/**
 * A raw TCP backend. `onRequest` runs once per connection, when the first request head is complete;
 * every later byte is still recorded (so pipelined requests are counted) and also emitted as 'data'.
 */
export async function fakeBackend(
  onRequest: (socket: net.Socket, head: string, rest: Buffer) => void,
): Promise<FakeBackend> {
  const connections: BackendConnection[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const chunks: Buffer[] = [];
    let started = false;
    const conn: BackendConnection = { socket, received: () => Buffer.concat(chunks) };
    connections.push(conn);
    socket.on('data', (chunk: Buffer) => {
      if (started) return;
      chunks.push(chunk);
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return;
      started = true;
      // From here on the test's handler owns the data, and we keep a copy of it.
      socket.prependListener('data', (c: Buffer) => chunks.push(c));
      onRequest(socket, all.subarray(0, end).toString('latin1'), all.subarray(end + 4));
    });
  });
  const port = await listen(server);
  return {
    port,
    connections,
    requestCount: () =>
      connections.reduce(
        (n, c) =>
          n +
          (c
            .received()
            .toString('latin1')
            .match(/^[A-Z]+ \S+ HTTP\/1\.[01]\r$/gm)?.length ?? 0),
        0,
      ),
    close: () => closeServer(server, sockets),
  };
}

/** Reads from a socket until the end of an HTTP head; returns the head and the bytes after it. */
export function readHead(socket: net.Socket, limit = 64 * 1024): Promise<{ head: string; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        cleanup();
        socket.pause();
        resolve({ head: buf.subarray(0, end).toString('latin1'), rest: buf.subarray(end + 4) });
      } else if (buf.length > limit) {
        cleanup();
        reject(new Error('head too large'));
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`connection ended before a full head: ${JSON.stringify(buf.toString('latin1'))}`));
    };
    const cleanup = (): void => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
  });
}

/** Opens a raw connection, writes `data`, and collects everything until the server closes. */
export async function rawExchange(
  port: number,
  data: string | Buffer,
): Promise<{ socket: net.Socket; all: Promise<Buffer> }> {
  const socket = net.connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.on('error', () => {});
  const all = new Promise<Buffer>((resolve) => socket.once('close', () => resolve(Buffer.concat(chunks))));
  socket.write(data);
  return { socket, all };
}

/** Splits a raw HTTP response into status code, lower-cased headers and body. */
export function parseResponse(raw: Buffer): { code: number; headers: Record<string, string>; body: string } {
  const text = raw.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const [statusLine, ...lines] = text.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { code: Number(statusLine!.split(' ')[1]), headers, body: text.slice(end + 4) };
}

export function upgradeRequest(path: string, extra: Record<string, string> = {}, method = 'GET'): string {
  const headers = { Host: 'proxy.test', Connection: 'Upgrade', Upgrade: 'test-protocol', ...extra };
  return (
    `${method} ${path} HTTP/1.1\r\n` +
    Object.entries(headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    '\r\n'
  );
}

/**
 * A local writer that takes in every chunk late (`delayMs` each) and queues freely (1 MiB high
 * water mark, so the client never sees backpressure): `taken()` is what it has processed so far.
 */
export function slowWriter(delayMs = 2): { stream: Writable; taken: () => number } {
  let taken = 0;
  const stream = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _enc, cb) {
      setTimeout(() => {
        taken += chunk.length;
        cb();
      }, delayMs);
    },
  });
  return { stream, taken: () => taken };
}

/** A port forward's "pod": answers every chunk in upper case and half-closes when the client does. */
export async function upperCaseEcho(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('data', (c: Buffer) => s.write(c.toString().toUpperCase()));
    s.on('end', () => s.end());
    s.on('error', () => {});
  });
  return { port: await listen(server), close: () => closeServer(server, sockets) };
}

/** A loopback port nothing listens on (it was bound a moment ago): connections are refused. */
export async function closedPort(): Promise<number> {
  const gone = net.createServer();
  const port = await listen(gone);
  await closeServer(gone);
  return port;
}
