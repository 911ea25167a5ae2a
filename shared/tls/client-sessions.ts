/**
 * TLS for the hops' per-stream dials (apiserver → kubelet, kubelet → the runtime's streaming
 * server, every SPDY dial): one SecureContext per set of client options instead of one per dial,
 * and the server's session ticket kept per origin so that the next dial resumes the session.
 *
 * Every exec dials anew, as upstream (an upgraded connection is never returned to a pool), so each
 * one paid a full handshake: parsing the CA, certificate and key into a new context, the server's
 * signature and certificate chain checked by the client and the client's by the server. A resumed
 * TLS 1.3 session (RFC 8446 §2.2, a PSK from the ticket, with a fresh ECDHE exchange) skips the
 * certificates and signatures: about half the CPU of a dial on both ends (kexec-lab issue 16).
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
import tls, { type ConnectionOptions, type SecureContext, type TLSSocket } from 'node:tls';

const MAX_SESSIONS = 256;

interface ContextEntry {
  context: SecureContext;
  /** host:port → the latest session ticket that origin gave us. */
  sessions: Map<string, Buffer>;
}

const byOptions = new WeakMap<ConnectionOptions, ContextEntry>();
let defaultEntry: ContextEntry | undefined;

function entryFor(options: ConnectionOptions | undefined): ContextEntry {
  if (!options) return (defaultEntry ??= { context: tls.createSecureContext(), sessions: new Map() });
  let entry = byOptions.get(options);
  if (!entry) {
    entry = { context: tls.createSecureContext(options), sessions: new Map() };
    byOptions.set(options, entry);
  }
  return entry;
}

/**
 * The options for one TLS dial to host:port with the given client options (the same object on
 * every dial: the context is cached by its identity): the cached context and, when there is one,
 * the session to resume. Call `remember` with the dial's socket to keep the session it gets.
 */
export function resumingTlsOptions(
  options: ConnectionOptions | undefined,
  host: string,
  port: number | string,
): { options: ConnectionOptions; remember: (socket: TLSSocket) => void } {
  const entry = entryFor(options);
  const origin = `${host}:${port}`;
  const session = entry.sessions.get(origin);
  return {
    options: { ...options, secureContext: entry.context, ...(session ? { session } : {}) },
    remember: (socket) =>
      socket.on('session', (ticket: Buffer) => {
        entry.sessions.delete(origin);
        entry.sessions.set(origin, ticket);
        if (entry.sessions.size > MAX_SESSIONS) entry.sessions.delete(entry.sessions.keys().next().value!);
      }),
  };
}
