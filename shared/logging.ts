/**
 * What every process here logs through, and how an error becomes one line of it.
 *
 * A Logger takes one finished line (the process prefixes and writes it, to stderr in the real
 * services); it mirrors nothing upstream (klog there) and stays a plain function so tests can
 * collect lines in an array.
 */

/** One log line (to stderr in the real process). */
export type Logger = (line: string) => void;

/** The message of an Error, or the thrown value as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Query parameters that carry a credential (`?access_token=` is how some WebSocket clients send one). */
const CREDENTIAL_QUERY = /([?&;](?:access_token|id_token|refresh_token|token)=)[^&#\s"']*/gi;
/** An Authorization header's value after its scheme, as a header line or in JSON. */
const AUTHORIZATION = /((?:proxy-)?authorization["']?\s*[:=]\s*["']?(?:bearer|basic)\s+)[^\s"',}]+/gi;
/** kubectl's WebSocket subprotocol that carries a bearer token. */
const WS_BEARER = /(base64url\.bearer\.authorization\.k8s\.io\.)[A-Za-z0-9_-]+/g;
/** A JWT anywhere: three base64url parts, the first a JSON header (`eyJ`). */
const JWT = /\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/g;

/**
 * The line with every credential in it masked: `access_token=<masked>`, `Bearer <masked>`,
 * `<masked-jwt>` (client-go masks Authorization the same way in its request dumps,
 * transport/round_trippers.go maskValue). Every logger goes through it (issue #11: a
 * client-supplied `?access_token=` was logged verbatim).
 */
export function redactCredentials(line: string): string {
  return line
    .replace(CREDENTIAL_QUERY, '$1<masked>')
    .replace(AUTHORIZATION, '$1<masked>')
    .replace(WS_BEARER, '$1<masked>')
    .replace(JWT, '<masked-jwt>');
}

/** A service's logger: `name: line` on stderr, credentials masked. */
export function stderrLogger(name: string): Logger {
  return (line) => void process.stderr.write(`${redactCredentials(`${name}: ${line}`)}\n`);
}
