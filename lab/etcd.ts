/**
 * A real etcd for the lab (`npm start -- --etcd`) and for tests: one member, data in `dataDir`,
 * client and peer URLs on 127.0.0.1 with free ports, its own process group. Ready once its
 * `/health` answers `{"health":"true"}` (polled, bounded; an exit before that fails at once).
 * `stop()` sends SIGTERM, waits (bounded), then SIGKILLs the group, and always waits for the exit.
 *
 * The binary is `etcd` from the Debian package `etcd-server` (.ci/apt-packages.txt). History is
 * compacted every 5 minutes, as kube-apiserver's `--etcd-compaction-interval` does by default.
 */
import { once } from 'node:events';
import net from 'node:net';
import { defaultLog, startService, type Service } from './supervisor.js';

export interface EtcdOptions {
  dataDir: string;
  /** Log prefix and member name. Default `etcd`. */
  name?: string;
  /** The etcd binary. Default `etcd` (PATH). */
  binary?: string;
  /** Every output line, prefixed `[name] `. Default: stderr. */
  log?: (line: string) => void;
  readyTimeoutMs?: number;
  /** Fixed ports (e.g. to start a member again where clients expect it); free ones by default. */
  clientPort?: number;
  peerPort?: number;
  /** Aborting it while etcd starts stops it and rejects. */
  signal?: AbortSignal;
}

export interface EtcdProcess extends Service {
  /** The client URL, e.g. `http://127.0.0.1:40123` (what `--etcd-servers` takes). */
  readonly endpoint: string;
  /** The peer URL (raft between members; unused with one member but bound). */
  readonly peerEndpoint: string;
}

/** A port nothing listens on right now (etcd binds it a moment later; a clash is retried). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

export async function startEtcd(opts: EtcdOptions): Promise<EtcdProcess> {
  for (let attempt = 1; ; attempt++) {
    const etcd = await startOnce(opts);
    try {
      await etcd.ready;
      return etcd;
    } catch (err) {
      await etcd.stop();
      // Another process took a port between freePort() and etcd's bind: try other ports.
      const fixed = opts.clientPort !== undefined || opts.peerPort !== undefined;
      if (!fixed && attempt < 3 && /address already in use/.test(etcd.lastLines.join('\n'))) continue;
      throw err;
    }
  }
}

async function startOnce(opts: EtcdOptions): Promise<EtcdProcess & { lastLines: string[] }> {
  const name = opts.name ?? 'etcd';
  const log = opts.log ?? defaultLog;
  const clientPort = opts.clientPort ?? (await freePort());
  const peerPort = opts.peerPort ?? (await freePort());
  const endpoint = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  const lastLines: string[] = [];
  const service = startService({
    name,
    program: opts.binary ?? 'etcd',
    args: [
      '--name',
      name,
      '--data-dir',
      opts.dataDir,
      '--listen-client-urls',
      endpoint,
      '--advertise-client-urls',
      endpoint,
      '--listen-peer-urls',
      peer,
      '--initial-advertise-peer-urls',
      peer,
      '--initial-cluster',
      `${name}=${peer}`,
      '--auto-compaction-mode',
      'periodic',
      '--auto-compaction-retention',
      '5m',
      '--logger',
      'zap',
      '--log-level',
      'warn',
    ],
    log: (line) => {
      lastLines.push(line);
      if (lastLines.length > 20) lastLines.shift();
      log(line);
    },
    readyTimeoutMs: opts.readyTimeoutMs,
    probe: async (gaveUp) => {
      const signal = opts.signal ? AbortSignal.any([gaveUp, opts.signal]) : gaveUp;
      while (!signal.aborted) {
        if (await healthy(endpoint)) return { service: name, endpoint };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(opts.signal?.aborted ? `${name}: start-up interrupted` : `${name} is not ready`);
    },
  });
  return Object.assign(service, { endpoint, peerEndpoint: peer, lastLines });
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    const res = await fetch(`${endpoint}/health`, { signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { health?: string };
    return res.ok && body.health === 'true';
  } catch {
    return false;
  }
}
