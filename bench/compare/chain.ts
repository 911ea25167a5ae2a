/**
 * The chain's side of the comparison bench: a lab (lab/lab.ts: apiserver, kubelet-sim, cri-shim as
 * three processes) and the clients that cross it — kexec's own stream clients in this process
 * (warm: no Node start-up counted), real kubectl v1.35 as a process, and the port-forward CLIs.
 * Every transfer checks its byte count; a short one throws.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import WebSocket from 'ws';
import { loadClientConfig } from '../../kexec/client.js';
import { startLab, type Lab } from '../../lab/lab.js';
import { demoPod, ensurePod, waitForPodRunning } from '../../lab/pods.js';
import { RuntimeServiceClient } from '../../shared/cri/client.js';
import { packageRoot } from '../../shared/package-root.js';
import { runChannelClient, type ChannelClientOptions } from '../../shared/remotecommand/websocket-client.js';
import { runSpdyClient } from '../../shared/remotecommand/spdy-client.js';
import { dialSpdy } from '../../shared/spdy/dial.js';
import { SPDY_CLIENT_PROTOCOLS } from '../../shared/spdy/upgrade.js';

const MiB = 1024 * 1024;

export interface ChainLab {
  lab: Lab;
  secure: boolean;
  translation: boolean;
  ca?: Buffer;
  /** The last service log lines, for a failure's message. */
  logTail: string[];
}

export async function startChainLab(
  dir: string,
  opts: { secure: boolean; translation: boolean },
): Promise<ChainLab> {
  const logTail: string[] = [];
  const lab = await startLab({
    dir,
    port: 0,
    insecureHttp: !opts.secure,
    streamTranslation: opts.translation,
    log: (line) => {
      logTail.push(line);
      if (logTail.length > 200) logTail.shift();
    },
  });
  const ca = lab.caFile ? fs.readFileSync(lab.caFile) : undefined;
  // The port-forward target listens on the host's loopback: forward to a hostNetwork pod, since
  // `demo` has a network namespace of its own (as e2e/kexec-lab.test.ts does).
  const cfg = await loadClientConfig({ kubeconfig: lab.kubeconfigPath });
  const pod = demoPod({ name: PORT_FORWARD_POD });
  const spec = { ...pod.spec, hostNetwork: true };
  await ensurePod(cfg, { ...pod, spec });
  await waitForPodRunning(cfg, 'default', PORT_FORWARD_POD);
  return { lab, ...opts, ca, logTail };
}

/** The pod the port-forward CLIs forward to: `hostNetwork: true`, so the host's ports are its own. */
const PORT_FORWARD_POD = 'hostnet';

/** kexec's two stream clients, in this process. */
export type KexecProtocol = 'websocket' | 'spdy';

export function execUrl(c: ChainLab, cmd: string[], stdin = false): string {
  const u = new URL('/api/v1/namespaces/default/pods/demo/exec', c.lab.apiserverUrl);
  for (const a of cmd) u.searchParams.append('command', a);
  u.searchParams.set('container', 'demo');
  u.searchParams.set('stdout', 'true');
  u.searchParams.set('stderr', 'true');
  if (stdin) u.searchParams.set('stdin', 'true');
  return u.href;
}

function clientOpts(c: ChainLab, url: string): ChannelClientOptions {
  return {
    url,
    headers: { Authorization: `Bearer ${c.lab.adminToken}` },
    tls: c.ca ? { ca: c.ca } : undefined,
    handshakeTimeoutMs: 60_000,
  };
}

function run(protocol: KexecProtocol, opts: ChannelClientOptions) {
  return protocol === 'spdy' ? runSpdyClient(opts) : runChannelClient(opts);
}

class Counter extends Writable {
  bytes = 0;
  text = '';
  constructor(private readonly keepText = false) {
    super();
  }
  override _write(c: Buffer, _e: BufferEncoding, cb: () => void): void {
    this.bytes += c.length;
    if (this.keepText && this.text.length < 4096) this.text += c.toString();
    cb();
  }
}

const CHUNK = Buffer.alloc(64 * 1024, 'z');

function bytesReadable(total: number): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const k = Math.min(left, CHUNK.length);
      left -= k;
      this.push(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k));
    },
  });
}

function check(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: ${got} bytes arrived, ${want} expected`);
}

/** stdout MiB/s of `head -c N /dev/zero` through the chain (handshake included). */
export async function kexecStdout(c: ChainLab, p: KexecProtocol, bytes: number): Promise<number> {
  const out = new Counter();
  const t0 = performance.now();
  const r = await run(p, {
    ...clientOpts(c, execUrl(c, ['head', '-c', String(bytes), '/dev/zero'])),
    stdout: out,
    stderr: new Counter(),
  });
  const s = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`head exited ${r.exitCode}`);
  check(`kexec ${p} stdout`, out.bytes, bytes);
  return bytes / MiB / s;
}

/** stdin MiB/s: N bytes into `wc -c`, which must count them all. */
export async function kexecStdin(c: ChainLab, p: KexecProtocol, bytes: number): Promise<number> {
  const out = new Counter(true);
  const t0 = performance.now();
  const r = await run(p, {
    ...clientOpts(c, execUrl(c, ['wc', '-c'], true)),
    stdin: bytesReadable(bytes),
    stdout: out,
    stderr: new Counter(),
  });
  const s = (performance.now() - t0) / 1000;
  if (r.exitCode !== 0) throw new Error(`wc exited ${r.exitCode}`);
  check(`kexec ${p} stdin`, Number(out.text.trim()), bytes);
  return bytes / MiB / s;
}

/** One `true` through the chain: the exec round trip in ms. */
export async function kexecTrue(c: ChainLab, p: KexecProtocol): Promise<number> {
  const t0 = performance.now();
  const r = await run(p, {
    ...clientOpts(c, execUrl(c, ['true'])),
    stdout: new Counter(),
    stderr: new Counter(),
  });
  if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
  return performance.now() - t0;
}

/** ms from the request to the 101 (the connection is then dropped). */
export function timeTo101(c: ChainLab, p: KexecProtocol): Promise<number> {
  const o = clientOpts(c, execUrl(c, ['true']));
  const t0 = performance.now();
  if (p === 'spdy') {
    return dialSpdy({ url: o.url, headers: o.headers, tls: o.tls }, SPDY_CLIENT_PROTOCOLS).then((d) => {
      const ms = performance.now() - t0;
      d.socket.destroy();
      return ms;
    });
  }
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(o.url.replace(/^http/, 'ws'), ['v5.channel.k8s.io'], {
      ...o.tls,
      headers: o.headers,
      perMessageDeflate: false,
    });
    ws.once('upgrade', () => {
      resolve(performance.now() - t0);
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

/** The same `true` straight at the runtime (CRI Exec, then its streaming server): the baseline. */
export async function runtimeTrue(c: ChainLab, cri: RuntimeServiceClient, p: KexecProtocol): Promise<number> {
  const t0 = performance.now();
  const { containers } = await cri.listContainers({});
  const demo = containers.find((x) => x.metadata?.name === 'demo' && x.state === 'CONTAINER_RUNNING');
  if (!demo) throw new Error('no running demo container in the runtime');
  const { url } = await cri.exec({ container_id: demo.id, cmd: ['true'], stdout: true, stderr: true });
  const r = await run(p, {
    url,
    tls: c.ca ? { ca: c.ca } : undefined,
    stdout: new Counter(),
    stderr: new Counter(),
  });
  if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode}`);
  return performance.now() - t0;
}

export function criClient(c: ChainLab): RuntimeServiceClient {
  return new RuntimeServiceClient(c.lab.nodes[0]!.criEndpoint);
}

/** Execs of `true` completed per second with `concurrency` clients looping for `seconds`. */
export async function execsPerSecond(
  c: ChainLab,
  p: KexecProtocol,
  concurrency: number,
  seconds: number,
): Promise<{ rate: number; errors: number }> {
  const end = performance.now() + seconds * 1000;
  let done = 0;
  let errors = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        try {
          await kexecTrue(c, p);
          done++;
        } catch {
          errors++;
        }
      }
    }),
  );
  return { rate: done / ((performance.now() - t0) / 1000), errors };
}

/**
 * Idle sessions: `cat` with stdin open, `batch` at a time, each batch once every one of its
 * sessions has its 101 (SPDY) or is open (WebSocket). Firing them all at once instead (as this did
 * for SPDY) makes a thousand TLS handshakes wait on each other, and sessions time out in the
 * runtime's stream creation wait. `failures()` counts sessions that ended before `close()`.
 */
export async function openIdleSessions(
  c: ChainLab,
  n: number,
  p: KexecProtocol,
): Promise<{ close(): void; failures(): number }> {
  const sockets: { destroy(): void }[] = [];
  let closing = false;
  let failures = 0;
  const failed = (): void => void (closing || failures++);
  const open = async (): Promise<void> => {
    const o = clientOpts(c, execUrl(c, ['cat'], true));
    if (p === 'spdy') {
      // A raw SPDY upgrade is enough to hold a session's connection at each hop, but the runtime
      // would time it out waiting for streams: drive the real client with a stdin that never ends.
      const stdin = new Readable({ read() {} });
      sockets.push({ destroy: () => stdin.destroy() });
      await new Promise<void>((resolve, reject) => {
        const done = run('spdy', {
          ...o,
          stdin,
          stdout: new Counter(),
          stderr: new Counter(),
          onUpgrade: () => resolve(),
        });
        done.then(failed, (err: Error) => {
          failed();
          reject(err);
        });
      });
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(o.url.replace(/^http/, 'ws'), ['v5.channel.k8s.io'], {
        ...o.tls,
        headers: o.headers,
        perMessageDeflate: false,
      });
      ws.once('open', () => resolve());
      ws.once('error', reject);
      ws.once('close', failed);
      ws.on('message', () => {});
      sockets.push({ destroy: () => ws.terminate() });
    });
  };
  const batch = 25;
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, open));
  }
  return {
    close: () => {
      closing = true;
      sockets.forEach((s) => s.destroy());
    },
    failures: () => failures,
  };
}

const kubectlBin = (): string => path.join(packageRoot(), '.tools', 'kubectl-v1.35', 'kubectl');

export function kubectlEnv(c: ChainLab, home: string, spdy: boolean): NodeJS.ProcessEnv {
  fs.mkdirSync(home, { recursive: true });
  return {
    ...process.env,
    HOME: home,
    KUBECONFIG: c.lab.kubeconfigPath,
    ...(spdy ? { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } : {}),
  };
}

/** kubectl v1.35 exec as a process: stdout (`head -c`) or stdin (`wc -c`) MiB/s, start-up included. */
export function kubectlTransfer(
  c: ChainLab,
  home: string,
  spdy: boolean,
  dir: 'stdout' | 'stdin',
  bytes: number,
): Promise<number> {
  const cmd =
    dir === 'stdout'
      ? ['exec', 'demo', '--', 'head', '-c', String(bytes), '/dev/zero']
      : ['exec', '-i', 'demo', '--', 'wc', '-c'];
  const t0 = performance.now();
  const child = spawn(kubectlBin(), cmd, { env: kubectlEnv(c, home, spdy), stdio: ['pipe', 'pipe', 'pipe'] });
  const out = new Counter(dir === 'stdin');
  child.stdout.pipe(out);
  let err = '';
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => {});
  if (dir === 'stdin') bytesReadable(bytes).pipe(child.stdin);
  else child.stdin.end();
  return new Promise((resolve, reject) => {
    child.once('close', (code) => {
      const s = (performance.now() - t0) / 1000;
      try {
        if (code !== 0) throw new Error(`kubectl exited ${code}: ${err.trim()}`);
        check(`kubectl ${dir}`, dir === 'stdout' ? out.bytes : Number(out.text.trim()), bytes);
        resolve(bytes / MiB / s);
      } catch (e) {
        reject(e as Error);
      }
    });
  });
}

export type PortForwardCli = 'kexec-websocket' | 'kexec-spdy' | 'kubectl-websocket' | 'kubectl-spdy';

/**
 * A port-forward CLI process (kexec or kubectl) forwarding a free local port to `remote`; reads
 * `bytes` from the first connection (the target writes them) and returns MiB/s from connect to
 * the last byte.
 */
export async function portForward(
  c: ChainLab,
  home: string,
  cli: PortForwardCli,
  remote: number,
  bytes: number,
): Promise<number> {
  const local = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
  const spdy = cli.endsWith('spdy');
  const args = ['port-forward', '--address', '127.0.0.1', `pod/${PORT_FORWARD_POD}`, `${local}:${remote}`];
  const child = cli.startsWith('kubectl')
    ? spawn(kubectlBin(), args, { env: kubectlEnv(c, home, spdy), stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(
        process.execPath,
        [
          path.join(packageRoot(), 'bin', 'kexec.js'),
          ...[
            'port-forward',
            '--kubeconfig',
            c.lab.kubeconfigPath,
            '--protocol',
            spdy ? 'spdy' : 'websocket',
          ],
          ...['--address', '127.0.0.1', PORT_FORWARD_POD, `${local}:${remote}`],
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
  try {
    await new Promise<void>((resolve, reject) => {
      let text = '';
      const timer = setTimeout(() => reject(new Error(`${cli}: not forwarding after 15 s: ${text}`)), 15_000);
      const onData = (d: Buffer): void => {
        text += d.toString();
        if (text.includes('Forwarding from')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (d: Buffer) => (text += d.toString()));
      child.once('exit', (code) => reject(new Error(`${cli} exited ${code}: ${text}`)));
    });
    return await new Promise<number>((resolve, reject) => {
      const t0 = performance.now();
      const s = net.connect(local, '127.0.0.1');
      let got = 0;
      s.on('data', (d: Buffer) => {
        got += d.length;
        if (got >= bytes) {
          s.destroy();
          resolve(bytes / MiB / ((performance.now() - t0) / 1000));
        }
      });
      s.once('error', reject);
      s.once('close', () => {
        if (got < bytes) reject(new Error(`${cli}: ${got} of ${bytes} bytes`));
      });
    });
  } finally {
    child.kill('SIGTERM');
  }
}
