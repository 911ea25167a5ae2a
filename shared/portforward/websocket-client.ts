/**
 * The client end of a WebSocket port-forward, for one port: `openPortForwardTunnel` gives back a
 * Duplex that carries the bytes of one TCP connection to that port in the pod. What `kexec
 * port-forward` opens per accepted local connection, and what tests use to drive a hop directly.
 *
 * Mirrors the WebSocket port-forward clients around Kubernetes (the kubelet e2e tests' v4 client,
 * @kubernetes/client-node `PortForward`): offer `v4.channel.k8s.io`, check and drop the two-byte
 * port prefix of the data and error channels, and surface the error channel's text as an error.
 * v4 has no half-close: ending the tunnel's writable side closes the WebSocket (after the frames
 * already written), and with it the connection in the pod. Use it for request/response traffic
 * where the client speaks last or closes anyway; half-closing needs SPDY.
 */
import { Duplex } from 'node:stream';
import type { ConnectionOptions } from 'node:tls';
import WebSocket from 'ws';
import { readRefusalBody } from '../httpstream/upgrade-refusal.js';
import {
  dataChannel,
  decodeFrame,
  decodePortPrefix,
  encodeFrame,
  errorChannel,
  parsePortsQuery,
  PortForwardError,
  V4_BASE64,
  V4_BINARY,
} from './protocol.js';

export interface PortForwardTunnelOptions {
  /** The port-forward URL (http(s) or ws(s)); `?port=` is added when it names no port. */
  url: string;
  port: number;
  /** Query parameter that names the ports: `port` (kubelet, CRI) or `ports` (apiserver). */
  portParam?: 'port' | 'ports';
  headers?: Record<string, string>;
  tls?: ConnectionOptions;
  /** `v4.channel.k8s.io` (default) or `v4.base64.channel.k8s.io`. */
  protocol?: typeof V4_BINARY | typeof V4_BASE64;
  handshakeTimeoutMs?: number;
}

const MAX_ERROR_TEXT = 64 * 1024;

/** One forwarded connection; emits 'error' with a PortForwardError REMOTE_ERROR for the server's text. */
export class PortForwardTunnel extends Duplex {
  private prefixes: [Buffer, Buffer] = [Buffer.alloc(0), Buffer.alloc(0)];
  private errorText = '';

  constructor(
    private readonly ws: WebSocket,
    readonly port: number,
    private readonly index: number,
    private readonly channels: number,
  ) {
    super({ allowHalfOpen: false });
    ws.on('message', (data: Buffer) => this.onMessage(data));
    ws.on('close', (code, reason) => {
      if (this.errorText) {
        this.destroy(new PortForwardError('REMOTE_ERROR', this.errorText));
      } else if (code !== 1000 && code !== 1005 && !this.destroyed) {
        const why = reason.length ? `: ${reason.toString()}` : '';
        this.destroy(new PortForwardError('CONNECTION_CLOSED', `connection closed with code ${code}${why}`));
      } else {
        this.push(null);
      }
    });
  }

  override _read(): void {
    this.ws.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      cb(new PortForwardError('CONNECTION_CLOSED', 'the port-forward connection is closed'));
      return;
    }
    this.ws.send(encodeFrame(this.base64, dataChannel(this.index), chunk), (err) => cb(err ?? null));
  }

  override _final(cb: (err?: Error | null) => void): void {
    // No half-close in v4: the only way to say "no more" is to close (see the module comment).
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    cb(err);
  }

  private get base64(): boolean {
    return this.ws.protocol === V4_BASE64;
  }

  private onMessage(data: Buffer): void {
    let frame;
    try {
      frame = decodeFrame(this.base64, data, this.channels);
    } catch (err) {
      this.ws.close(1002, (err as Error).message.slice(0, 120));
      this.destroy(err as Error);
      return;
    }
    const which =
      frame.channel === dataChannel(this.index)
        ? 0
        : frame.channel === errorChannel(this.index)
          ? 1
          : undefined;
    if (which === undefined) return; // another port of a multi-port URL: not ours
    let payload = frame.payload;
    // The first two bytes of each channel are the port: check them, then drop them.
    const prefix = this.prefixes[which];
    if (prefix.length < 2) {
      const need = 2 - prefix.length;
      this.prefixes[which] = Buffer.concat([prefix, payload.subarray(0, need)]);
      payload = payload.subarray(need);
      if (this.prefixes[which].length === 2 && decodePortPrefix(this.prefixes[which]) !== this.port) {
        const got = decodePortPrefix(this.prefixes[which]);
        this.ws.close(1002, 'port prefix mismatch');
        this.destroy(
          new PortForwardError('BAD_PREFIX', `server announced port ${got}, expected ${this.port}`),
        );
        return;
      }
    }
    if (payload.length === 0) return;
    if (which === 1) {
      if (this.errorText.length < MAX_ERROR_TEXT) this.errorText += payload.toString('utf8');
    } else if (!this.push(payload)) {
      this.ws.pause();
    }
  }
}

/** Opens the WebSocket for one port; resolves once the upgrade succeeded. */
export function openPortForwardTunnel(opts: PortForwardTunnelOptions): Promise<PortForwardTunnel> {
  const param = opts.portParam ?? 'port';
  const url = new URL(opts.url.replace(/^http(s?):/, 'ws$1:'));
  let ports = parsePortsQuery(url.searchParams, param);
  if (ports.length === 0) {
    url.searchParams.set(param, String(opts.port));
    ports = [opts.port];
  }
  const index = ports.indexOf(opts.port);
  if (index < 0) {
    return Promise.reject(
      new PortForwardError('BAD_PORT', `port ${opts.port} is not among the URL's ports ${ports.join(',')}`),
    );
  }
  const ws = new WebSocket(url, [opts.protocol ?? V4_BINARY], {
    ...opts.tls,
    headers: opts.headers,
    perMessageDeflate: false,
    handshakeTimeout: opts.handshakeTimeoutMs ?? 30_000,
  });
  return new Promise((resolve, reject) => {
    ws.on('unexpected-response', (_req, res) => {
      void readRefusalBody(res).then((raw) => {
        const code = res.statusCode ?? 0;
        const body = raw.toString('utf8');
        let message = body.trim() || `HTTP ${code}`;
        try {
          message = (JSON.parse(body) as { message?: string }).message ?? message;
        } catch {
          // not a Status: keep the text
        }
        reject(new PortForwardError('UPGRADE_REFUSED', `unable to upgrade connection: ${message}`, code));
        ws.terminate();
      });
    });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      const tunnel = new PortForwardTunnel(ws, opts.port, index, ports.length * 2);
      ws.on('error', (err) => tunnel.destroy(err));
      resolve(tunnel);
    });
  });
}
