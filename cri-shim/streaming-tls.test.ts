/**
 * The streaming server over https (`--streaming-tls-cert-file`, `--streaming-tls-private-key-file`;
 * containerd's `enable_tls_streaming` with `x509_key_pair_streaming`): the URLs CRI Exec, Attach and
 * PortForward return are https; exec, attach and port-forward work over WebSocket and SPDY for a
 * client that trusts the issuing CA; a client trusting another CA (or only Node's default roots)
 * fails the handshake before the token is read, so the URL stays usable; plain http on the port
 * gets no session (the request, token included, is never read); the kubelet-sim's
 * UpgradeAwareHandler verifies the certificate, and Node's NODE_EXTRA_CA_CERTS, which is how the
 * lab's kubelet-sim trusts the lab CA, covers its `https.request` (no `ca`, `agent: false`).
 * Without the protection, plain http would be served and the URLs would be http: every test fails.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Readable, Writable, type Duplex } from 'node:stream';
import { issueServingCert } from '../shared/tls/cert-issuer.js';
import { ensureCa } from '../shared/tls/certificate-authority.js';
import { UpgradeAwareHandler } from '../shared/proxy/upgrade-aware-handler.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import { runSpdyClient } from '../shared/remotecommand/spdy-client.js';
import { dialSpdyPortForward } from '../shared/portforward/spdy-client.js';
import { openPortForwardTunnel } from '../shared/portforward/websocket-client.js';
import { parseReadyLine, type CriShimReady } from '../shared/ready-line.js';
import { waitFor } from '../shared/test-support/poll.js';
import { bwrapWorks } from './isolation.js';
import { startCriShim } from './server.js';
import { startFixture, type ShimFixture } from './test-support/shim-fixture.js';

const MODE = bwrapWorks() ? 'bwrap' : 'none';

function sink(): { w: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write: (c: Buffer, _e, cb) => {
      chunks.push(c);
      cb();
    },
  });
  return { w, text: () => Buffer.concat(chunks).toString() };
}

let tmp = '';
let certFile = '';
let keyFile = '';
let caPem = '';
let caFile = '';
let otherCaPem = '';
let fx: ShimFixture;
let containerId = '';
let echo: { port: number; close(): Promise<void> } | undefined;
let echoPort = 0;
const logs: string[] = [];

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-shim-tls-'));
  // As lab/pki.ts criShimStreamingTlsArgs: the lab CA issues cri-shim-NODE for the loopback names.
  const ca = await ensureCa(path.join(tmp, 'pki'));
  caPem = ca.certPem;
  caFile = ca.certFile;
  const cert = await issueServingCert(ca, 'cri-shim-node-1', {
    dnsNames: ['localhost'],
    ipAddresses: ['127.0.0.1'],
  });
  ({ certFile, keyFile } = cert);
  otherCaPem = (await ensureCa(path.join(tmp, 'other'))).certPem;
  fx = await startFixture(MODE, {
    streamingTls: { certFile, keyFile },
    log: (l) => logs.push(l),
  });
  containerId = await fx.start({ name: 'main', command: ['sleep', '1000'] });
  // Where port-forward reaches it: inside the pod under bwrap.
  echo = await fx.podServer('echo');
  echoPort = echo.port;
}, 60_000);

afterAll(async () => {
  await echo?.close();
  await fx?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const execUrl = async (cmd: string[], flags: { stderr?: boolean } = {}) =>
  (await fx.rt.exec({ container_id: containerId, cmd, stdout: true, ...flags })).url;

/** An exec over WebSocket v5 trusting `ca` (undefined: Node's default roots only). */
async function wsEcho(url: string, ca: string | undefined): Promise<{ out: string; exitCode: number }> {
  const out = sink();
  const r = await runChannelClient({ url, stdout: out.w, tls: ca ? { ca } : {}, handshakeTimeoutMs: 10_000 });
  return { out: out.text(), exitCode: r.exitCode };
}

describe('a cri-shim with --streaming-tls-cert-file', () => {
  it('returns https URLs from CRI Exec, Attach and PortForward, and logs the https address', async () => {
    expect(fx.shim.streamingUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const base = fx.shim.streamingUrl.replace(/[.]/g, '\\.');
    expect(await execUrl(['true'])).toMatch(new RegExp(`^${base}/exec/[\\w-]+$`));
    const attach = await fx.rt.attach({ container_id: containerId, stdout: true });
    expect(attach.url).toMatch(new RegExp(`^${base}/attach/[\\w-]+$`));
    const pf = await fx.rt.portForward({ pod_sandbox_id: fx.sandboxId, port: [echoPort] });
    expect(pf.url).toMatch(new RegExp(`^${base}/portforward/[\\w-]+$`));
    expect(logs.some((l) => l.includes(`streaming on ${fx.shim.streamingUrl}`))).toBe(true);
  });

  it('runs an exec over WebSocket (v5) for a client that trusts the CA', async () => {
    expect(await wsEcho(await execUrl(['echo', 'over tls']), caPem)).toEqual({
      out: 'over tls\n',
      exitCode: 0,
    });
  });

  it('runs an exec over SPDY/3.1 for a client that trusts the CA', async () => {
    const out = sink();
    const err = sink();
    const r = await runSpdyClient({
      url: await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 3'], { stderr: true }),
      stdout: out.w,
      stderr: err.w,
      tls: { ca: caPem },
    });
    expect({ out: out.text(), err: err.text(), exitCode: r.exitCode }).toEqual({
      out: 'out\n',
      err: 'err\n',
      exitCode: 3,
    });
  });

  it('attaches over WebSocket to the main process and feeds its stdin', async () => {
    const id = await fx.start({ name: 'echoer', command: ['cat'], stdin: true });
    const { url } = await fx.rt.attach({ container_id: id, stdin: true, stdout: true, stderr: true });
    const out = sink();
    const input = new Readable({ read() {} });
    const run = runChannelClient({ url, stdin: input, stdout: out.w, stderr: sink().w, tls: { ca: caPem } });
    input.push('attached over tls\n');
    await waitFor('the attached output', () => out.text().includes('attached over tls\n'));
    await fx.rt.stopContainer({ container_id: id, timeout: 0 });
    expect((await run).exitCode).toBe(137);
  });

  it('port-forwards over WebSocket and over SPDY for a client that trusts the CA', async () => {
    const ws = await fx.rt.portForward({ pod_sandbox_id: fx.sandboxId, port: [echoPort] });
    const tunnel = await openPortForwardTunnel({ url: ws.url, port: echoPort, tls: { ca: caPem } });
    const got: Buffer[] = [];
    tunnel.on('data', (c: Buffer) => got.push(c));
    tunnel.write('ping over wss');
    await waitFor('the WebSocket echo', () => Buffer.concat(got).toString() === 'ping over wss');
    tunnel.destroy();

    const spdy = await fx.rt.portForward({ pod_sandbox_id: fx.sandboxId, port: [] });
    const client = await dialSpdyPortForward({ url: spdy.url, tls: { ca: caPem } });
    const conn = await client.forward(echoPort, 10_000);
    const back: Buffer[] = [];
    conn.data.on('data', (c: Buffer) => back.push(c));
    conn.data.write('ping over spdy+tls');
    await waitFor('the SPDY echo', () => Buffer.concat(back).toString() === 'ping over spdy+tls');
    await client.close();
  });

  it('fails the handshake for a client that trusts another CA, or only the default roots; the token survives', async () => {
    const url = await execUrl(['echo', 'still mine']);
    const sessionsBefore = logs.filter((l) => /^exec in /.test(l)).length;
    for (const ca of [otherCaPem, undefined]) {
      const err = await wsEcho(url, ca).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).not.toBeInstanceOf(UpgradeRefusedError); // no HTTP answer at all
      expect(err).toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    }
    const err = await runSpdyClient({ url, stdout: sink().w, tls: { ca: otherCaPem } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(String(err)).toMatch(/unable to verify the first certificate/);
    expect(logs.filter((l) => /^exec in /.test(l)).length).toBe(sessionsBefore);
    // The request (and its token) never reached the server: the URL still works, once.
    expect(await wsEcho(url, caPem)).toEqual({ out: 'still mine\n', exitCode: 0 });
  });

  it('gives plain http on the port no session: the upgrade request is never read, the token survives', async () => {
    const url = new URL(await execUrl(['echo', 'not in clear']));
    const sock = net.connect(Number(url.port), url.hostname);
    const received: Buffer[] = [];
    sock.on('data', (c: Buffer) => received.push(c));
    sock.on('error', () => {});
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write(
      [
        `GET ${url.pathname} HTTP/1.1`,
        `Host: ${url.host}`,
        'Connection: Upgrade',
        'Upgrade: websocket',
        'Sec-WebSocket-Version: 13',
        'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
        'Sec-WebSocket-Protocol: v5.channel.k8s.io',
        '',
        '',
      ].join('\r\n'),
    );
    const timeout = new Promise<'open'>((r) => setTimeout(() => r('open'), 10_000).unref());
    expect(await Promise.race([closed.then(() => 'closed' as const), timeout])).toBe('closed');
    // At most a TLS alert record (content type 21), never an HTTP answer.
    const bytes = Buffer.concat(received);
    expect(bytes.toString('latin1')).not.toMatch(/HTTP\//);
    expect(bytes.length === 0 || bytes[0] === 21).toBe(true);
    await waitFor('the log line', () =>
      logs.some((l) => l.startsWith('TLS handshake error from 127.0.0.1:')),
    );
    // An http client sees the connection end without a response.
    const plain = await new Promise<unknown>((resolve) => {
      const req = http.get({ host: url.hostname, port: url.port, path: url.pathname, agent: false }, (res) =>
        resolve(res.statusCode),
      );
      req.on('error', resolve);
    });
    expect(plain).toMatchObject({ code: 'ECONNRESET', message: 'socket hang up' });
    expect(await wsEcho(url.href, caPem)).toEqual({ out: 'not in clear\n', exitCode: 0 });
  });

  describe("the kubelet-sim's UpgradeAwareHandler towards the https URL", () => {
    let proxy: http.Server;
    let proxyUrl = '';
    let handlerTls: { ca?: string } | undefined;
    let backend: string = '';

    beforeAll(async () => {
      // As kubelet-sim/server.ts builds it, plus `tls` where the test gives one.
      proxy = http.createServer((_req, res) => res.writeHead(400).end());
      proxy.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
        new UpgradeAwareHandler({
          location: new URL(backend),
          upgradeRequired: true,
          rejectForwardingRedirects: true,
          useLocationHost: true,
          stripHeaders: ['Authorization'],
          tls: handlerTls,
          backendTimeoutMs: 10_000,
        }).handleUpgrade(req, socket, head);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      proxyUrl = `http://127.0.0.1:${(proxy.address() as net.AddressInfo).port}`;
    });
    afterAll(() => new Promise((r) => proxy.close(r)));

    it('proxies an exec when it trusts the CA, and refuses with a Status when it does not', async () => {
      backend = await execUrl(['echo', 'proxied']);
      handlerTls = undefined; // Node's default roots: this process has no NODE_EXTRA_CA_CERTS
      const refused = await wsEcho(`${proxyUrl}/x`, undefined).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(refused).toBeInstanceOf(UpgradeRefusedError);
      expect((refused as UpgradeRefusedError).status?.message).toMatch(
        /unable to verify the first certificate/,
      );
      handlerTls = { ca: caPem };
      expect(await wsEcho(`${proxyUrl}/x`, undefined)).toEqual({ out: 'proxied\n', exitCode: 0 });
    });
  });

  it('is trusted by https.request without `ca` in a process started with NODE_EXTRA_CA_CERTS', async () => {
    // The call the handler makes (kubelet-sim passes no `tls`): https.request, agent false, no ca.
    const script = `
      const https = require('node:https');
      const req = https.request({ host: '127.0.0.1', port: Number(process.argv[1]), path: '/exec/x', agent: false },
        (res) => { console.log('status ' + res.statusCode); res.resume(); });
      req.on('error', (e) => console.log('error ' + e.code));
      req.end();`;
    const run = (env: NodeJS.ProcessEnv) =>
      new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, ['-e', script, new URL(fx.shim.streamingUrl).port], {
          env: { PATH: process.env.PATH, ...env },
          stdio: ['ignore', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (c: Buffer) => (out += c.toString()));
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('error', reject);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve(out.trim());
        });
      });
    // 400 "Upgrade request required": the handshake passed and the server answered.
    expect(await run({ NODE_EXTRA_CA_CERTS: caFile })).toBe('status 400');
    expect(await run({})).toBe('error UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it("refuses to start with a key that is not the certificate's", async () => {
    const other = await issueServingCert(await ensureCa(path.join(tmp, 'other')), 'impostor', {
      ipAddresses: ['127.0.0.1'],
    });
    const dir = fs.mkdtempSync(path.join(tmp, 'mismatch-'));
    await expect(
      startCriShim({
        listen: `unix://${dir}/cri.sock`,
        root: path.join(dir, 'root'),
        isolation: 'none',
        streamingTls: { certFile, keyFile: other.keyFile },
        log: () => {},
      }),
    ).rejects.toThrow(/failed to load x509 key pair for the streaming server/);
  });
});

describe('cri-shim main.js (dist/: npm run build)', () => {
  const MAIN = path.join(process.cwd(), 'dist', 'cri-shim', 'main.js');

  /** Runs main.js until its READY line or its exit (bounded); SIGTERM after READY. */
  function runMain(
    args: string[],
  ): Promise<{ ready?: { streamingUrl: string }; code: number | null; stderr: string }> {
    const dir = fs.mkdtempSync(path.join(tmp, 'main-'));
    const child = spawn(
      process.execPath,
      [
        MAIN,
        '--listen',
        `unix://${dir}/cri.sock`,
        '--root',
        path.join(dir, 'root'),
        '--isolation',
        'none',
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let stderr = '';
    let ready: { streamingUrl: string } | undefined;
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out
        .split('\n')
        .slice(0, -1)
        .find((l) => parseReadyLine(l)); // whole lines only
      if (line && !ready) {
        ready = parseReadyLine(line) as CriShimReady;
        child.kill('SIGTERM');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    return new Promise((resolve) =>
      child.once('exit', (code) => {
        clearTimeout(timer);
        resolve({ ready, code, stderr });
      }),
    );
  }

  it('prints an https streamingUrl in its READY line with both flags', async () => {
    const r = await runMain([
      '--streaming-tls-cert-file',
      certFile,
      '--streaming-tls-private-key-file',
      keyFile,
    ]);
    expect(r.ready?.streamingUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(r.stderr).toMatch(/streaming on https:\/\/127\.0\.0\.1:\d+/);
    expect(r.code).toBe(0);
  }, 20_000);

  it('refuses one flag without the other, as containerd', async () => {
    const r = await runMain(['--streaming-tls-cert-file', certFile]);
    expect(r.ready).toBeUndefined();
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('--streaming-tls-cert-file needs --streaming-tls-private-key-file');
    const k = await runMain(['--streaming-tls-private-key-file', keyFile]);
    expect(k.code).not.toBe(0);
    expect(k.stderr).toContain('--streaming-tls-private-key-file needs --streaming-tls-cert-file');
  }, 20_000);
});
