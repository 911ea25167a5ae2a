/**
 * kexec end to end against a fake apiserver on loopback: kubeconfig loading, the pod GET, the exec
 * URL, the real WebSocket channel client, stdin with v5 CLOSE, exit codes and error messages.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { failureStatus } from '../shared/status.js';
import { kexec } from './cli.js';
import { apiRequest, apiUrl, loadClientConfig } from './client.js';
import { writeKubeconfig } from './test-support/io.js';

const TOKEN = 'secret-token';

class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

let server: http.Server;
let base = '';
let dir = '';
let kubeconfig = '';
const seen: { url: string; auth?: string }[] = [];
const resizes: string[] = [];

function pod(name: string, containers = ['demo'], phase = 'Running') {
  return {
    kind: 'Pod',
    apiVersion: 'v1',
    metadata: { name, namespace: 'default' },
    spec: { nodeName: 'node-1', containers: containers.map((n) => ({ name: n, image: 'busybox' })) },
    status: { phase },
  };
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-cli-'));
  const wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) => (protocols.has('v5.channel.k8s.io') ? 'v5.channel.k8s.io' : false),
  });
  server = http.createServer((req, res) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization });
    if (req.headers.authorization !== `Bearer ${TOKEN}`)
      return sendJson(res, 401, failureStatus(401, 'Unauthorized'));
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/?]+)$/.exec(req.url ?? '');
    if (!m) return sendJson(res, 404, failureStatus(404, 'the server could not find the requested resource'));
    const [, ns, name] = m;
    if (name === 'missing' || ns !== 'default') {
      return sendJson(
        res,
        404,
        failureStatus(404, `pods "${name}" not found`, 'NotFound', { name, kind: 'pods' }),
      );
    }
    if (name === 'two') return sendJson(res, 200, pod(name, ['a', 'b']));
    if (name === 'done') return sendJson(res, 200, pod(name, ['demo'], 'Succeeded'));
    sendJson(res, 200, pod(name));
  });
  server.on('upgrade', (req, socket, head) => {
    seen.push({ url: req.url ?? '', auth: req.headers.authorization });
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname.includes('/pods/refused/')) {
      const body = JSON.stringify(
        failureStatus(403, 'pods "refused" is forbidden: no exec for you', 'Forbidden'),
      );
      socket.end(
        `HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      );
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => session(ws, url));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  kubeconfig = writeKubeconfig(dir, 'kubeconfig', base, TOKEN);
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A v5 session: echoes the command on stdout, stdin (until CLOSE) on stdout, then the status. */
function session(ws: WebSocket, url: URL): void {
  const command = url.searchParams.getAll('command');
  const out = (s: string) => ws.send(Buffer.concat([Buffer.from([1]), Buffer.from(s)]));
  const finish = () => {
    const code = command[0] === 'exit' ? Number(command[1]) : 0;
    const status =
      code === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: exit status ${code}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
          };
    ws.send(Buffer.concat([Buffer.from([3]), Buffer.from(JSON.stringify(status))]), () => ws.close(1000));
  };
  out('');
  out(`ran: ${command.join(' ')}\n`);
  ws.send(Buffer.concat([Buffer.from([2]), Buffer.from('to stderr\n')]));
  if (url.searchParams.get('stdin') !== 'true') return finish();
  ws.on('message', (data: Buffer) => {
    if (data.length === 2 && data[0] === 255 && data[1] === 0) return finish();
    if (data[0] === 0) out(`stdin: ${data.subarray(1).toString()}`);
    if (data[0] === 4) resizes.push(data.subarray(1).toString());
  });
}

async function run(argv: string[], input?: string) {
  const stdout = new Sink();
  const stderr = new Sink();
  const stdin = new PassThrough();
  if (input !== undefined) stdin.end(input);
  const code = await kexec(argv, { stdin, stdout, stderr, runChannelClient });
  return { code, stdout: stdout.data, stderr: stderr.data };
}

describe('kexec exec', () => {
  it('runs the command and prints stdout and stderr', async () => {
    seen.length = 0;
    const r = await run(['--kubeconfig', kubeconfig, 'demo', '--', 'ls', '/root']);
    expect(r).toEqual({ code: 0, stdout: 'ran: ls /root\n', stderr: 'to stderr\n' });
    expect(seen.map((s) => s.url)).toEqual([
      '/api/v1/namespaces/default/pods/demo',
      '/api/v1/namespaces/default/pods/demo/exec?command=ls&command=%2Froot&container=demo&stdout=true&stderr=true',
    ]);
    expect(seen.every((s) => s.auth === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('finds the kubeconfig through KUBECONFIG', async () => {
    const saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = kubeconfig;
    try {
      expect((await run(['demo', '--', 'true'])).code).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = saved;
    }
  });

  it('streams stdin with -i and half-closes it at EOF (v5 CLOSE)', async () => {
    seen.length = 0;
    const r = await run(['--kubeconfig', kubeconfig, '-i', 'demo', '--', 'cat'], 'hello\n');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('ran: cat\nstdin: hello\n');
    expect(seen[1].url).toContain('&stdin=true&stdout=true&stderr=true');
  });

  it('exits with the remote exit code', async () => {
    const r = await run(['--kubeconfig', kubeconfig, 'demo', '--', 'exit', '3']);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('to stderr\ncommand terminated with exit code 3\n');
  });

  it('reports a missing pod as kubectl does', async () => {
    const r = await run(['--kubeconfig', kubeconfig, 'missing', '--', 'ls']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error from server (NotFound): pods "missing" not found\n',
    });
  });

  it('uses -n over the context namespace', async () => {
    const r = await run(['--kubeconfig', kubeconfig, '-n', 'other', 'demo', '--', 'ls']);
    expect(r.stderr).toBe('Error from server (NotFound): pods "demo" not found\n');
  });

  it('reports a refused upgrade with its Status', async () => {
    const r = await run(['--kubeconfig', kubeconfig, 'refused', '--', 'ls']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error from server (Forbidden): pods "refused" is forbidden: no exec for you\n',
    });
  });

  it('reports a bad token', async () => {
    const bad = writeKubeconfig(dir, 'bad', base, 'nope');
    const r = await run(['--kubeconfig', bad, 'demo', '--', 'ls']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: You must be logged in to the server (Unauthorized)\n',
    });
  });

  it('reports an unreachable server', async () => {
    const off = writeKubeconfig(dir, 'off', 'http://127.0.0.1:1', TOKEN);
    const r = await run(['--kubeconfig', off, 'demo', '--', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: Get "http:\/\/127\.0\.0\.1:1\/api\/v1\/namespaces\/default\/pods\/demo": .*ECONNREFUSED/,
    );
  });

  // Issue 13: with no kubeconfig the user saw only `ECONNREFUSED 127.0.0.1:8080`.
  it('with no kubeconfig, a refused connection says where the lab’s kubeconfig is', async () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-nohome-'));
    try {
      const cfg = await loadClientConfig({}, { HOME: home });
      expect({ server: cfg.server.href, noKubeconfig: cfg.noKubeconfig }).toEqual({
        server: 'http://localhost:8080/',
        noKubeconfig: true,
      });
      // The same refusal on a port nothing listens on (localhost:8080 may be someone's).
      cfg.server = new URL('http://127.0.0.1:1');
      await expect(apiRequest(cfg, 'GET', apiUrl(cfg, '/api'))).rejects.toThrow(
        'The connection to the server 127.0.0.1:1 was refused - did you specify the right host or port?\n' +
          'No kubeconfig was found (--kubeconfig, $KUBECONFIG, ~/.kube/config). The lab writes one at ' +
          '.lab/kubeconfig in the folder where `npm start` runs: pass --kubeconfig .lab/kubeconfig, or ' +
          'export KUBECONFIG=$PWD/.lab/kubeconfig',
      );
      // A kubeconfig that names an unreachable server keeps the plain message.
      const named = await loadClientConfig({
        kubeconfig: writeKubeconfig(dir, 'off2', 'http://127.0.0.1:1', TOKEN),
      });
      expect(named.noKubeconfig).toBeUndefined();
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });

  it('refuses a completed pod', async () => {
    const r = await run(['--kubeconfig', kubeconfig, 'done', '--', 'ls']);
    expect(r.stderr).toBe(
      'error: cannot exec into a container in a completed pod; current phase is Succeeded\n',
    );
  });

  it('defaults the container and says so when there are several', async () => {
    seen.length = 0;
    const r = await run(['--kubeconfig', kubeconfig, 'two', '--', 'ls']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('Defaulted container "a" out of: a, b\nto stderr\n');
    expect(seen[1].url).toContain('container=a');
    seen.length = 0;
    await run(['--kubeconfig', kubeconfig, '-c', 'b', 'two', '--', 'ls']);
    expect(seen[1].url).toContain('container=b');
  });

  it('drops the TTY when stdin is not a terminal, as kubectl does', async () => {
    seen.length = 0;
    const r = await run(['--kubeconfig', kubeconfig, '-it', 'demo', '--', 'cat'], '');
    expect(r.stderr).toMatch(/^Unable to use a TTY - input is not a terminal or the right kind of file\n/);
    expect(seen[1].url).not.toContain('tty=true');
  });

  it('with a terminal: raw mode, the initial size and resizes, no stderr channel', async () => {
    seen.length = 0;
    resizes.length = 0;
    const rawCalls: boolean[] = [];
    const stdin = Object.assign(new PassThrough(), {
      isTTY: true,
      isRaw: false,
      setRawMode(mode: boolean) {
        rawCalls.push(mode);
        this.isRaw = mode;
        return this;
      },
    });
    const stdout = Object.assign(new Sink(), { isTTY: true, columns: 80, rows: 24 });
    const stderr = new Sink();
    const done = kexec(['--kubeconfig', kubeconfig, '-it', 'demo', '--', 'sh'], {
      stdin,
      stdout,
      stderr,
      runChannelClient,
    });
    await new Promise<void>((r) => {
      const check = () => (stdout.data.includes('ran: sh') ? r() : setTimeout(check, 10));
      check();
    });
    stdout.columns = 100;
    stdout.rows = 30;
    stdout.emit('resize');
    stdin.write('x');
    await new Promise<void>((r) => {
      const check = () => (stdout.data.includes('stdin: x') ? r() : setTimeout(check, 10));
      check();
    });
    stdin.end();
    expect(await done).toBe(0);
    expect(seen[1].url).toBe(
      '/api/v1/namespaces/default/pods/demo/exec?command=sh&container=demo&stdin=true&stdout=true&tty=true',
    );
    expect(rawCalls).toEqual([true, false]);
    expect(resizes).toHaveLength(2);
    expect(resizes[0].toLowerCase()).toContain('"width":80');
    expect(resizes[1].toLowerCase()).toContain('"height":30');
    expect(stderr.data).toBe('');
  });

  it('prints usage errors with a help pointer', async () => {
    const r = await run(['demo', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      "error: exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead\nSee 'kexec exec -h' for help and examples\n",
    );
  });
});
