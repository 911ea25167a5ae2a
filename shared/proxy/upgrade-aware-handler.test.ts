import http from 'node:http';
import net from 'node:net';
import { once } from 'node:events';
import { UpgradeAwareHandler, type UpgradeAwareHandlerOptions } from './upgrade-aware-handler.js';
import {
  closeServer,
  fakeBackend,
  listen,
  parseResponse,
  rawExchange,
  readHead,
  upgradeRequest,
  type FakeBackend,
} from '../test-support/loopback.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function backend(onRequest: Parameters<typeof fakeBackend>[0]): Promise<FakeBackend> {
  const b = await fakeBackend(onRequest);
  cleanups.push(() => b.close());
  return b;
}

async function proxy(
  target: number | string,
  opts: Partial<UpgradeAwareHandlerOptions> = {},
): Promise<{ port: number; handler: UpgradeAwareHandler }> {
  const location = new URL(
    typeof target === 'number' ? `http://127.0.0.1:${target}/backend/path?q=1` : target,
  );
  const handler = new UpgradeAwareHandler({ location, ...opts });
  const server = http.createServer((req, res) => handler.handle(req, res));
  server.on('upgrade', (req, socket, head) => handler.handleUpgrade(req, socket, head));
  const port = await listen(server);
  cleanups.push(() => closeServer(server));
  return { port, handler };
}

const SWITCH =
  'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test-protocol\r\nX-Backend: yes\r\n\r\n';

describe('UpgradeAwareHandler: upgrades', () => {
  it('splices a 101 both ways, with over-read bytes on both sides and X-Forwarded-For appended', async () => {
    let backendHead = '';
    const b = await backend((socket, head, rest) => {
      backendHead = head;
      // The 101 and the first stream bytes in one write: the proxy must keep the over-read bytes.
      socket.write(SWITCH + 'hello-from-backend;');
      // Bytes the client sent behind its request head may only reach the backend after its 101.
      expect(rest.length).toBe(0);
      socket.on('data', (c: Buffer) => socket.write(c));
    });
    const { port } = await proxy(b.port);
    const client = net.connect(port, '127.0.0.1');
    await once(client, 'connect');
    client.write(upgradeRequest('/ignored', { 'X-Forwarded-For': '10.0.0.1' }) + 'sent-with-head');
    const { head, rest } = await readHead(client);
    expect(head).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(head).toContain('X-Backend: yes');
    expect(backendHead).toMatch(/^GET \/backend\/path\?q=1 HTTP\/1\.1\r\n/);
    expect(backendHead).toContain('X-Forwarded-For: 10.0.0.1, 127.0.0.1');

    let got = rest.toString();
    client.on('data', (c: Buffer) => (got += c.toString()));
    client.resume();
    client.write('ping');
    const want = 'hello-from-backend;sent-with-headping';
    while (got.length < want.length) await once(client, 'data');
    expect(got).toBe(want);
    client.destroy();
  });

  it('strips the client credentials and sets the hop credentials', async () => {
    let backendHead = '';
    const b = await backend((socket, head) => {
      backendHead = head;
      socket.end(SWITCH);
    });
    const { port } = await proxy(b.port, {
      stripHeaders: ['Authorization'],
      backendHeaders: { Authorization: 'Bearer hop-token' },
    });
    const { all } = await rawExchange(port, upgradeRequest('/', { Authorization: 'Bearer user-token' }));
    await all;
    expect(backendHead).toContain('Authorization: Bearer hop-token');
    expect(backendHead).not.toContain('user-token');
  });

  it.each([
    [302, 'HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n'],
    [200, 'HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'],
  ])(
    'answers a backend %i to an upgrade with an error Status, never the backend response',
    async (code, answer) => {
      const redirectTarget = net.createServer();
      let redirectHits = 0;
      redirectTarget.on('connection', (s) => {
        redirectHits++;
        s.destroy();
      });
      const targetPort = await listen(redirectTarget);
      cleanups.push(() => closeServer(redirectTarget));
      const b = await backend((socket) =>
        socket.write(answer.replace('127.0.0.1:1', `127.0.0.1:${targetPort}`)),
      );
      const { port } = await proxy(b.port);
      const { all } = await rawExchange(port, upgradeRequest('/'));
      const res = parseResponse(await all);
      expect(res.code).toBe(502);
      expect(res.headers.location).toBeUndefined();
      expect(JSON.parse(res.body)).toMatchObject({
        kind: 'Status',
        status: 'Failure',
        code: 502,
        message: `invalid upgrade response: status code ${code}`,
      });
      expect(redirectHits).toBe(0);
      expect(b.requestCount()).toBe(1);
    },
  );

  it.each([400, 500])(
    'passes a backend %i on and closes both connections; a pipelined request never reaches the backend',
    async (code) => {
      const body = JSON.stringify({ kind: 'Status', code, message: 'refused by backend' });
      const b = await backend((socket) => {
        // Chunked, to check the proxy re-frames the body it already decoded.
        socket.write(
          `HTTP/1.1 ${code} Refused\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n`,
        );
        socket.write(`${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`);
      });
      const { port } = await proxy(b.port);
      // The second request rides on the same client connection, right behind the upgrade request.
      const smuggled = 'GET /run/kube-system/etcd?cmd=cat+/etc/secret HTTP/1.1\r\nHost: kubelet\r\n\r\n';
      const { socket, all } = await rawExchange(port, upgradeRequest('/') + smuggled);
      const raw = await all; // resolves only when the proxy closed the client connection
      const res = parseResponse(raw);
      expect(res.code).toBe(code);
      expect(res.body).toBe(body);
      expect(res.headers.connection).toBe('close');
      expect(socket.destroyed).toBe(true);
      await Promise.all(b.connections.map((c) => (c.socket.closed ? undefined : once(c.socket, 'close'))));
      expect(b.requestCount()).toBe(1);
      expect(b.connections.map((c) => c.received().toString('latin1')).join('')).not.toContain(
        '/run/kube-system',
      );
    },
  );

  it('refuses a backend that switches to another protocol, without splicing', async () => {
    const b = await backend((socket) => {
      socket.write(
        'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: other\r\n\r\nstream-bytes',
      );
    });
    const { port } = await proxy(b.port);
    const { all } = await rawExchange(port, upgradeRequest('/'));
    const raw = await all;
    const res = parseResponse(raw);
    expect(res.code).toBe(502);
    expect(JSON.parse(res.body).message).toBe(
      'backend tried to switch protocol "other" when "test-protocol" was requested',
    );
    expect(raw.toString()).not.toContain('stream-bytes');
  });

  it('refuses a non-printable Upgrade value with 400 before dialling', async () => {
    const b = await backend((socket) => socket.destroy());
    const { port } = await proxy(b.port);
    const { all } = await rawExchange(
      port,
      Buffer.from(upgradeRequest('/', { Upgrade: 'spdy\xe9' }), 'latin1'),
    );
    const res = parseResponse(await all);
    expect(res.code).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'BadRequest' });
    expect(JSON.parse(res.body).message).toMatch(/^client tried to switch to invalid protocol/);
    expect(b.connections).toHaveLength(0);
  });

  it('reports a dial failure as a 503 Status', async () => {
    const closed = net.createServer();
    const deadPort = await listen(closed);
    await closeServer(closed);
    const { port } = await proxy(deadPort);
    const { all } = await rawExchange(port, upgradeRequest('/'));
    const res = parseResponse(await all);
    expect(res.code).toBe(503);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'ServiceUnavailable' });
    expect(JSON.parse(res.body).message).toMatch(/^error dialing backend: .*ECONNREFUSED/);
  });

  it('reports a backend that never answers as a 504 Status', async () => {
    const b = await backend(() => {});
    const { port } = await proxy(b.port, { backendTimeoutMs: 200 });
    const { all } = await rawExchange(port, upgradeRequest('/'));
    const res = parseResponse(await all);
    expect(res.code).toBe(504);
    expect(JSON.parse(res.body)).toMatchObject({ reason: 'Timeout' });
  });

  it.each([
    ['garbage', (s: net.Socket) => s.end('this is not http\r\n\r\n')],
    ['a reset before answering', (s: net.Socket) => s.destroy()],
  ])('reports %s from the backend as a 502 Status', async (_name, behave) => {
    const b = await backend(behave);
    const { port } = await proxy(b.port);
    const { all } = await rawExchange(port, upgradeRequest('/'));
    const res = parseResponse(await all);
    expect(res.code).toBe(502);
    expect(JSON.parse(res.body).message).toMatch(/^error reading backend response/);
  });

  it('accepts a 101 that dribbles in byte by byte', async () => {
    const b = await backend(async (socket) => {
      for (const ch of SWITCH + 'done') {
        socket.write(ch);
        await new Promise((r) => setImmediate(r));
      }
    });
    const { port } = await proxy(b.port);
    const client = net.connect(port, '127.0.0.1');
    await once(client, 'connect');
    client.write(upgradeRequest('/'));
    const { head, rest } = await readHead(client);
    expect(head).toMatch(/^HTTP\/1\.1 101/);
    let got = rest.toString();
    client.on('data', (c: Buffer) => (got += c.toString()));
    client.resume();
    while (got !== 'done') await once(client, 'data');
    client.destroy();
  });

  it('closes the client when the backend closes mid-stream', async () => {
    const b = await backend((socket) => {
      socket.write(SWITCH + 'partial');
      socket.once('data', () => socket.destroy());
    });
    const { port } = await proxy(b.port);
    const { socket, all } = await rawExchange(port, upgradeRequest('/'));
    socket.write('anything');
    const raw = (await all).toString();
    expect(raw).toMatch(/^HTTP\/1\.1 101/);
    expect(raw.endsWith('partial')).toBe(true);
  });

  it('keeps the defaults for options passed as undefined', async () => {
    const b = await backend((socket) => setImmediate(() => socket.write(SWITCH + 'ok')));
    const { port } = await proxy(b.port, { backendTimeoutMs: undefined, flushIntervalMs: undefined });
    const { socket, all } = await rawExchange(port, upgradeRequest('/'));
    const raw = all.then((r) => r.toString());
    while (!socket.destroyed && !(socket.bytesRead > 0)) await once(socket, 'data');
    socket.end();
    expect(await raw).toMatch(/^HTTP\/1\.1 101 [^]*ok$/);
  });

  it('refuses a plain request with 400 when an upgrade is required', async () => {
    const b = await backend((s) => s.destroy());
    const { port } = await proxy(b.port, { upgradeRequired: true });
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ message: 'Upgrade request required', reason: 'BadRequest' });
    expect(b.connections).toHaveLength(0);
  });
});

describe('UpgradeAwareHandler: plain requests', () => {
  async function httpBackend(handler: http.RequestListener): Promise<number> {
    const server = http.createServer(handler);
    const port = await listen(server);
    cleanups.push(() => closeServer(server));
    return port;
  }

  it('removes hop-by-hop headers both ways and appends X-Forwarded-For', async () => {
    let seen: http.IncomingHttpHeaders = {};
    const port = await httpBackend((req, res) => {
      seen = req.headers;
      res.writeHead(200, {
        'Keep-Alive': 'timeout=77',
        'X-Reply': 'kept',
        Connection: 'X-Reply-Hop',
        'X-Reply-Hop': 'x',
      });
      res.end(`path=${req.url}`);
    });
    const { port: p } = await proxy(port);
    const res = await new Promise<http.IncomingMessage>((resolve) =>
      http
        .request(
          {
            port: p,
            host: '127.0.0.1',
            path: '/some?x=2',
            headers: {
              Connection: 'keep-alive, X-Hop',
              'X-Hop': 'drop-me',
              'Proxy-Authorization': 'secret',
              Te: 'trailers',
              'X-End': 'kept',
            },
          },
          resolve,
        )
        .end(),
    );
    let body = '';
    for await (const c of res) body += c;
    expect(body).toBe('path=/backend/path?x=2');
    expect(seen['x-hop']).toBeUndefined();
    expect(seen['proxy-authorization']).toBeUndefined();
    expect(seen.te).toBe('trailers');
    expect(seen['x-end']).toBe('kept');
    expect(seen['x-forwarded-for']).toBe('127.0.0.1');
    expect(res.headers['x-reply']).toBe('kept');
    expect(res.headers['x-reply-hop']).toBeUndefined();
    expect(res.headers['keep-alive']).not.toBe('timeout=77');
  });

  it('turns a redirect into 502 with rejectForwardingRedirects, and passes it on without', async () => {
    const port = await httpBackend((_req, res) => {
      res.writeHead(302, { Location: 'http://127.0.0.1:9/elsewhere' });
      res.end();
    });
    const { port: rejecting } = await proxy(port, { rejectForwardingRedirects: true });
    const res = await fetch(`http://127.0.0.1:${rejecting}/`, { redirect: 'manual' });
    expect(res.status).toBe(502);
    expect(res.headers.get('location')).toBeNull();
    expect(await res.json()).toMatchObject({
      message: 'the backend attempted to redirect this request, which is not permitted',
    });
    const { port: passing } = await proxy(port);
    const passed = await fetch(`http://127.0.0.1:${passing}/`, { redirect: 'manual' });
    expect(passed.status).toBe(302);
    expect(passed.headers.get('location')).toBe('http://127.0.0.1:9/elsewhere');
  });

  it('flushes a streamed response before it ends', async () => {
    let finish: () => void = () => {};
    const port = await httpBackend((_req, res) => {
      res.writeHead(200, { 'Content-Type': 'text/plain' });
      res.write('first line\n');
      finish = () => res.end('last line\n');
    });
    const { port: p } = await proxy(port, { flushIntervalMs: 50 });
    const res = await new Promise<http.IncomingMessage>((resolve) =>
      http.get({ port: p, host: '127.0.0.1', path: '/' }, resolve),
    );
    // The backend only ends once the client has seen the first chunk: this would hang without flushing.
    const [first] = (await once(res, 'data')) as [Buffer];
    expect(first.toString()).toBe('first line\n');
    finish();
    let rest = '';
    for await (const c of res) rest += c;
    expect(rest).toBe('last line\n');
  });
});
