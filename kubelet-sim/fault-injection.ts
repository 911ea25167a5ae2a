/**
 * Lab fault modes for the kubelet-sim (`--fault MODE`, `npm start -- --kubelet-fault MODE`): a
 * malicious or broken kubelet that answers the apiserver's streaming upgrades (`/exec`, `/attach`,
 * `/portForward`) the way real kubelets have been made to, so that a student can watch the
 * apiserver's UpgradeAwareHandler (shared/proxy/upgrade-aware-handler.ts) and StreamTranslator
 * refuse to be fooled.
 *
 * The fault applies only to streaming requests that passed authentication, routing and the method
 * check (server.ts: the apiserver is still the only caller it answers); node registration, the
 * heartbeat, pod sync, `/healthz` and `/containerLogs` keep working, so the rest of the lab stays up.
 *
 * | mode             | the kubelet answers an upgrade with                        | echoes                         |
 * | ---------------- | ---------------------------------------------------------- | ------------------------------ |
 * | `none`           | a real stream (the default)                                | —                              |
 * | `redirect[=URL]` | `302 Found`, `Location: URL` (default http://127.0.0.1:1/) | CVE-2020-8559                  |
 * | `ok-200`         | `200 OK` with a text body instead of `101`                 | CVE-2020-8559 (non-101 < 400)  |
 * | `refuse-400`     | `400` Status, connection kept alive                        | CVE-2018-1002105               |
 * | `refuse-500`     | `500` Status, connection kept alive                        | CVE-2018-1002105               |
 * | `wrong-protocol` | `101 Switching Protocols` to `Upgrade: h2c`                | Go ReverseProxy protocol check |
 * | `garbage`        | bytes that are not HTTP, then a close                      | (robustness, no CVE)           |
 *
 * A redirect URL whose path is `/` gets the request's own path and query appended, so a proxy that
 * followed it would replay the same exec at the target (as the CVE-2020-8559 exploit pointed the
 * apiserver at another node's kubelet).
 *
 * The HTTP answers (redirect, ok-200, refuse-*) keep the connection open and answer any further
 * request on it: that is what a compromised kubelet would do to catch a client the apiserver
 * spliced through after a failed upgrade (CVE-2018-1002105). Every fault connection logs one
 * `answered` line and, when it closes, how many requests came over it; a second request is logged
 * loudly. The e2e suite (e2e/kubelet-faults.test.ts) reads those lines.
 */
import { InvalidArgumentError } from 'commander';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { failureStatus, type Status } from '../shared/status.js';
import { type Logger } from '../shared/logging.js';

/** The `--fault` modes, in the order `--help` lists them. */
export const KUBELET_FAULT_MODES = [
  'none',
  'redirect',
  'ok-200',
  'refuse-400',
  'refuse-500',
  'wrong-protocol',
  'garbage',
] as const;

export type KubeletFaultMode = (typeof KUBELET_FAULT_MODES)[number];

/** Where `redirect` points when no URL is given: loopback port 1, where nothing listens. */
export const DEFAULT_REDIRECT_LOCATION = 'http://127.0.0.1:1/';

export interface KubeletFault {
  mode: KubeletFaultMode;
  /** `redirect` only: the Location target. */
  location?: URL;
}

/** What each mode does and which upstream lesson it echoes (for `--help` and the start-up log). */
export const FAULT_DESCRIPTIONS: Record<KubeletFaultMode, string> = {
  none: 'serve streams normally',
  redirect: 'answer streaming upgrades with 302 Found to URL (CVE-2020-8559)',
  'ok-200': 'answer streaming upgrades with 200 OK instead of 101 (CVE-2020-8559)',
  'refuse-400': 'refuse streaming upgrades with a 400 Status, keeping the connection open (CVE-2018-1002105)',
  'refuse-500': 'refuse streaming upgrades with a 500 Status, keeping the connection open (CVE-2018-1002105)',
  'wrong-protocol': 'answer streaming upgrades with 101 to "h2c", a protocol nobody asked for',
  garbage: 'answer streaming upgrades with bytes that are not HTTP, then close',
};

/** What `fault` does, its redirect target spelt out (for the start-up log and the lab's banner). */
export function describeKubeletFault(fault: KubeletFault): string {
  const text = FAULT_DESCRIPTIONS[fault.mode];
  return fault.location ? text.replace('to URL', `to ${fault.location.href}`) : text;
}

/** A `--fault` value that is not a mode, or a bad redirect URL. */
export class FaultFlagError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FaultFlagError';
  }
}

/** Human list of the accepted values, for errors and help. */
export function faultModesHelp(): string {
  return KUBELET_FAULT_MODES.map((m) => (m === 'redirect' ? 'redirect[=URL]' : m)).join(', ');
}

/**
 * Parses a `--fault` value: a mode, or `redirect=URL` with an absolute http(s) URL. Anything else
 * throws a FaultFlagError naming the accepted values.
 */
export function parseKubeletFault(value: string): KubeletFault {
  const eq = value.indexOf('=');
  const name = (eq < 0 ? value : value.slice(0, eq)).trim();
  const arg = eq < 0 ? undefined : value.slice(eq + 1).trim();
  if (!(KUBELET_FAULT_MODES as readonly string[]).includes(name)) {
    throw new FaultFlagError(
      `unknown fault mode ${JSON.stringify(name)}: expected one of ${faultModesHelp()}`,
    );
  }
  const mode = name as KubeletFaultMode;
  if (mode !== 'redirect') {
    if (arg !== undefined) throw new FaultFlagError(`fault mode ${mode} takes no value (got "=${arg}")`);
    return { mode };
  }
  const raw = arg ?? DEFAULT_REDIRECT_LOCATION;
  let location: URL;
  try {
    location = new URL(raw);
  } catch {
    throw new FaultFlagError(`redirect target ${JSON.stringify(raw)} is not an absolute URL`);
  }
  if (location.protocol !== 'http:' && location.protocol !== 'https:') {
    throw new FaultFlagError(`redirect target ${JSON.stringify(raw)} must be an http:// or https:// URL`);
  }
  return { mode, location };
}

/** parseKubeletFault for a commander option: a bad mode is commander's usage error (exit 1). */
export function kubeletFaultOption(value: string): KubeletFault {
  try {
    return parseKubeletFault(value);
  } catch (err) {
    if (err instanceof FaultFlagError) throw new InvalidArgumentError(err.message);
    throw err;
  }
}

/** The flag value that gives `fault` back (`redirect=URL`, or the mode). */
export function formatKubeletFault(fault: KubeletFault): string {
  return fault.mode === 'redirect' && fault.location ? `redirect=${fault.location.href}` : fault.mode;
}

/** Answers one authenticated streaming upgrade in place of the real stream. */
export type StreamFaultHandler = (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

/** How long a fault connection left open by its peer is kept before it is dropped. */
const IDLE_MS = 60_000;
/** Bytes of further requests kept to find their heads. */
const MAX_BUFFERED = 64 * 1024;

/**
 * The handler server.ts calls for every authenticated streaming upgrade, or undefined for `none`.
 * Logs once, loudly, that faults are on.
 */
export function streamFaultHandler(
  fault: KubeletFault | undefined,
  log: Logger,
): StreamFaultHandler | undefined {
  if (!fault || fault.mode === 'none') return undefined;
  const flag = formatKubeletFault(fault);
  log(
    `FAULT INJECTION ON (--fault ${flag}): ${describeKubeletFault(fault)}; logs, pod sync and the Node are unaffected`,
  );
  let next = 0;
  return (req, socket, head) => {
    const id = ++next;
    const say = (line: string): void => log(`fault ${fault.mode} [#${id}]: ${line}`);
    const what = `${req.method ?? '?'} ${pathOnly(req.url)}`;
    socket.on('error', () => socket.destroy());
    const idle = setTimeout(() => socket.destroy(), IDLE_MS);
    idle.unref();
    socket.once('close', () => clearTimeout(idle));
    // The server's sockets allow half-open connections: the peer's FIN is the end of this one.
    socket.once('end', () => socket.end());

    switch (fault.mode) {
      case 'redirect': {
        const target = redirectTarget(fault.location!, req.url);
        say(`answered ${what} with 302 Found, Location: ${target}`);
        keepAnswering(socket, head, say, httpResponse(302, { Location: target }, ''));
        return;
      }
      case 'ok-200':
        say(`answered ${what} with 200 OK instead of 101 Switching Protocols`);
        keepAnswering(
          socket,
          head,
          say,
          httpResponse(
            200,
            { 'Content-Type': 'text/plain; charset=utf-8' },
            `kubelet-sim --fault ok-200: 200 OK, no upgrade\n`,
          ),
        );
        return;
      case 'refuse-400':
      case 'refuse-500': {
        const code = fault.mode === 'refuse-400' ? 400 : 500;
        say(`answered ${what} with ${code}, connection kept open`);
        keepAnswering(socket, head, say, statusResponse(refusalStatus(code)));
        return;
      }
      case 'wrong-protocol': {
        say(`answered ${what} with 101 Switching Protocols to h2c`);
        socket.write('HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n');
        let after = head.length;
        socket.on('data', (c: Buffer) => (after += c.length));
        socket.once('close', () => say(`connection closed, ${after} byte(s) received after the 101`));
        socket.resume();
        return;
      }
      case 'garbage':
        say(`answered ${what} with ${GARBAGE.length} bytes that are not HTTP, then closed`);
        socket.once('close', () => say('connection closed after 1 request(s)'));
        socket.end(GARBAGE, () => socket.destroy());
        return;
    }
  };
}

/** The refusal a `refuse-*` kubelet sends, as a Status. */
export function refusalStatus(code: 400 | 500): Status {
  return failureStatus(code, `upgrade refused by kubelet-sim --fault refuse-${code}`);
}

/** Not HTTP: a NUL, bytes no status line starts with, some text, a blank line. */
const GARBAGE = Buffer.from('\x00\xff\xfeSSH-2.0-not-http kubelet-sim --fault garbage\x07\r\n\r\n', 'latin1');

function pathOnly(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q < 0 ? u : u.slice(0, q);
}

function redirectTarget(location: URL, requestUrl: string | undefined): string {
  if (location.pathname !== '/' || location.search) return location.href;
  return new URL(requestUrl ?? '/', location).href;
}

function httpResponse(code: number, headers: Record<string, string>, body: string): string {
  const text = { 200: 'OK', 302: 'Found', 400: 'Bad Request', 500: 'Internal Server Error' }[code] ?? '';
  const all: Record<string, string> = {
    'Content-Type': 'text/plain; charset=utf-8',
    ...headers,
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'keep-alive',
  };
  return (
    `HTTP/1.1 ${code} ${text}\r\n` +
    Object.entries(all)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('') +
    `\r\n${body}`
  );
}

function statusResponse(status: Status): string {
  return httpResponse(status.code!, { 'Content-Type': 'application/json' }, JSON.stringify(status));
}

/**
 * Writes `first` and keeps the connection open, answering every further request head that arrives
 * (a second request here means the proxy in front spliced its client through: CVE-2018-1002105).
 * Logs how many requests the connection carried when it closes.
 */
function keepAnswering(socket: Duplex, head: Buffer, say: Logger, first: string): void {
  let requests = 1;
  let buffered = head.toString('latin1');
  const serveBuffered = (): void => {
    for (let end = buffered.indexOf('\r\n\r\n'); end >= 0; end = buffered.indexOf('\r\n\r\n')) {
      const line = buffered.slice(0, buffered.indexOf('\r\n'));
      buffered = buffered.slice(end + 4);
      requests++;
      say(
        `SECOND REQUEST on a refused upgrade's connection: ${JSON.stringify(line)}: the proxy in front ` +
          `spliced its client to this kubelet (CVE-2018-1002105)`,
      );
      socket.write(
        httpResponse(
          200,
          {},
          `kubelet-sim: request ${requests} reached the kubelet over the proxy's connection\n`,
        ),
      );
    }
    if (buffered.length > MAX_BUFFERED) socket.destroy();
  };
  socket.on('data', (c: Buffer) => {
    buffered += c.toString('latin1');
    serveBuffered();
  });
  socket.once('close', () => say(`connection closed after ${requests} request(s)`));
  socket.write(first);
  serveBuffered();
  socket.resume();
}
