import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import net from 'node:net';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  closeServer,
  listen,
  parseResponse,
  rawExchange,
  readHead,
  slowWriter,
  upgradeRequest,
} from '../test-support/loopback.js';
import { exitStatus } from './exit-status.js';
import type { RemoteCommandSession } from './session.js';
import type { ChannelServerSession } from './websocket-server.js';
import { UpgradeRefusedError } from '../httpstream/upgrade-refusal.js';
import { SpdyConnection } from '../spdy/connection.js';
import { SpdyError } from '../spdy/errors.js';
import { acceptSpdySession, type SpdyServerSession } from './spdy-server.js';
import { runSpdyClient } from './spdy-client.js';
import type { SpdyStream } from '../spdy/stream.js';
import { mergeData, parseChunks } from '../spdy/test-helpers.js';

// Both transports give a program the same session (compile-time check).
const _sameInterface: [ChannelServerSession, SpdyServerSession] extends [
  RemoteCommandSession,
  RemoteCommandSession,
]
  ? true
  : never = true;
void _sameInterface;

type Program = (s: SpdyServerSession, query: URLSearchParams) => Promise<void> | void;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

interface TestServer {
  url: string;
  port: number;
  sessions: SpdyServerSession[];
  failures: unknown[];
  sockets: Set<net.Socket>;
}

/** An HTTP server whose every upgrade becomes a SPDY session running `program`; streams from the query. */
async function server(program: Program): Promise<TestServer> {
  const sessions: SpdyServerSession[] = [];
  const failures: unknown[] = [];
  const sockets = new Set<net.Socket>();
  const srv = http.createServer();
  srv.on('connection', (s) => sockets.add(s));
  srv.on('upgrade', (req, socket, head) => {
    const q = new URL(req.url!, 'http://x').searchParams;
    const streams = {
      stdin: q.get('input') === '1',
      stdout: q.get('output') === '1',
      stderr: q.get('error') === '1',
      tty: q.get('tty') === '1',
    };
    const timeout = q.get('timeout');
    acceptSpdySession(
      req,
      socket,
      head,
      streams,
      timeout ? { streamCreationTimeoutMs: Number(timeout) } : {},
    ).then(
      (s) => {
        if (!s) return;
        sessions.push(s);
        void program(s, q);
      },
      (err: unknown) => failures.push(err),
    );
  });
  const port = await listen(srv);
  cleanups.push(() => closeServer(srv, sockets));
  return { url: `http://127.0.0.1:${port}/exec`, port, sessions, failures, sockets };
}

/** Echoes stdin to stdout, then exits with ?code=. */
const cat: Program = async (s, q) => {
  await pipeline(s.stdin!, s.stdout!, { end: false });
  await s.finish(exitStatus(Number(q.get('code') ?? 0)));
};

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

describe('remotecommand over SPDY/3.1', () => {
  it('runs a v4 session: stdin ended by FIN, stdout, stderr, exit code from the Status', async () => {
    const { url } = await server(async (s, q) => {
      s.stderr!.write('to stderr');
      await cat(s, q);
    });
    const out = sink();
    const err = sink();
    const res = await runSpdyClient({
      url: `${url}?input=1&output=1&error=1&code=3`,
      stdin: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      stdout: out.stream,
      stderr: err.stream,
    });
    expect(res.protocol).toBe('v4.channel.k8s.io');
    expect(out.text()).toBe('hello world');
    expect(err.text()).toBe('to stderr');
    expect(res.exitCode).toBe(3);
    expect(res.status).toMatchObject({ reason: 'NonZeroExitCode' });
  });

  it('with resultBeforeClose hands back the Status before the connection has finished closing', async () => {
    // A hop between client and runtime that passes the runtime's FIN on only after a while (a far,
    // busy chain): the result must not wait for it (the StreamTranslator's client waits for it).
    const { port } = await server((s, q) => cat(s, q));
    let finPassed = false;
    const relaySockets = new Set<net.Socket>();
    // Half-open allowed: the client's FIN must not bring the relay's own FIN forward.
    const relay = net.createServer({ allowHalfOpen: true }, (c) => {
      const b = net.connect(port, '127.0.0.1');
      relaySockets.add(c).add(b);
      c.pipe(b);
      b.on('data', (d: Buffer) => c.write(d));
      b.on('end', () => {
        const t = setTimeout(() => {
          finPassed = true;
          c.end();
        }, 3000);
        c.once('close', () => clearTimeout(t));
      });
      for (const s of [b, c]) s.on('error', () => {});
    });
    const relayPort = await listen(relay);
    cleanups.push(() => closeServer(relay, relaySockets));
    const out = sink();
    const res = await runSpdyClient({
      url: `http://127.0.0.1:${relayPort}/exec?input=1&output=1&code=4`,
      stdin: Readable.from([Buffer.from('hi')]),
      stdout: out.stream,
      resultBeforeClose: true,
    });
    expect(res.exitCode).toBe(4);
    expect(out.text()).toBe('hi');
    expect(finPassed).toBe(false);
  });

  it('hands back the exit status only once a slow local writer has taken in all the output', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const { url } = await server(async (s) => {
      for (let i = 0; i < 64; i++) s.stdout!.write(chunk);
      await s.finish(exitStatus(0));
    });
    const out = slowWriter();
    const res = await runSpdyClient({ url: `${url}?output=1`, stdout: out.stream });
    expect(res.exitCode).toBe(0);
    expect(out.taken()).toBe(64 * chunk.length);
  });

  it('carries 16 MiB of stdin and back intact to a slow reader, with bounded buffers', async () => {
    const srv = await server(cat);
    const data = randomBytes(16 * 1024 * 1024);
    const hash = createHash('sha256');
    let maxQueued = 0;
    const slow = new Writable({
      highWaterMark: 16 * 1024,
      write(chunk: Buffer, _enc, cb) {
        hash.update(chunk);
        const s = srv.sessions[0];
        // What the server holds: its socket's unsent bytes and its stdin stream's unread ones.
        const socketQueued = Math.max(0, ...[...srv.sockets].map((x) => x.writableLength));
        maxQueued = Math.max(maxQueued, socketQueued, s?.stdin?.readableLength ?? 0);
        setImmediate(cb);
      },
    });
    const chunks = Array.from({ length: 256 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const res = await runSpdyClient({
      url: `${srv.url}?input=1&output=1`,
      stdin: Readable.from(chunks),
      stdout: slow,
    });
    expect(res.exitCode).toBe(0);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
    expect(maxQueued).toBeLessThan(1024 * 1024);
  });

  it.each(['v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'])(
    'speaks %s: stdout, stderr, and failures only as text',
    async (protocol) => {
      const { url } = await server(async (s, q) => {
        s.stdout!.write('to stdout');
        s.stderr!.write('to stderr');
        await s.finish(exitStatus(Number(q.get('code'))));
      });
      for (const code of [0, 4]) {
        const out = sink();
        const err = sink();
        const res = await runSpdyClient({
          url: `${url}?output=1&error=1&code=${code}`,
          protocols: [protocol],
          stdout: out.stream,
          stderr: err.stream,
        });
        expect(res.protocol).toBe(protocol);
        expect([out.text(), err.text()]).toEqual(['to stdout', 'to stderr']);
        // Before v4 a failure is only a message: the exit code itself is lost (upstream too).
        expect(res.exitCode).toBe(code === 0 ? 0 : 1);
        if (code) expect(res.status.message).toMatch(/non-zero exit code/);
      }
    },
  );

  it('picks v4 when a client offers v5 first, as client-go does', async () => {
    const { url } = await server((s) => s.finish(exitStatus(0)));
    const res = await runSpdyClient({
      url: `${url}?output=1`,
      protocols: ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io'],
      stdout: sink().stream,
    });
    expect(res.protocol).toBe('v4.channel.k8s.io');
  });

  it('delivers resize events from a stream of concatenated JSON objects, only with a terminal', async () => {
    const sizes: unknown[] = [];
    const { url } = await server((s) => {
      s.on('resize', (size) => {
        sizes.push(size);
        if (sizes.length === 2) void s.finish(exitStatus(0));
      });
    });
    const res = await runSpdyClient({
      url: `${url}?output=1&tty=1`,
      tty: true,
      stdout: sink().stream,
      resize: (send) => {
        send({ width: 80, height: 24 });
        send({ width: 132, height: 50 });
        return () => {};
      },
    });
    expect(res.exitCode).toBe(0);
    expect(sizes).toEqual([
      { width: 80, height: 24 },
      { width: 132, height: 50 },
    ]);
  });

  it('refuses a request without X-Stream-Protocol-Version with a 400 Status', async () => {
    const { port, sessions } = await server(cat);
    const { all } = await rawExchange(
      port,
      upgradeRequest('/exec?output=1', { Upgrade: 'SPDY/3.1' }, 'POST'),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', code: 400, reason: 'BadRequest' });
    expect(JSON.parse(res.body).message).toMatch(/X-Stream-Protocol-Version/);
    expect(sessions).toHaveLength(0);
  });

  it('refuses a request with no version in common: 403 naming the accepted versions', async () => {
    const { url, port } = await server(cat);
    const err = await runSpdyClient({ url, protocols: ['v9.channel.k8s.io'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeRefusedError);
    expect((err as UpgradeRefusedError).httpCode).toBe(403);
    expect((err as UpgradeRefusedError).status.message).toMatch(/unable to negotiate protocol/);
    const { all } = await rawExchange(
      port,
      upgradeRequest(
        '/exec',
        { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v9.channel.k8s.io' },
        'POST',
      ),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(403);
    expect(res.headers['x-accepted-stream-protocol-versions']).toBe(
      'v4.channel.k8s.io, v3.channel.k8s.io, v2.channel.k8s.io, channel.k8s.io',
    );
  });

  it('gives up when the client does not create its streams in time', async () => {
    const srv = await server(cat);
    const socket = net.connect(srv.port, '127.0.0.1');
    socket.on('error', () => {});
    await once(socket, 'connect');
    socket.write(
      upgradeRequest(
        '/exec?input=1&output=1&timeout=200',
        { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' },
        'POST',
      ),
    );
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    await once(socket, 'close');
    const raw = Buffer.concat(chunks);
    const headEnd = raw.indexOf('\r\n\r\n') + 4;
    expect(raw.subarray(0, headEnd).toString()).toMatch(
      /^HTTP\/1\.1 101 .*X-Stream-Protocol-Version: v4\.channel\.k8s\.io/s,
    );
    // The server said GOAWAY before closing.
    expect(mergeData((await parseChunks([raw.subarray(headEnd)])).frames)).toEqual([
      { type: 'GOAWAY', lastGoodStreamId: 0, status: 0 },
    ]);
    expect(srv.failures).toHaveLength(1);
    expect(srv.failures[0]).toBeInstanceOf(SpdyError);
    expect((srv.failures[0] as SpdyError).code).toBe('TIMEOUT');
    expect((srv.failures[0] as SpdyError).message).toMatch(/timed out waiting for client to create streams/);
    expect(srv.sessions).toHaveLength(0);
  });

  it('reports a connection lost mid-command as an error, not as success', async () => {
    const { url } = await server((s) => {
      s.stdout!.write('partial', () =>
        (s as unknown as { conn: SpdyConnection })['conn']['socket'].destroy(),
      );
    });
    const out = sink();
    await expect(runSpdyClient({ url: `${url}?output=1`, stdout: out.stream })).rejects.toThrow(
      /connection closed before the command finished/,
    );
    expect(out.text()).toBe('partial');
  });

  it('tells the program when the client goes away', async () => {
    let session: SpdyServerSession | undefined;
    const started = new Promise<void>((resolve) => {
      void server((s) => {
        session = s;
        resolve();
      }).then(({ port }) => rawClient(port, '/exec?input=1&output=1', ['error', 'stdin', 'stdout']));
    });
    await started;
    const closed = once(session!, 'close');
    const stdinEnded = once(session!.stdin!.resume(), 'end');
    for (const s of rawSockets) s.destroy();
    await closed;
    await stdinEnded;
    expect(session!.isClosed).toBe(true);
  });

  it('answers a stream of an unknown type and resets a duplicate, as the session starts', async () => {
    let session: SpdyServerSession | undefined;
    const { port } = await server((s) => void (session = s));
    const conn = await rawClient(port, '/exec?output=1', ['bogus', 'stdout', 'stdout', 'error']);
    const states = [...conn.streams].map((s) => s.resetStatus);
    expect(states).toEqual([undefined, undefined, 1, undefined]); // the duplicate: PROTOCOL_ERROR
    expect(session).toBeDefined();
    await session!.finish(exitStatus(0));
  });
});

const rawSockets: net.Socket[] = [];
afterEach(() => {
  for (const s of rawSockets.splice(0)) s.destroy();
});

/** A hand-driven SPDY client: upgrades, opens the given stream types, waits for their answers. */
async function rawClient(
  port: number,
  path: string,
  types: string[],
): Promise<{ conn: SpdyConnection; streams: Set<SpdyStream> }> {
  const socket = net.connect(port, '127.0.0.1');
  rawSockets.push(socket);
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(
    upgradeRequest(path, { Upgrade: 'SPDY/3.1', 'X-Stream-Protocol-Version': 'v4.channel.k8s.io' }, 'POST'),
  );
  const { head, rest } = await readHead(socket);
  expect(head).toMatch(/^HTTP\/1\.1 101/);
  const conn = new SpdyConnection(socket, { role: 'client', head: rest });
  const streams = new Set(types.map((t) => conn.createStream({ streamType: t })));
  await Promise.allSettled([...streams].map((s) => s.waitReply(5000)));
  return { conn, streams };
}
