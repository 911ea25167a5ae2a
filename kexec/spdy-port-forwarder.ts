/**
 * Port-forward over SPDY/3.1 for `kexec port-forward`: one upgraded connection for the whole
 * command (shared/portforward/spdy-client.ts opens the stream pair of each connection), and the
 * copying between a local TCP connection and its data stream.
 *
 * Mirrors client-go `tools/portforward/portforward.go` handleConnection: copy both ways, FIN the
 * data stream when the local side ends, reset it once the remote side is done (so unsent bytes
 * cannot block the error stream), then read the error stream to its end. When the SPDY
 * connection goes, `onLost` is told; port-forward.ts then ends the command as kubectl does.
 */
import type { Duplex } from 'node:stream';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import {
  dialSpdyPortForward,
  type SpdyPortForwardClient,
  type SpdyPortForwardClientOptions,
} from '../shared/portforward/spdy-client.js';
import { ApiStatusError } from './errors.js';

export class SpdyPortForwarder {
  private client: SpdyPortForwardClient | undefined;
  private stopped = false;

  constructor(
    private readonly opts: SpdyPortForwardClientOptions,
    /** Told when the connection is lost (not when we close it). */
    private readonly onLost: (message: string) => void = () => {},
  ) {}

  /** Dials (kubectl dials before it listens, so a refused upgrade fails the command). */
  async connect(): Promise<void> {
    let client: SpdyPortForwardClient;
    try {
      client = await dialSpdyPortForward(this.opts);
    } catch (err) {
      if (err instanceof UpgradeRefusedError) throw new ApiStatusError(err.status, err.httpCode);
      throw new Error(`error upgrading connection: ${(err as Error).message}`);
    }
    client.conn.once('close', (reason) => {
      if (!this.stopped && reason.by === 'remote') this.onLost(`lost connection to pod: ${reason.message}`);
    });
    if (this.stopped) {
      await client.close();
      throw new Error('port-forward stopped');
    }
    this.client = client;
  }

  /**
   * Forwards one local connection to `remotePort`; resolves when it is over, with the text of the
   * error stream (empty when none). Rejects when the streams could not be opened.
   */
  async forward(local: Duplex, remotePort: number): Promise<string> {
    // Listen from the start: the local side may go away while the streams are being opened.
    const localGone = new Promise<void>((resolve) => {
      if (local.destroyed) resolve();
      else local.once('close', resolve);
    });
    if (!this.client) await this.connect();
    const { data, errorText } = await this.client!.forward(remotePort);
    const remoteDone = new Promise<void>((resolve) => data.once('end', resolve));
    // Remote → local: the peer's FIN ends our local writable side (the client sees EOF).
    data.pipe(local);
    // Local → remote: the local EOF becomes our FIN on the data stream.
    local.pipe(data);
    local.on('error', () => data.reset());
    await Promise.race([remoteDone, localGone]);
    // Anything we still had to send is of no use now (upstream resets the data stream here too).
    if (!data.localFin) data.reset();
    local.unpipe(data);
    return errorText;
  }

  /** Closes the SPDY connection; later forward() calls fail. */
  async close(): Promise<void> {
    this.stopped = true;
    await this.client?.close();
  }
}
