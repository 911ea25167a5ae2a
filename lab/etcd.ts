/**
 * A real etcd for the lab (`npm start -- --etcd`) and for tests: one member, data in `dataDir`,
 * client and peer URLs on 127.0.0.1 with free ports, its own process group. Ready once its
 * `/health` answers `{"health":"true"}` (polled, bounded; an exit before that fails at once).
 * `stop()` sends SIGTERM, waits (bounded), then SIGKILLs the group, and always waits for the exit.
 *
 * The binary is `etcd` from the Debian package `etcd-server` (.ci/apt-packages.txt). History is
 * compacted every 5 minutes, as kube-apiserver's `--etcd-compaction-interval` does by default.
 *
 * With `tls` (the lab's default, as kubeadm's stacked etcd) the client URL is https with
 * `--cert-file`/`--key-file` and `--client-cert-auth --trusted-ca-file`: only a client certificate
 * from the etcd CA (the apiserver's `apiserver-etcd-client`) gets in. The one member's peer URL
 * stays plain http on loopback (no other member ever dials it).
 */
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { defaultLog, startService, type Service } from './supervisor.js';
import { type Logger } from '../shared/logging.js';

export interface EtcdOptions {
  dataDir: string;
  /** Log prefix and member name. Default `etcd`. */
  name?: string;
  /** The etcd binary. Default `etcd` (PATH). */
  binary?: string;
  /** Every output line, prefixed `[name] `. Default: stderr. */
  log?: Logger;
  readyTimeoutMs?: number;
  /** Fixed ports (e.g. to start a member again where clients expect it); free ones by default. */
  clientPort?: number;
  peerPort?: number;
  /** Aborting it while etcd starts stops it and rejects. */
  signal?: AbortSignal;
  /** Serve clients over https and require client certificates (files, PEM). */
  tls?: EtcdTls;
}

export interface EtcdTls {
  /** The etcd CA: verifies client certificates (and is what clients trust). */
  caFile: string;
  /** etcd's serving certificate and key. */
  certFile: string;
  keyFile: string;
  /** A client certificate from the etcd CA, for the readiness probe (the apiserver's). */
  clientCertFile: string;
  clientKeyFile: string;
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
  const endpoint = `${opts.tls ? 'https' : 'http'}://127.0.0.1:${clientPort}`;
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
      ...(opts.tls
        ? [
            '--cert-file',
            opts.tls.certFile,
            '--key-file',
            opts.tls.keyFile,
            '--client-cert-auth',
            '--trusted-ca-file',
            opts.tls.caFile,
          ]
        : []),
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
        if (await healthy(endpoint, opts.tls)) return { service: name, endpoint };
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(opts.signal?.aborted ? `${name}: start-up interrupted` : `${name} is not ready`);
    },
  });
  return Object.assign(service, { endpoint, peerEndpoint: peer, lastLines });
}

/** etcd's `/health` answers `{"health":"true"}` (over https with the probe's client certificate). */
function healthy(endpoint: string, tls?: EtcdTls): Promise<boolean> {
  return new Promise((resolve) => {
    const get = tls ? https.get : http.get;
    const req = get(
      `${endpoint}/health`,
      {
        timeout: 1000,
        ...(tls
          ? {
              ca: fs.readFileSync(tls.caFile),
              cert: fs.readFileSync(tls.clientCertFile),
              key: fs.readFileSync(tls.clientKeyFile),
            }
          : {}),
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 && (JSON.parse(body) as { health?: string }).health === 'true');
          } catch {
            resolve(false);
          }
        });
        res.on('error', () => resolve(false));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}
