import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import WebSocket from 'ws';
import { closeServer, listen, slowWriter } from '../test-support/loopback.js';
import { exitStatus } from './exit-status.js';
import { SERVER_PROTOCOLS } from './protocol.js';
import {
  acceptChannelSession,
  MAX_CLIENT_MESSAGE_BYTES,
  type ChannelServerSession,
} from './websocket-server.js';
import { runChannelClient } from './websocket-client.js';
import { UpgradeRefusedError } from '../httpstream/upgrade-refusal.js';

type Program = (s: ChannelServerSession, query: URLSearchParams) => Promise<void> | void;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** An HTTP server whose every upgrade becomes a channel session running `program`. */
async function server(
  program: Program,
  opts: { pauseFirst?: boolean } = {},
): Promise<{ url: string; sessions: ChannelServerSession[] }> {
  const sessions: ChannelServerSession[] = [];
  const srv = http.createServer();
  srv.on('upgrade', async (req, socket, head) => {
    if (opts.pauseFirst) {
      // As the apiserver does while it authenticates and looks the pod up.
      socket.pause();
      await new Promise((r) => setTimeout(r, 20));
    }
    const q = new URL(req.url!, 'http://x').searchParams;
    const s = acceptChannelSession(req, socket, head, {
      stdin: q.get('input') === '1',
      stdout: true,
      stderr: true,
      tty: q.get('tty') === '1',
    });
    if (!s) return;
    sessions.push(s);
    void program(s, q);
  });
  const port = await listen(srv);
  cleanups.push(() => closeServer(srv));
  return { url: `ws://127.0.0.1:${port}/exec`, sessions };
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

describe('remotecommand over WebSocket', () => {
  it('hands back the exit status only once a slow local writer has taken in all the output', async () => {
    const chunk = Buffer.alloc(16 * 1024, 'x');
    const { url } = await server(async (s) => {
      for (let i = 0; i < 16; i++) s.stdout!.write(chunk);
      await s.finish(exitStatus(0));
    });
    // Slower than the close handshake that ends the session.
    const out = slowWriter(30);
    const res = await runChannelClient({ url, stdout: out.stream });
    expect(res.exitCode).toBe(0);
    expect(out.taken()).toBe(16 * chunk.length);
  });

  it('runs a v5 session: stdin closed with CLOSE, output, exit code from the Status', async () => {
    const { url } = await server(cat);
    const out = sink();
    const res = await runChannelClient({
      url: `${url}?input=1&code=3`,
      stdin: Readable.from([Buffer.from('hello '), Buffer.from('world')]),
      stdout: out.stream,
    });
    expect(res.protocol).toBe('v5.channel.k8s.io');
    expect(out.text()).toBe('hello world');
    expect(res.exitCode).toBe(3);
    expect(res.status).toMatchObject({ reason: 'NonZeroExitCode' });
  });

  it('carries 16 MiB of stdin and back intact', async () => {
    const { url } = await server(cat);
    const data = randomBytes(16 * 1024 * 1024);
    const hash = createHash('sha256');
    const stdout = new PassThrough();
    stdout.on('data', (c: Buffer) => hash.update(c));
    const chunks = Array.from({ length: 256 }, (_, i) => data.subarray(i * 65536, (i + 1) * 65536));
    const res = await runChannelClient({ url: `${url}?input=1`, stdin: Readable.from(chunks), stdout });
    expect(res.exitCode).toBe(0);
    expect(hash.digest('hex')).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it.each(SERVER_PROTOCOLS.filter((p) => p !== 'v5.channel.k8s.io'))(
    'speaks %s: stdout, stderr and the exit status',
    async (protocol) => {
      const { url } = await server(async (s) => {
        s.stdout!.write('to stdout');
        s.stderr!.write('to stderr');
        await s.finish(exitStatus(protocol.startsWith('v4') ? 4 : 0));
      });
      const out = sink();
      const err = sink();
      const res = await runChannelClient({
        url,
        protocols: [protocol],
        stdout: out.stream,
        stderr: err.stream,
      });
      expect(res.protocol).toBe(protocol);
      expect(out.text()).toBe('to stdout');
      expect(err.text()).toBe('to stderr');
      expect(res.exitCode).toBe(protocol.startsWith('v4') ? 4 : 0);
    },
  );

  it('reads a socket its caller paused: stdin arrives and the close handshake completes', async () => {
    const { url } = await server(cat, { pauseFirst: true });
    const out = sink();
    const started = Date.now();
    const res = await runChannelClient({
      url: `${url}?input=1`,
      stdin: Readable.from([Buffer.from('paused?')]),
      stdout: out.stream,
    });
    expect(out.text()).toBe('paused?');
    expect(res.exitCode).toBe(0);
    // A server that stops reading only drops the connection at ws's 30 s close timeout.
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('sends the empty ready message first, on stdout', async () => {
    const { url } = await server((s) => void s.finish(exitStatus(0)));
    const ws = new WebSocket(url, ['v4.channel.k8s.io']);
    const [first] = (await once(ws, 'message')) as [Buffer];
    expect(first).toEqual(Buffer.from([1]));
    await once(ws, 'close');
  });

  it('delivers resize messages only for a terminal', async () => {
    const sizes: unknown[] = [];
    const { url } = await server(async (s) => {
      s.on('resize', (size) => {
        sizes.push(size);
        if (sizes.length === 2) void s.finish(exitStatus(0));
      });
    });
    const res = await runChannelClient({
      url: `${url}?tty=1`,
      tty: true,
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

  it.each([
    ['an unknown channel', Buffer.from([9, 1, 2])],
    ['a CLOSE of the wrong length', Buffer.from([255, 0, 0])],
    ['an empty message', Buffer.alloc(0)],
  ])('closes the session with 1002 on %s', async (_name, bad) => {
    const errors: string[] = [];
    let serverClosed: Promise<unknown> = Promise.resolve();
    const { url } = await server((s) => {
      s.on('protocolError', (e) => errors.push(e.code));
      serverClosed = once(s, 'close');
    });
    const ws = new WebSocket(url, ['v5.channel.k8s.io']);
    await once(ws, 'open');
    ws.send(bad);
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    expect(code).toBe(1002);
    expect(reason.toString()).not.toBe('');
    expect(errors).toHaveLength(1);
    await serverClosed; // the program hears of it, so it can kill its process
  });

  it('refuses a handshake with no protocol in common with a 400 Status', async () => {
    const { url, sessions } = await server(cat);
    const err = await runChannelClient({ url, protocols: ['v9.channel.k8s.io'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeRefusedError);
    expect((err as UpgradeRefusedError).httpCode).toBe(400);
    expect((err as UpgradeRefusedError).status.message).toMatch(/unable to match client requested protocol/);
    expect(sessions).toHaveLength(0);
  });

  it('reports a connection lost mid-command as an error, not as success', async () => {
    const { url } = await server((s) => {
      s.stdout!.write('partial', () => (s as unknown as { ws: WebSocket }).ws.terminate());
    });
    const out = sink();
    await expect(runChannelClient({ url, stdout: out.stream })).rejects.toThrow(
      /connection closed before the command finished/,
    );
    expect(out.text()).toBe('partial');
  });

  it.each(['v5.channel.k8s.io', 'v4.channel.k8s.io', 'channel.k8s.io'])(
    'reads text messages like binary ones under %s (stdin and resize, as Python sends a str)',
    async (protocol) => {
      const sizes: unknown[] = [];
      const { url } = await server(async (s) => {
        s.on('resize', (size) => sizes.push(size));
        const got: Buffer[] = [];
        for await (const c of s.stdin!) {
          got.push(c as Buffer);
          if (Buffer.concat(got).toString() === 'hi\n') break;
        }
        s.stdout!.write(Buffer.concat(got));
        await s.finish(exitStatus(0));
      });
      const ws = new WebSocket(`${url}?input=1&tty=1`, [protocol]);
      const messages: Buffer[] = [];
      ws.on('message', (m: Buffer) => messages.push(m));
      await once(ws, 'open');
      if (protocol !== 'channel.k8s.io') ws.send('\u0004{"Width":100,"Height":30}', { binary: false });
      ws.send('\u0000hi\n', { binary: false });
      const [code] = (await once(ws, 'close')) as [number];
      expect(code).toBe(1000);
      expect(Buffer.concat(messages.filter((m) => m[0] === 1).map((m) => m.subarray(1))).toString()).toBe(
        'hi\n',
      );
      if (protocol !== 'channel.k8s.io') expect(sizes).toEqual([{ width: 100, height: 30 }]);
    },
  );

  it('takes one 8 MiB stdin message whole (client-node sends a Buffer stdin as one message)', async () => {
    const { url } = await server(cat);
    const big = randomBytes(8 * 1024 * 1024);
    const ws = new WebSocket(`${url}?input=1`, ['v5.channel.k8s.io']);
    const out: Buffer[] = [];
    const status: Buffer[] = [];
    ws.on('message', (m: Buffer) => (m[0] === 1 ? out : m[0] === 3 ? status : []).push(m.subarray(1)));
    await once(ws, 'open');
    ws.send(Buffer.concat([Buffer.from([0]), big]));
    ws.send(Buffer.from([255, 0]));
    const [code] = (await once(ws, 'close')) as [number];
    expect(code).toBe(1000);
    expect(Buffer.concat(out).equals(big)).toBe(true);
    expect(JSON.parse(Buffer.concat(status).toString())).toMatchObject({ status: 'Success' });
  });

  it('answers a message over the limit with a Status on the error channel, then close 1009', async () => {
    let session: ChannelServerSession | undefined;
    const { url } = await server((s) => void (session = s));
    const ws = new WebSocket(`${url}?input=1`, ['v5.channel.k8s.io']);
    const status: Buffer[] = [];
    ws.on('message', (m: Buffer) => m[0] === 3 && status.push(m.subarray(1)));
    await once(ws, 'open');
    ws.send(Buffer.alloc(MAX_CLIENT_MESSAGE_BYTES + 2));
    const [code] = (await once(ws, 'close')) as [number];
    expect(code).toBe(1009);
    expect(JSON.parse(Buffer.concat(status).toString())).toMatchObject({
      status: 'Failure',
      reason: 'RequestEntityTooLarge',
      code: 413,
    });
    // The server's side closes too (the program sees the client gone).
    if (!session!.isClosed) await once(session!, 'close');
  });

  it('tells the program when the client goes away', async () => {
    let session: ChannelServerSession | undefined;
    const { url } = await server((s) => void (session = s));
    const ws = new WebSocket(url, ['v5.channel.k8s.io']);
    await once(ws, 'message');
    const closed = once(session!, 'close');
    ws.terminate();
    await closed;
    expect(session!.isClosed).toBe(true);
  });
});
