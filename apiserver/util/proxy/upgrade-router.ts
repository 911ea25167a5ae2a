/**
 * Sends the upgrades one predicate picks to a special handler (the StreamTranslator, the
 * port-forward tunnel) and everything else to the splicing UpgradeAwareHandler.
 *
 * Mirrors the `translatingHandler` wrapper in kubernetes `pkg/registry/core/pod/rest/subresources.go`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { ConnectHandler } from '../../registry/rest.js';

export class UpgradeRouter implements ConnectHandler {
  constructor(
    private readonly splice: ConnectHandler,
    private readonly picks: (req: IncomingMessage) => boolean,
    private readonly special: ConnectHandler,
    /** Told which way each upgrade went (for metrics). */
    private readonly routed?: (req: IncomingMessage, special: boolean) => void,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.splice.handle(req, res);
  }

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const special = this.picks(req);
    this.routed?.(req, special);
    (special ? this.special : this.splice).handleUpgrade(req, socket, head);
  }
}
