/**
 * One TLS client context per set of TLS options, shared by every connection dialled with them.
 *
 * Node's tls.connect (and https.request with `agent: false`) builds a new SecureContext (an
 * OpenSSL SSL_CTX with its certificate, key and CA store) for every connection unless one is
 * given. The hops dial one backend connection per exec with the same options, so each idle session
 * held a context of its own. Go's crypto/tls, which upstream dials with, shares one tls.Config
 * per transport the same way.
 *
 * The options object is the key (its identity): callers keep theirs for the process's life.
 * `undefined` (no options: the default CAs, NODE_EXTRA_CA_CERTS included) has one context too.
 */
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';

const contexts = new WeakMap<ConnectionOptions, SecureContext>();
let defaultContext: SecureContext | undefined;

/** `opts` with a shared `secureContext` made from it (unless it brings its own). */
export function withSharedContext(opts: ConnectionOptions | undefined): ConnectionOptions {
  if (opts?.secureContext) return opts;
  if (!opts) return { secureContext: (defaultContext ??= createSecureContext()) };
  let ctx = contexts.get(opts);
  if (!ctx) {
    ctx = createSecureContext(opts);
    contexts.set(opts, ctx);
  }
  return { ...opts, secureContext: ctx };
}
