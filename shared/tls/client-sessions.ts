/**
 * TLS session resumption for the hops' per-stream dials (apiserver → kubelet, kubelet → the
 * runtime's streaming server, every SPDY dial): on top of the one SecureContext per set of client
 * options (shared/tls-context.ts), the server's session ticket is kept per origin so that the next
 * dial resumes the session.
 *
 * Every exec dials anew, as upstream (an upgraded connection is never returned to a pool), so each
 * one paid a full handshake: the server's signature and certificate chain checked by the client
 * and the client's by the server. A resumed TLS 1.3 session (RFC 8446 §2.2, a PSK from the
 * ticket, with a fresh ECDHE exchange) skips the certificates and signatures: about half the CPU
 * of a dial on both ends (kexec-lab issue 16).
 * Go's crypto/tls does the same when a `ClientSessionCache` is set; client-go's kubelet transport
 * sets none, so this is a deliberate difference.
 *
 * Safe to resume because a ticket only works with the server process that issued it (its ticket
 * keys are random per process; a restarted or impostor server forces a full, verified handshake),
 * and the server side still has the client's certificate from the session (`getPeerCertificate()`
 * and `authorized` are those of the original handshake). Sessions are kept per context and per
 * host:port — Node does not repeat the host name check on a resumed session, so a ticket is only
 * offered to the origin it came from — at most MAX_SESSIONS per context, the oldest dropped first.
 */
import type { ConnectionOptions, SecureContext, TLSSocket } from 'node:tls';
import { withSharedContext } from '../tls-context.js';

const MAX_SESSIONS = 256;

/** Per shared context (shared/tls-context.ts): host:port → the latest session ticket that origin gave us. */
const sessionsByContext = new WeakMap<SecureContext, Map<string, Buffer>>();

/**
 * The options for one TLS dial to host:port with the given client options (the same object on
 * every dial: the context is shared by its identity): the shared context and, when there is one,
 * the session to resume. Call `remember` with the dial's socket to keep the session it gets.
 */
export function resumingTlsOptions(
  options: ConnectionOptions | undefined,
  host: string,
  port: number | string,
  servername = '',
): { options: ConnectionOptions; remember: (socket: TLSSocket) => void } {
  const shared = withSharedContext(options);
  const context = shared.secureContext!;
  let sessions = sessionsByContext.get(context);
  if (!sessions) sessionsByContext.set(context, (sessions = new Map()));
  const known = sessions;
  // The name the server's certificate was checked against belongs in the key: a resumed session
  // is not checked again.
  const origin = `${host}:${port}/${servername}`;
  const session = known.get(origin);
  return {
    options: session ? { ...shared, session } : shared,
    remember: (socket) =>
      socket.on('session', (ticket: Buffer) => {
        known.delete(origin);
        known.set(origin, ticket);
        if (known.size > MAX_SESSIONS) known.delete(known.keys().next().value!);
      }),
  };
}
