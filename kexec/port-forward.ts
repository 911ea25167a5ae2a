/**
 * `kexec port-forward POD [LOCAL:]REMOTE...`: kubectl `pkg/cmd/portforward/portforward.go` Run
 * (GET the pod, refuse one that is not Running) and client-go `tools/portforward/portforward.go`
 * (listen on every address for every port, print `Forwarding from ADDR:LOCAL -> REMOTE`, and for
 * every accepted connection print `Handling connection for LOCAL` and open a tunnel).
 *
 * Tunnels: over WebSocket (default) one `v4.channel.k8s.io` WebSocket per local connection,
 * `pods/POD/portforward?ports=REMOTE` (shared/portforward/websocket-client.ts); over SPDY one
 * upgraded connection with a stream pair per local connection (spdy-port-forwarder.ts); `auto`
 * tries WebSocket and switches to SPDY for good when the WebSocket upgrade is refused.
 *
 * A failed connection (the pod refused it, the upgrade for it was refused) is reported on stderr
 * as `error: an error occurred forwarding L -> R: …`, and then port-forward ends with
 * `error: lost connection to pod` and exit code 1, as kubectl 1.28 and later do (kubernetes#117493; client-go
 * handleConnection closes the whole connection on any error-stream message; kubectl's
 * `lost connection to pod`; the long-standing complaints are kubectl #1169 and
 * kubernetes#74551). A supervisor restarts it, as for kubectl.
 *
 * Half-close: with SPDY a local EOF is forwarded as a FIN and the pod's answer still comes back;
 * v4 WebSocket has no half-close, so a local EOF closes that tunnel (an answer the pod sends
 * after it is lost: use SPDY for clients that half-close and then wait).
 */
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { apiUrl, loadClientConfig, type ClientConfig } from './client.js';
import { formatError } from './errors.js';
import { joinHostPort, type ForwardedPort } from './forwarded-ports.js';
import type { PortForwardOptions } from './cmd/port-forward.js';
import { getPod, podPath } from './pod.js';
import { isUpgradeFailure, resolveStreamProtocol, type StreamProtocol } from './remotecommand-executor.js';
import type { SpdyPortForwarder } from './spdy-port-forwarder.js';
import type { KexecIO } from './stream-session.js';

/** kubectl's switch for port-forward (KUBECTL_PORT_FORWARD_WEBSOCKETS=false: SPDY). */
export const PORT_FORWARD_WEBSOCKETS_ENV = 'KUBECTL_PORT_FORWARD_WEBSOCKETS';

/** Opens the pod side of one local connection; resolves with the error text when it is over. */
type Tunnel = (local: Duplex, remotePort: number) => Promise<string>;

export function portForwardUrl(cfg: Pick<ClientConfig, 'server'>, ns: string, pod: string, port?: number) {
  const q = port === undefined ? undefined : new URLSearchParams({ ports: String(port) });
  return apiUrl(cfg, podPath(ns, pod, 'portforward'), q);
}

/** One WebSocket per local connection (v4.channel.k8s.io, channel 0 data, 1 error). */
function websocketTunnel(cfg: ClientConfig, ns: string, pod: string): Tunnel {
  return async (local, remotePort) => {
    const { openPortForwardTunnel } = await import('../shared/portforward/websocket-client.js');
    const tunnel = await openPortForwardTunnel({
      url: portForwardUrl(cfg, ns, pod, remotePort).href,
      port: remotePort,
      portParam: 'ports',
      headers: cfg.headers,
      tls: cfg.tls,
    });
    return new Promise<string>((resolve) => {
      let error = '';
      tunnel.on('error', (err: Error & { code?: string }) => {
        error = err.message;
        local.end();
      });
      tunnel.once('end', () => {
        tunnel.destroy();
        resolve('');
      });
      tunnel.once('close', () => resolve(error));
      // v4 has no half-close: the local EOF closes the tunnel (see the module comment).
      local.pipe(tunnel);
      tunnel.pipe(local);
      if (local.destroyed) tunnel.destroy();
      else local.once('close', () => tunnel.destroy());
    });
  };
}

/** Ends a local connection once what was written to it is flushed (kubectl's deferred conn.Close). */
function closeLocal(local: net.Socket): void {
  if (local.destroyed) return;
  if (local.writableFinished) return void local.destroy();
  local.once('finish', () => local.destroy());
  local.end();
}

/** Runs port-forward until the signal (or SIGINT) stops it; resolves to the exit code. */
export async function runPortForward(o: PortForwardOptions, io: KexecIO): Promise<number> {
  const protocol: StreamProtocol = resolveStreamProtocol(o.protocol, io.env, PORT_FORWARD_WEBSOCKETS_ENV);
  const cfg = await loadClientConfig(o);
  const ns = cfg.namespace;
  const pod = await getPod(cfg, ns, o.pod);
  if (pod.status?.phase !== 'Running') {
    throw new Error(
      `unable to forward port because pod is not running. Current status=${pod.status?.phase ?? ''}`,
    );
  }

  const { signal: stop, dispose } = stopSignal(io.signal);
  const report = (line: string) => io.stderr.write(`${line}\n`);
  // Set once a connection failed or the SPDY connection went: the command then ends with it.
  let lost: (() => void) | undefined;
  const lostConnection = new Promise<void>((resolve) => (lost = resolve));

  // Loaded only when SPDY is used (or may be, with auto).
  const { SpdyPortForwarder } =
    protocol === 'websocket' ? { SpdyPortForwarder: undefined } : await import('./spdy-port-forwarder.js');
  let spdy: SpdyPortForwarder | undefined;
  const spdyForwarder = (): SpdyPortForwarder =>
    (spdy ??= new SpdyPortForwarder!({ url: portForwardUrl(cfg, ns, o.pod).href, ...cfg }, () => lost?.()));
  const ws = websocketTunnel(cfg, ns, o.pod);
  let useSpdy = protocol === 'spdy';
  const tunnel: Tunnel = async (local, remote) => {
    if (useSpdy) return spdyForwarder().forward(local, remote);
    try {
      return await ws(local, remote);
    } catch (err) {
      // auto: WebSocket until an upgrade is refused, then SPDY from this connection on.
      if (protocol !== 'auto' || !isUpgradeFailure(err)) throw err;
      useSpdy = true;
      return spdyForwarder().forward(local, remote);
    }
  };

  const listeners: net.Server[] = [];
  const sockets = new Set<net.Socket>();
  const handle = (local: net.Socket, port: ForwardedPort): void => {
    sockets.add(local);
    local.on('error', () => {});
    local.once('close', () => sockets.delete(local));
    io.stdout.write(`Handling connection for ${port.local}\n`);
    tunnel(local, port.remote).then(
      (errorText) => {
        if (errorText && !stop.aborted) {
          report(`error: an error occurred forwarding ${port.local} -> ${port.remote}: ${errorText}`);
          lost?.();
        }
        closeLocal(local);
      },
      (err: unknown) => {
        if (!stop.aborted) {
          report(
            `error: an error occurred forwarding ${port.local} -> ${port.remote}: ${formatError(err).replace(/^error: /, '')}`,
          );
          lost?.();
        }
        local.destroy();
      },
    );
  };

  try {
    // As kubectl: over SPDY a refused upgrade fails the command before anything listens.
    if (useSpdy) await spdyForwarder().connect();
    let anyListening = false;
    for (const port of o.ports) {
      const errors: string[] = [];
      const fails = { all: 0, any: 0 };
      const successes = { all: 0, any: 0 };
      for (const addr of o.addresses) {
        try {
          const server = await listen(addr.address, port.local, (s) => handle(s, port));
          listeners.push(server);
          port.local = (server.address() as net.AddressInfo).port;
          io.stdout.write(`Forwarding from ${joinHostPort(addr.address, port.local)} -> ${port.remote}\n`);
          successes[addr.failureMode]++;
        } catch (err) {
          errors.push(`unable to create listener: Error ${(err as Error).message}`);
          fails[addr.failureMode]++;
        }
      }
      if ((successes.all === 0 && fails.all > 0) || fails.any > 0) {
        report(
          `Unable to listen on port ${port.local}: Listeners failed to create with the following errors: [${errors.join(' ')}]`,
        );
      } else {
        anyListening = true;
      }
    }
    if (!anyListening) {
      throw new Error(
        `unable to listen on any of the requested ports: [${o.ports.map((p) => `{${p.local} ${p.remote}}`).join(' ')}]`,
      );
    }
    const stopped = new Promise<'stopped'>((resolve) => {
      if (stop.aborted) resolve('stopped');
      else stop.addEventListener('abort', () => resolve('stopped'), { once: true });
    });
    if ((await Promise.race([stopped, lostConnection])) !== 'stopped') {
      throw new Error('lost connection to pod');
    }
    return 0;
  } finally {
    for (const l of listeners) l.close();
    for (const s of sockets) s.destroy();
    dispose();
    await spdy?.close();
  }
}

function listen(host: string, port: number, onConnection: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: a client that half-closes still gets the pod's answer.
    const server = net.createServer({ allowHalfOpen: true }, onConnection);
    server.once('error', reject);
    server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
      server.off('error', reject);
      server.on('error', () => {});
      resolve(server);
    });
  });
}

/** The caller's signal, else one that SIGINT (Ctrl-C) or SIGTERM aborts. */
function stopSignal(signal: AbortSignal | undefined): { signal: AbortSignal; dispose: () => void } {
  if (signal) return { signal, dispose: () => {} };
  const ac = new AbortController();
  const onSignal = () => ac.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const dispose = () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
  return { signal: ac.signal, dispose };
}
