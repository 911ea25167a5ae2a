/**
 * The command lines the lab gives its services: one builder per service, so `startLab` (lab.ts)
 * and the compose node (node-main.ts) start the cri-shim and the kubelet-sim with the same flags.
 * The flags are the services' own (each main.ts documents them), spelled as upstream's binaries
 * spell theirs (`--container-runtime-endpoint`, `--token-signing-key-file`, …).
 */

export interface CriShimArgs {
  /** The CRI endpoint to serve (`unix://…` or `tcp://127.0.0.1:0`). */
  listen: string;
  /** State: `containers/<id>` and `sandboxes/<id>`. */
  root: string;
  isolation: string;
  /** Speak SPDY only on the streaming server, like containerd and CRI-O. */
  spdyOnly?: boolean;
  /** `--tls-*` flags of the streaming server (pki.ts criShimStreamingTlsArgs); none for http. */
  streamingTls?: readonly string[];
  /** `-v` and `--logging-format` (loggingArgv). */
  logging?: readonly string[];
}

/** cri-shim: its streaming server always on loopback, on a free port. */
export function criShimArgv(a: CriShimArgs): string[] {
  return [
    '--listen',
    a.listen,
    '--streaming-address',
    '127.0.0.1',
    '--streaming-port',
    '0',
    '--root',
    a.root,
    '--isolation',
    a.isolation,
    ...(a.spdyOnly ? ['--spdy-only'] : []),
    ...(a.streamingTls ?? []),
    ...(a.logging ?? []),
  ];
}

export interface KubeletArgs {
  apiserver: string;
  tokenFile: string;
  /**
   * The public half of the apiserver's kubelet token key (credentials.ts), where the apiserver
   * has no client certificate (plain http); a node never gets a key that signs tokens.
   */
  apiserverTokenKeyFile?: string;
  nodeName: string;
  /** Bind address, also registered as the Node's InternalIP. */
  address: string;
  port: number;
  /** The runtime's CRI endpoint (the cri-shim's or containerd's). */
  criEndpoint: string;
  /** `--pod-logs-dir`: the pods' log directories; the kubelet-sim's default when unset. */
  podLogsDir?: string;
  /** `--fault` (kubelet-sim/fault-injection.ts); undefined or `none` leaves it off. */
  fault?: string;
  /** Serving and client certificate flags (pki.ts kubeletTlsArgs); none for http. */
  tls?: readonly string[];
  /** `--authorization-mode Webhook` (kubelet-sim/kubelet-authorizer.ts); unset: the apiserver only. */
  authorizationMode?: 'Webhook';
  /** Both `--authorization-webhook-cache-*-ttl` (e.g. `1s`); the kubelet-sim's default (5m, 30s) when unset. */
  authorizationWebhookCacheTtl?: string;
  logging?: readonly string[];
}

export function kubeletArgv(a: KubeletArgs): string[] {
  return [
    '--apiserver',
    a.apiserver,
    '--token-file',
    a.tokenFile,
    ...(a.apiserverTokenKeyFile ? ['--apiserver-token-key-file', a.apiserverTokenKeyFile] : []),
    '--node-name',
    a.nodeName,
    '--address',
    a.address,
    '--port',
    String(a.port),
    '--container-runtime-endpoint',
    a.criEndpoint,
    ...(a.podLogsDir ? ['--pod-logs-dir', a.podLogsDir] : []),
    ...(a.fault !== undefined && a.fault !== 'none' ? ['--fault', a.fault] : []),
    ...(a.authorizationMode ? ['--authorization-mode', a.authorizationMode] : []),
    ...(a.authorizationWebhookCacheTtl
      ? [
          '--authorization-webhook-cache-authorized-ttl',
          a.authorizationWebhookCacheTtl,
          '--authorization-webhook-cache-unauthorized-ttl',
          a.authorizationWebhookCacheTtl,
        ]
      : []),
    ...(a.tls ?? []),
    ...(a.logging ?? []),
  ];
}

export interface ApiServerArgs {
  port: number;
  signingKeyFile: string;
  /** The RSA key its token for kubelets is signed with, where it has no client certificate. */
  kubeletTokenSigningKeyFile?: string;
  maxConnectionBytesPerSec: number;
  /** `--authorization-policy-file`, each (the lab's grants, then the user's). */
  authorizationPolicyFiles?: readonly string[];
  /** `--etcd-servers` and its client certificate flags; none keeps objects in memory. */
  etcd?: readonly string[];
  /** False turns the StreamTranslator off (feature gate TranslateStreamCloseWebsocketRequests). */
  streamTranslation?: boolean;
  /** `-v`: from 1 on, nodes' routine requests are logged too. */
  verbosity?: number;
  /** Serving certificate and key, and the kubelet client flags (pki.ts); undefined serves http. */
  tls?: { certFile: string; keyFile: string; kubeletArgs: readonly string[] };
  /** `--audit-log-path`. */
  auditLogPath?: string;
  logging?: readonly string[];
}

/** apiserver on loopback. */
export function apiserverArgv(a: ApiServerArgs): string[] {
  return [
    '--bind-address',
    '127.0.0.1',
    '--port',
    String(a.port),
    '--token-signing-key-file',
    a.signingKeyFile,
    ...(a.kubeletTokenSigningKeyFile
      ? ['--kubelet-token-signing-key-file', a.kubeletTokenSigningKeyFile]
      : []),
    '--max-connection-bytes-per-sec',
    String(a.maxConnectionBytesPerSec),
    ...(a.authorizationPolicyFiles ?? []).flatMap((f) => ['--authorization-policy-file', f]),
    ...(a.etcd ?? []),
    ...(a.verbosity ? ['--v', String(a.verbosity)] : []),
    ...(a.streamTranslation === false
      ? ['--feature-gates', 'TranslateStreamCloseWebsocketRequests=false']
      : []),
    ...(a.tls
      ? ['--tls-cert-file', a.tls.certFile, '--tls-private-key-file', a.tls.keyFile, ...a.tls.kubeletArgs]
      : []),
    ...(a.auditLogPath ? ['--audit-log-path', a.auditLogPath] : []),
    ...(a.logging ?? []),
  ];
}

/** The services log JSON to the lab, which shows it (log-view.ts); `-v` when given. */
export function loggingArgv(verbosity?: number): string[] {
  return ['--logging-format', 'json', ...(verbosity ? ['--v', String(verbosity)] : [])];
}
