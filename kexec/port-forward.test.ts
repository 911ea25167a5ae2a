/**
 * `kexec port-forward` against a fake apiserver on loopback that forwards for real to a TCP
 * backend, over WebSocket (one v4.channel.k8s.io WebSocket per local connection) and SPDY (one
 * connection, a stream pair per local connection): connections in a row, one to a closed port
 * in between, and the listeners surviving it (kubectl #1169).
 */
import { jest } from '@jest/globals';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closedPort, closeServer, listen, upperCaseEcho } from '../shared/test-support/loopback.js';
import { completePortForward } from './cmd/port-forward.js';
import { parseAddresses, parsePorts } from './forwarded-ports.js';
import { startFakeApiserver, type FakeApiserver } from './test-support/fake-apiserver.js';
import { run, start, writeKubeconfig } from './test-support/io.js';

jest.setTimeout(20_000);

const TOKEN = 'tok';
let api: FakeApiserver;
let backend: Awaited<ReturnType<typeof upperCaseEcho>>;
let backendPort = 0;
let refusedPort = 0;
let dir = '';
let kc = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-pf-'));
  api = await startFakeApiserver({ token: TOKEN, accept: { websocket: true, spdy: true } });
  api.pods.set('demo', { name: 'demo' });
  api.pods.set('pending', { name: 'pending', phase: 'Pending' });
  kc = writeKubeconfig(dir, 'kubeconfig', api.url, TOKEN);
  backend = await upperCaseEcho();
  backendPort = backend.port;
  refusedPort = await closedPort();
});

afterAll(async () => {
  await backend.close();
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Sends `text` on a new connection to the local port; resolves with all it got back. */
async function exchange(port: number, text: string, halfClose: boolean): Promise<string> {
  const s = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.on('error', () => {});
  const closed = once(s, 'close');
  if (halfClose) {
    s.end(text);
  } else {
    s.write(text);
    // v4 WebSocket has no half-close: wait for the answer, then close.
    await new Promise<void>((resolve) => {
      const check = () => {
        if (Buffer.concat(chunks).length >= text.length) resolve();
        else s.once('data', check);
      };
      check();
      s.once('end', () => resolve());
    });
    s.end();
  }
  await closed;
  return Buffer.concat(chunks).toString();
}

function forward(protocol: 'websocket' | 'spdy' | 'auto') {
  const ac = new AbortController();
  const r = start(
    [
      'port-forward',
      '--kubeconfig',
      kc,
      '--protocol',
      protocol,
      'demo',
      `:${backendPort}`,
      `0:${refusedPort}`,
    ],
    { signal: ac.signal },
  );
  return { ...r, stop: () => ac.abort() };
}

describe.each(['websocket', 'spdy'] as const)('kexec port-forward --protocol %s', (protocol) => {
  // kubectl 1.28 and later (client-go handleConnection closes the connection on an error-stream
  // message): a connection the pod refuses is reported, then the command ends, exit 1.
  it('forwards connection after connection; a refused one ends it with "lost connection to pod"', async () => {
    api.seen.length = 0;
    api.spdyPortForward.connections = 0;
    api.spdyPortForward.streams.length = 0;
    const pf = forward(protocol);
    const [, good] = await pf.stdout.waitFor(
      new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${backendPort}\n`),
    );
    const [, bad] = await pf.stdout.waitFor(
      new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${refusedPort}\n`),
    );
    const halfClose = protocol === 'spdy';

    expect(await exchange(Number(good), 'hello', halfClose)).toBe('HELLO');
    expect(await exchange(Number(good), 'again', halfClose)).toBe('AGAIN');
    expect(await exchange(Number(bad), 'lost', halfClose)).toBe('');
    expect(await pf.done).toBe(1);
    expect(pf.stderr.data).toBe(
      `error: an error occurred forwarding ${bad} -> ${refusedPort}: error forwarding port ${refusedPort} to pod demo, uid : dial tcp4 127.0.0.1:${refusedPort}: connect: connection refused\n` +
        'error: lost connection to pod\n',
    );
    expect(pf.stdout.data.match(/Handling connection for \d+/g)).toEqual([
      `Handling connection for ${good}`,
      `Handling connection for ${good}`,
      `Handling connection for ${bad}`,
    ]);
    // Ended: the listeners are closed.
    const refused = net.connect({ host: '127.0.0.1', port: Number(good) });
    const [err] = (await once(refused, 'error')) as [NodeJS.ErrnoException];
    expect(err.code).toBe('ECONNREFUSED');

    const upgrades = api.seen.filter((s) => s.upgrade !== undefined);
    if (protocol === 'websocket') {
      expect(upgrades.map((s) => `${s.method} ${s.url}`)).toEqual([
        `GET /api/v1/namespaces/default/pods/demo/portforward?ports=${backendPort}`,
        `GET /api/v1/namespaces/default/pods/demo/portforward?ports=${backendPort}`,
        `GET /api/v1/namespaces/default/pods/demo/portforward?ports=${refusedPort}`,
      ]);
    } else {
      // One SPDY connection for everything, dialed before listening, as kubectl.
      expect(upgrades.map((s) => `${s.method} ${s.url} ${s.upgrade}`)).toEqual([
        'POST /api/v1/namespaces/default/pods/demo/portforward SPDY/3.1',
      ]);
      expect(api.spdyPortForward.connections).toBe(1);
      expect(api.spdyPortForward.streams).toEqual(
        [backendPort, backendPort, refusedPort].flatMap((port, i) => [
          { streamType: 'error', port: String(port), requestID: String(i) },
          { streamType: 'data', port: String(port), requestID: String(i) },
        ]),
      );
    }
  });
});

describe('kexec port-forward', () => {
  it('auto: WebSocket refused, then SPDY for this connection and the next', async () => {
    api.seen.length = 0;
    api.accept.websocket = false;
    try {
      const pf = forward('auto');
      const [, good] = await pf.stdout.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> \d+\n/);
      expect(await exchange(Number(good), 'one', true)).toBe('ONE');
      expect(await exchange(Number(good), 'two', true)).toBe('TWO');
      pf.stop();
      expect(await pf.done).toBe(0);
      expect(pf.stderr.data).toBe('');
      expect(api.seen.filter((s) => s.upgrade !== undefined).map((s) => `${s.method} ${s.upgrade}`)).toEqual([
        'GET websocket',
        'POST SPDY/3.1',
      ]);
    } finally {
      api.accept.websocket = true;
    }
  });

  it('websocket: a refused upgrade is reported, then the command ends as kubectl', async () => {
    api.accept.websocket = false;
    try {
      const pf = forward('websocket');
      const [, good] = await pf.stdout.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> \d+\n/);
      expect(await exchange(Number(good), 'x', true)).toBe('');
      expect(await pf.done).toBe(1);
      expect(pf.stderr.data).toBe(
        `error: an error occurred forwarding ${good} -> ${backendPort}: unable to upgrade connection: unable to upgrade: WebSocket is not served here\n` +
          'error: lost connection to pod\n',
      );
    } finally {
      api.accept.websocket = true;
    }
  });

  it('spdy: a lost connection ends the command with "lost connection to pod"', async () => {
    api.spdyPortForward.connections = 0;
    const pf = forward('spdy');
    const [, good] = await pf.stdout.waitFor(
      new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${backendPort}\n`),
    );
    expect(await exchange(Number(good), 'before', true)).toBe('BEFORE');
    for (const s of api.spdyPortForward.sockets) s.destroy();
    expect(await pf.done).toBe(1);
    expect(pf.stderr.data).toBe('error: lost connection to pod\n');
    expect(api.spdyPortForward.connections).toBe(1);
  });

  it('spdy: a refused upgrade fails before listening, as kubectl', async () => {
    api.accept.spdy = false;
    try {
      const r = await run(['port-forward', '--kubeconfig', kc, '--protocol', 'spdy', 'demo', '8080:80']);
      expect(r).toEqual({
        code: 1,
        stdout: '',
        stderr: 'Error from server (BadRequest): unable to upgrade: SPDY is not served here\n',
      });
    } finally {
      api.accept.spdy = true;
    }
  });

  it('refuses a pod that is not running, and bad arguments', async () => {
    expect((await run(['port-forward', '--kubeconfig', kc, 'pending', '80'])).stderr).toBe(
      'error: unable to forward port because pod is not running. Current status=Pending\n',
    );
    expect((await run(['port-forward', '--kubeconfig', kc, 'demo'])).stderr).toBe(
      "error: TYPE/NAME and list of ports are required for port-forward\nSee 'kexec port-forward -h' for help and examples\n",
    );
    expect((await run(['port-forward', '--kubeconfig', kc, 'demo', '80:0'])).stderr).toBe(
      'error: remote port must be > 0\n',
    );
  });

  it('reports a local port it cannot listen on', async () => {
    const busy = net.createServer();
    const busyPort = await listen(busy);
    try {
      const r = await run([
        'port-forward',
        '--kubeconfig',
        kc,
        '--address',
        '127.0.0.1',
        'demo',
        `${busyPort}:80`,
      ]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^Unable to listen on port ${busyPort}: Listeners failed to create with the following errors: \\[unable to create listener: Error listen EADDRINUSE.*\\]\nerror: unable to listen on any of the requested ports: \\[\\{${busyPort} 80\\}\\]\n$`,
        ),
      );
    } finally {
      await closeServer(busy);
    }
  });
});

describe('port specs and addresses (client-go parsePorts / parseAddresses)', () => {
  it('parses LOCAL:REMOTE, REMOTE and :REMOTE', () => {
    expect(parsePorts(['8080:80', '5000', ':6000', '0:7000'])).toEqual([
      { local: 8080, remote: 80 },
      { local: 5000, remote: 5000 },
      { local: 0, remote: 6000 },
      { local: 0, remote: 7000 },
    ]);
  });

  it('refuses what client-go refuses, with its words', () => {
    expect(() => parsePorts(['1:2:3'])).toThrow("invalid port format '1:2:3'");
    expect(() => parsePorts(['x:80'])).toThrow(
      `error parsing local port 'x': strconv.ParseUint: parsing "x": invalid syntax`,
    );
    expect(() => parsePorts(['80:70000'])).toThrow(
      `error parsing remote port '70000': strconv.ParseUint: parsing "70000": value out of range`,
    );
    expect(() => parsePorts([':0'])).toThrow('remote port must be > 0');
  });

  it('expands localhost to 127.0.0.1 and ::1, sorted, without duplicates', () => {
    expect(parseAddresses(['localhost', '127.0.0.1', '10.0.0.2'])).toEqual([
      { address: '10.0.0.2', family: 4, failureMode: 'any' },
      { address: '127.0.0.1', family: 4, failureMode: 'any' },
      { address: '::1', family: 6, failureMode: 'all' },
    ]);
    expect(() => parseAddresses(['example.com'])).toThrow('example.com is not a valid IP');
  });

  it('takes --address as a comma list and repeated', () => {
    const o = completePortForward(['pod/demo', '80'], { address: ['127.0.0.1', '::1'] });
    expect(o.addresses.map((a) => a.address)).toEqual(['127.0.0.1', '::1']);
    expect(o.pod).toBe('demo');
  });
});
