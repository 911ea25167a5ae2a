/**
 * What `kexec port-forward` listens on: the `[LOCAL:]REMOTE` port specs and the `--address` list.
 *
 * Mirrors client-go `tools/portforward/portforward.go` parsePorts (`8080` forwards 8080 to 8080,
 * `8080:80` 8080 to 80, `:80` and `0:80` pick a free local port; messages as upstream's) and
 * parseAddresses (`localhost` is 127.0.0.1 and ::1 where ONE of them listening is enough; an
 * explicit IP must listen; sorted, duplicates dropped).
 */
import net from 'node:net';

export interface ForwardedPort {
  /** 0: pick a free port (then the first listener's port is used for the other addresses). */
  local: number;
  remote: number;
}

export interface ListenAddress {
  address: string;
  family: 4 | 6;
  /** 'all': the group fails only when every `localhost` address fails; 'any': this one must listen. */
  failureMode: 'all' | 'any';
}

/** A 16-bit unsigned decimal, as Go's strconv.ParseUint(s, 10, 16) accepts it. */
function parseUint16(text: string): number | string {
  if (!/^\d+$/.test(text)) return `strconv.ParseUint: parsing "${text}": invalid syntax`;
  const n = Number(text);
  if (n > 65535) return `strconv.ParseUint: parsing "${text}": value out of range`;
  return n;
}

export function parsePorts(specs: readonly string[]): ForwardedPort[] {
  if (specs.length === 0) throw new Error('you must specify at least 1 port');
  return specs.map((spec) => {
    const parts = spec.split(':');
    if (parts.length > 2) throw new Error(`invalid port format '${spec}'`);
    const localText = parts.length === 1 ? parts[0] : parts[0] || '0';
    const remoteText = parts.length === 1 ? parts[0] : parts[1];
    const local = parseUint16(localText);
    if (typeof local === 'string') throw new Error(`error parsing local port '${localText}': ${local}`);
    const remote = parseUint16(remoteText);
    if (typeof remote === 'string') throw new Error(`error parsing remote port '${remoteText}': ${remote}`);
    if (remote === 0) throw new Error('remote port must be > 0');
    return { local, remote };
  });
}

export function parseAddresses(addresses: readonly string[]): ListenAddress[] {
  if (addresses.length === 0) throw new Error('you must specify at least 1 address');
  const parsed = new Map<string, ListenAddress>();
  for (const a of addresses) {
    if (a === 'localhost') {
      if (!parsed.has('127.0.0.1'))
        parsed.set('127.0.0.1', { address: '127.0.0.1', family: 4, failureMode: 'all' });
      if (!parsed.has('::1')) parsed.set('::1', { address: '::1', family: 6, failureMode: 'all' });
    } else if (net.isIPv4(a)) {
      parsed.set(a, { address: a, family: 4, failureMode: 'any' });
    } else if (net.isIPv6(a)) {
      parsed.set(a, { address: a, family: 6, failureMode: 'any' });
    } else {
      throw new Error(`${a} is not a valid IP`);
    }
  }
  return [...parsed.values()].sort((x, y) => (x.address < y.address ? -1 : x.address > y.address ? 1 : 0));
}

/** `host:port` as Go's net.JoinHostPort writes it (IPv6 in brackets). */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
