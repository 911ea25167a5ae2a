/**
 * The lab's `--tls-keylog FILE`: every Node.js service of the lab (apiserver, kubelet-sim,
 * cri-shim) appends the secrets of each TLS session it opens or accepts to FILE, in the NSS key
 * log format (`CLIENT_HANDSHAKE_TRAFFIC_SECRET …` lines) that Wireshark and tshark read with
 * `-o tls.keylog_file:FILE`. A packet capture on `lo` of the https hops can then be decrypted
 * (docs/labs/07-packet-capture-over-https.md).
 *
 * It is Node's own `--tls-keylog=FILE` (doc/api/cli.md), handed to each service through
 * NODE_OPTIONS: Node appends every `keylog` event of every TLSSocket in the process with
 * `appendFileSync` (O_APPEND, mode 0600 at creation), so the services can share one file. Either end
 * of a session logs the same secrets: the apiserver's lines decrypt kubectl's connections too,
 * though kubectl itself (Go's crypto/tls `Config.KeyLogWriter`, left unset by client-go) writes none.
 * Node prints a warning at the first line: whoever reads FILE reads every session it covers.
 */

/** The environment that makes a Node.js process log its TLS secrets to `file` (absolute). */
export function tlsKeylogEnv(file: string, env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  // NODE_OPTIONS splits on spaces outside double quotes; a path may hold spaces.
  const option = `--tls-keylog="${file.replace(/(["\\])/g, '\\$1')}"`;
  return { NODE_OPTIONS: [env.NODE_OPTIONS, option].filter(Boolean).join(' ') };
}
