/**
 * kubelet-sim `--fault`: the flag's values (parsing, errors, commander), and what a kubelet server
 * with a fault answers on the wire, in-process with a fake runtime. The attacks themselves, through
 * a real apiserver and real kubectl, are in e2e/kubelet-faults.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { CommanderError } from 'commander';
import { APISERVER_USER, KUBELET_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import { parseResponse, rawExchange } from '../shared/test-support/loopback.js';
import {
  DEFAULT_REDIRECT_LOCATION,
  FaultFlagError,
  formatKubeletFault,
  KUBELET_FAULT_MODES,
  parseKubeletFault,
  streamFaultHandler,
} from './fault-injection.js';
import { buildCommand } from './main.js';
import { KubeletServer } from './server.js';
import { FakeRuntime } from './test-support/fake-runtime.js';

describe('parseKubeletFault', () => {
  it.each(KUBELET_FAULT_MODES.filter((m) => m !== 'redirect'))('accepts %s', (mode) => {
    expect(parseKubeletFault(mode)).toEqual({ mode });
    expect(formatKubeletFault(parseKubeletFault(mode))).toBe(mode);
  });

  it('points a bare redirect at loopback port 1', () => {
    const f = parseKubeletFault('redirect');
    expect(f.mode).toBe('redirect');
    expect(f.location?.href).toBe(DEFAULT_REDIRECT_LOCATION);
    expect(formatKubeletFault(f)).toBe(`redirect=${DEFAULT_REDIRECT_LOCATION}`);
  });

  it('takes the redirect target after "="', () => {
    const f = parseKubeletFault('redirect=https://127.0.0.1:8443/exec/kube-system/etcd/etcd');
    expect(f.location?.href).toBe('https://127.0.0.1:8443/exec/kube-system/etcd/etcd');
    expect(parseKubeletFault(formatKubeletFault(f))).toEqual(f);
  });

  it.each([
    ['', /unknown fault mode "": expected one of none, redirect\[=URL\], ok-200, refuse-400/],
    ['refuse-404', /unknown fault mode "refuse-404": expected one of/],
    ['Redirect', /unknown fault mode "Redirect"/],
    ['refuse-400=now', /fault mode refuse-400 takes no value \(got "=now"\)/],
    ['none=1', /fault mode none takes no value/],
    ['redirect=localhost:8080', /redirect target "localhost:8080" must be an http:\/\/ or https:\/\/ URL/],
    ['redirect=/exec/x', /redirect target "\/exec\/x" is not an absolute URL/],
    ['redirect=file:///etc/passwd', /must be an http:\/\/ or https:\/\/ URL/],
  ])('refuses %j with a clear error', (value, message) => {
    expect(() => parseKubeletFault(value)).toThrow(FaultFlagError);
    expect(() => parseKubeletFault(value)).toThrow(message);
  });
});

describe('kubelet-sim --fault (commander)', () => {
  const REQUIRED = [
    '--apiserver',
    'https://127.0.0.1:6443',
    '--token-file',
    't',
    '--node-name',
    'n',
    '--container-runtime-endpoint',
    'unix:///x.sock',
  ];
  const parse = (...extra: string[]) => {
    const errors: string[] = [];
    const cmd = buildCommand()
      .exitOverride()
      .configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => {} });
    try {
      return { opts: cmd.parse(['node', 'kubelet-sim', ...REQUIRED, ...extra]).opts(), errors };
    } catch (err) {
      return { err: err as CommanderError, errors };
    }
  };

  it('is off unless given', () => {
    expect(parse().opts?.fault).toBeUndefined();
  });

  it('parses a mode', () => {
    expect(parse('--fault', 'refuse-500').opts?.fault).toEqual({ mode: 'refuse-500' });
    expect(parse('--fault', 'redirect=http://127.0.0.1:9/').opts?.fault).toMatchObject({
      mode: 'redirect',
      location: new URL('http://127.0.0.1:9/'),
    });
  });

  it('stops with exit code 1 and names the accepted modes on an unknown one', () => {
    const { err, errors } = parse('--fault', 'evil');
    expect(err).toBeInstanceOf(CommanderError);
    expect(err!.exitCode).toBe(1);
    expect(err!.code).toBe('commander.invalidArgument');
    expect(errors.join('')).toContain(
      `option '--fault <mode>' argument 'evil' is invalid. unknown fault mode "evil": expected one of none, redirect[=URL], ok-200, refuse-400, refuse-500, wrong-protocol, garbage`,
    );
  });
});

describe('a kubelet server with a fault', () => {
  const key = randomBytes(32);
  const token = mintToken(key, { name: APISERVER_USER, groups: [] }, { audience: KUBELET_AUDIENCE });
  const servers: KubeletServer[] = [];
  afterEach(async () => {
    while (servers.length) await servers.pop()!.close();
  });

  async function faulty(value: string) {
    const runtime = new FakeRuntime();
    const logs: string[] = [];
    const log = (l: string) => void logs.push(l);
    const server = new KubeletServer({
      apiserverTokenKeys: { hs256: key },
      runtime,
      log,
      fault: parseKubeletFault(value),
    });
    servers.push(server);
    const port = await server.listen(0, '127.0.0.1');
    return { port, runtime, logs };
  }

  const upgradeHead = (path: string, auth = true, method = 'POST') =>
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n` +
    `X-Stream-Protocol-Version: v4.channel.k8s.io\r\n${auth ? `Authorization: Bearer ${token}\r\n` : ''}` +
    'Content-Length: 0\r\n\r\n';

  /** Sends `data` on a fresh connection; resolves with what arrived until `done` says enough. */
  async function exchange(port: number, data: string, done: (got: string) => boolean) {
    const socket = net.connect(port, '127.0.0.1');
    await once(socket, 'connect');
    let got = '';
    let closed = false;
    socket.on('data', (c: Buffer) => (got += c.toString('latin1')));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.write(data);
    const deadline = Date.now() + 5000;
    while (!done(got) && !closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { socket, got: () => got, closed: () => closed };
  }

  const EXEC = '/exec/default/demo/c?command=ls&output=1';

  it('is not installed for none', () => {
    expect(streamFaultHandler(parseKubeletFault('none'), () => {})).toBeUndefined();
    expect(streamFaultHandler(undefined, () => {})).toBeUndefined();
  });

  it('still refuses an unauthenticated caller with 401, before any fault', async () => {
    const { port, runtime, logs } = await faulty('redirect');
    const { all } = await rawExchange(port, upgradeHead(EXEC, false));
    const res = parseResponse(await all);
    expect(res.code).toBe(401);
    expect(JSON.parse(res.body)).toMatchObject({ kind: 'Status', reason: 'Unauthorized' });
    expect(logs.filter((l) => l.startsWith('fault '))).toEqual([]);
    expect(runtime.calls).toEqual([]);
  });

  it('keeps /healthz and /containerLogs out of it', async () => {
    const { port, logs } = await faulty('refuse-500');
    expect(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text()).toBe('ok');
    const res = await fetch(`http://127.0.0.1:${port}/containerLogs/default/demo/c`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    // The fake runtime has no such container: the real log path answered, not the fault.
    expect(res.status).toBe(404);
    expect(await res.text()).not.toContain('fault');
    expect(logs.filter((l) => l.startsWith('fault '))).toEqual([]);
  });

  it.each([
    '/exec/default/demo/c?command=ls&output=1',
    '/attach/default/demo/c?output=1',
    '/portForward/default/demo',
  ])(
    'refuse-400 answers %s with a 400 Status, keeps the connection and never asks the runtime',
    async (path) => {
      const { port, runtime, logs } = await faulty('refuse-400');
      const c = await exchange(port, upgradeHead(path), (g) => g.includes('"code":400}'));
      const res = parseResponse(Buffer.from(c.got(), 'latin1'));
      expect(res.code).toBe(400);
      expect(res.headers.connection).toBe('keep-alive');
      expect(JSON.parse(res.body)).toEqual({
        kind: 'Status',
        apiVersion: 'v1',
        metadata: {},
        status: 'Failure',
        message: 'upgrade refused by kubelet-sim --fault refuse-400',
        reason: 'BadRequest',
        code: 400,
      });
      expect(c.closed()).toBe(false);
      expect(runtime.calls).toEqual([]);
      c.socket.destroy();
      const verb = path.split('/')[1];
      expect(logs).toContain(
        `fault refuse-400 [#1]: answered POST /${verb}/default/demo${verb === 'portForward' ? '' : '/c'} with 400, connection kept open`,
      );
    },
  );

  it('answers a second request on a refused connection, and says so (what a spliced client would reach)', async () => {
    const { port, logs } = await faulty('refuse-500');
    const c = await exchange(port, upgradeHead(EXEC) + 'GET /pods HTTP/1.1\r\nHost: x\r\n\r\n', (g) =>
      g.includes('reached the kubelet'),
    );
    expect(c.got()).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    expect(c.got()).toContain('"reason":"InternalError"');
    expect(c.got()).toContain('HTTP/1.1 200 OK\r\n');
    expect(c.got()).toContain('kubelet-sim: request 2 reached the kubelet');
    c.socket.destroy();
    const closed = async () => {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline && !logs.some((l) => l.includes('connection closed'))) {
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await closed();
    expect(logs).toContain('fault refuse-500 [#1]: connection closed after 2 request(s)');
    expect(logs.some((l) => l.includes('SECOND REQUEST') && l.includes('"GET /pods HTTP/1.1"'))).toBe(true);
  });

  const WIRE: [string, RegExp][] = [
    [
      'redirect',
      /^HTTP\/1\.1 302 Found\r\n[^]*Location: http:\/\/127\.0\.0\.1:1\/exec\/default\/demo\/c\?command=ls&output=1\r\n/,
    ],
    [
      'redirect=http://127.0.0.1:9/elsewhere',
      /^HTTP\/1\.1 302 Found\r\n[^]*Location: http:\/\/127\.0\.0\.1:9\/elsewhere\r\n/,
    ],
    ['ok-200', /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nkubelet-sim --fault ok-200: 200 OK, no upgrade\n$/],
    ['wrong-protocol', /^HTTP\/1\.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n$/],
  ];
  it.each(WIRE)('%s answers on the wire as documented', async (value, expected) => {
    const { port, runtime } = await faulty(value);
    const c = await exchange(port, upgradeHead(EXEC), (g) => expected.test(g));
    expect(c.got()).toMatch(expected);
    expect(runtime.calls).toEqual([]);
    c.socket.destroy();
  });

  it('garbage sends bytes that are not HTTP and closes', async () => {
    const { port, logs } = await faulty('garbage');
    const { all } = await rawExchange(port, upgradeHead(EXEC));
    const got = await all;
    expect(got.length).toBeGreaterThan(0);
    expect(got.subarray(0, 5).toString('latin1')).not.toBe('HTTP/');
    expect(got[0]).toBe(0);
    expect(
      logs.some((l) =>
        /^fault garbage \[#1\]: answered POST \/exec\/default\/demo\/c with \d+ bytes/.test(l),
      ),
    ).toBe(true);
  });

  it('numbers its connections', async () => {
    const { port, logs } = await faulty('ok-200');
    for (let i = 0; i < 2; i++) {
      const c = await exchange(port, upgradeHead(EXEC), (g) => g.includes('no upgrade'));
      c.socket.destroy();
    }
    const answered = logs.filter((l) => l.includes('answered'));
    expect(answered.map((l) => /\[#(\d+)\]/.exec(l)![1])).toEqual(['1', '2']);
  });

  it('logs once at start that faults are on', () => {
    const logs: string[] = [];
    streamFaultHandler(parseKubeletFault('wrong-protocol'), (l) => logs.push(l));
    expect(logs).toEqual([
      'FAULT INJECTION ON (--fault wrong-protocol): answer streaming upgrades with 101 to "h2c", a protocol nobody asked for; logs, pod sync and the Node are unaffected',
    ]);
  });
});
