/**
 * The READY line: how a service tells whoever started it that it serves, and where. Once it
 * listens (and, for the kubelet-sim, once its Node is registered) each service prints one line on
 * stdout, `READY ` followed by a JSON object naming itself and its addresses (docs/wiring.md);
 * the lab's supervisor waits for it instead of sleeping or polling ports.
 *
 * Upstream has no such line (kubeadm and the kubelet poll /healthz); this is the lab's own
 * handshake, one type for the four writers and one parser for the readers.
 */

export const READY_PREFIX = 'READY ';

/** What any READY line carries: the service's name, then its own fields. */
export interface ReadyInfo {
  service: string;
  [field: string]: unknown;
}

export interface ApiServerReady extends ReadyInfo {
  service: 'apiserver';
  url: string;
  /** The CA a client trusts, when the apiserver made its own serving certificate (--cert-dir). */
  caFile?: string;
}

export interface CriShimReady extends ReadyInfo {
  service: 'cri-shim';
  /** The CRI endpoint (`unix://…` or `tcp://…`). */
  endpoint: string;
  streamingUrl: string;
}

export interface KubeletReady extends ReadyInfo {
  service: 'kubelet-sim';
  url: string;
  node: string;
}

/** The compose `node` container (lab/node-main.ts): a cri-shim and a kubelet-sim. */
export interface NodeReady extends ReadyInfo {
  service: 'node';
  node: string;
  kubeletUrl: string;
  criEndpoint: string;
}

export type ServiceReady = ApiServerReady | CriShimReady | KubeletReady | NodeReady;

/** The line, newline included. */
export function formatReadyLine(info: ServiceReady): string {
  return `${READY_PREFIX}${JSON.stringify(info)}\n`;
}

/** Prints the READY line on stdout (or `out`). */
export function writeReadyLine(
  info: ServiceReady,
  out: { write(s: string): unknown } = process.stdout,
): void {
  out.write(formatReadyLine(info));
}

/**
 * The READY line's JSON, or undefined when `line` is not a READY line. Throws (a SyntaxError)
 * when it is one but its JSON does not parse.
 */
export function parseReadyLine(line: string): ReadyInfo | undefined {
  if (!line.startsWith(READY_PREFIX)) return undefined;
  return JSON.parse(line.slice(READY_PREFIX.length)) as ReadyInfo;
}
