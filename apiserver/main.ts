/**
 * `apiserver`: the lab's kube-apiserver. Flags per docs/wiring.md; prints
 * `READY {"service":"apiserver","url":…}` on stdout once listening, logs to stderr, and shuts
 * down cleanly on SIGTERM / SIGINT.
 *
 * Mirrors `cmd/kube-apiserver` (flag names `--bind-address`, `--secure-port` → `--port` here,
 * `--max-connection-bytes-per-sec`, `--tls-cert-file`, `--tls-private-key-file`, `--cert-dir`);
 * plain HTTP on loopback by default, https with the TLS flags (needed for kubectl, which sends
 * credentials only over TLS; the lab passes `--tls-cert-file` issued from its CA). With `--cert-dir`
 * alone (serving-cert.ts) the READY line also names `caFile`, the CA a client trusts.
 * `--token-auth-file` and `--service-account-key-file` (repeatable) add static tokens and RS256 JWTs;
 * `--authorization-policy-file` adds RBAC-like rules to the built-in policy (authz-policy.ts).
 * `--kubelet-certificate-authority`, `--kubelet-client-certificate` and `--kubelet-client-key`
 * make the kubelet hop https (kubelet-client.ts). `--etcd-servers URL[,URL]` keeps objects in
 * etcd (storage/etcd-store.ts, keys under `--etcd-prefix`, default `/registry`) instead of memory.
 */
import { createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { readTokenAuthFile } from '../shared/auth/token-file.js';
import { readPublicKeys, readSigningKey } from '../shared/auth/tokens.js';
import { watchPolicyFiles } from './authz-policy.js';
import { servingCertFiles } from './serving-cert.js';
import { startApiServer } from './server.js';
import { errorMessage, newLogger, stderrLogger, type LoggingFormat } from '../shared/logging.js';
import { stopWithParent } from '../shared/parent-death-watch.js';
import { addLoggingFlags, portArgument } from '../shared/cli-flags.js';
import { writeReadyLine } from '../shared/ready-line.js';

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

const KNOWN_GATES = ['TranslateStreamCloseWebsocketRequests'];

/** `--feature-gates A=true,B=false`, as kube-apiserver spells it; only our gates are accepted. */
function featureGates(value: string): Record<string, boolean> {
  const gates: Record<string, boolean> = {};
  for (const pair of value.split(',').filter(Boolean)) {
    const m = /^([A-Za-z0-9]+)=(true|false)$/.exec(pair.trim());
    if (!m) throw new InvalidArgumentError(`expected Name=true|false, got ${JSON.stringify(pair)}`);
    if (!KNOWN_GATES.includes(m[1]!))
      throw new InvalidArgumentError(`unknown feature gate ${m[1]} (known: ${KNOWN_GATES.join(', ')})`);
    gates[m[1]!] = m[2] === 'true';
  }
  return gates;
}

function readIf(file: string | undefined): Buffer | undefined {
  return file === undefined ? undefined : fs.readFileSync(file);
}

/** `--etcd-servers http://127.0.0.1:2379[,…]`, as kube-apiserver spells it. */
function etcdServers(value: string): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter(Boolean);
  if (urls.length === 0) throw new InvalidArgumentError('expected URL[,URL]');
  for (const u of urls) {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new InvalidArgumentError(`not a URL: ${JSON.stringify(u)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new InvalidArgumentError(`expected an http(s):// URL, got ${JSON.stringify(u)}`);
  }
  return urls;
}

function etcdPrefix(value: string): string {
  if (!value.startsWith('/')) throw new InvalidArgumentError('must start with /');
  return value;
}

/** `--etcd-cafile` / `--etcd-certfile` / `--etcd-keyfile`, checked before anything starts. */
function etcdTls(o: {
  etcdCafile?: string;
  etcdCertfile?: string;
  etcdKeyfile?: string;
}): { ca: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  if (!o.etcdCertfile !== !o.etcdKeyfile) throw new Error('--etcd-certfile and --etcd-keyfile go together');
  if (!o.etcdCafile) {
    if (o.etcdCertfile) throw new Error('--etcd-certfile needs --etcd-cafile');
    return undefined;
  }
  return { ca: fs.readFileSync(o.etcdCafile), cert: readIf(o.etcdCertfile), key: readIf(o.etcdKeyfile) };
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function command(): Command {
  const cmd = new Command('apiserver')
    .description(
      'kexec-lab apiserver: pods and nodes API, discovery, JWT authn, authz, exec/attach/port-forward/log proxying to kubelets',
    )
    .option('--bind-address <ip>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', portArgument, 6443)
    .requiredOption('--token-signing-key-file <file>', 'HS256 key (>= 32 bytes) that signs every lab token')
    .option(
      '--kubelet-token-signing-key-file <file>',
      "PEM RSA private key that signs the apiserver's RS256 token for kubelets (they verify it with the public half); without it the HS256 key signs it",
    )
    .option(
      '--token-auth-file <file>',
      'static bearer tokens, CSV lines token,user,uid,"group1,group2" (tried before JWTs)',
    )
    .option(
      '--service-account-key-file <file>',
      'PEM RSA public key(s) that verify RS256 bearer tokens (repeatable)',
      collect,
      [] as string[],
    )
    .option(
      '--authorization-policy-file <file>',
      'YAML list of RBAC-like rules {subjects, verbs, resources, namespaces | nonResourceURLs} added to the built-in policy (repeatable; an edited file applies within a second)',
      collect,
      [] as string[],
    )
    .option('--tls-cert-file <file>', 'serve https with this PEM certificate (chain)')
    .option('--tls-private-key-file <file>', 'the PEM private key of --tls-cert-file')
    .option(
      '--cert-dir <dir>',
      'serve https; without --tls-cert-file, a CA (ca.crt) and an apiserver.crt / apiserver.key it issues are created here (and reused)',
    )
    .option(
      '--kubelet-certificate-authority <file>',
      'PEM CA that verifies kubelet serving certificates; kubelets are then dialled over https',
    )
    .option(
      '--kubelet-client-certificate <file>',
      'PEM client certificate the apiserver presents to kubelets (https); with --kubelet-client-key',
    )
    .option('--kubelet-client-key <file>', 'the PEM private key of --kubelet-client-certificate')
    .option(
      '--etcd-servers <urls>',
      'keep objects in etcd at these client URLs (comma-separated) instead of in memory',
      etcdServers,
    )
    .option('--etcd-prefix <prefix>', 'the prefix of every key in etcd', etcdPrefix, '/registry')
    .option('--etcd-cafile <file>', 'PEM CA that verifies https etcd servers')
    .option('--etcd-certfile <file>', 'PEM client certificate the apiserver presents to etcd')
    .option('--etcd-keyfile <file>', 'the PEM private key of --etcd-certfile')
    .option('--no-scheduler', 'do not run the in-process scheduler (pods without spec.nodeName stay pending)')
    .option(
      '--feature-gates <gates>',
      'TranslateStreamCloseWebsocketRequests=true|false: end v5 WebSocket exec/attach here and speak SPDY to the kubelet (default true, as upstream)',
      featureGates,
      {},
    )
    .option(
      '--max-connection-bytes-per-sec <n>',
      'rate limit for each direction of proxied exec/attach/port-forward streams (0 = unlimited)',
      nonNegativeInt,
      0,
    )
    .option(
      '--audit-log-path <file>',
      'append audit.k8s.io/v1 Events here, one JSON line each (- for stdout)',
    );
  // -v/--v (from 1 on, nodes' heartbeats and pod list/watch requests are logged too) and --logging-format.
  return addLoggingFlags(cmd);
}

async function main(argv: string[]): Promise<void> {
  const cmd = command().parse(argv);
  const opts = cmd.opts<{
    bindAddress: string;
    port: number;
    tokenSigningKeyFile: string;
    tokenAuthFile?: string;
    serviceAccountKeyFile: string[];
    v: number;
    kubeletTokenSigningKeyFile?: string;
    authorizationPolicyFile: string[];
    maxConnectionBytesPerSec: number;
    tlsCertFile?: string;
    tlsPrivateKeyFile?: string;
    certDir?: string;
    kubeletCertificateAuthority?: string;
    kubeletClientCertificate?: string;
    kubeletClientKey?: string;
    etcdServers?: string[];
    etcdPrefix: string;
    etcdCafile?: string;
    etcdCertfile?: string;
    etcdKeyfile?: string;
    scheduler: boolean;
    featureGates: Record<string, boolean>;
    auditLogPath?: string;
    loggingFormat: LoggingFormat;
  }>();
  const log = newLogger({ service: 'apiserver', verbosity: opts.v, format: opts.loggingFormat });
  // Checked before anything starts: a bad policy file stops startup with the rule's index. Then
  // followed: an edit applies (or, invalid, is logged and ignored) while the apiserver runs.
  const authorizationPolicy = opts.authorizationPolicyFile.length
    ? watchPolicyFiles(opts.authorizationPolicyFile, (file, error) =>
        error
          ? log.error(`${file} changed but is not applied: ${error}`)
          : log.info(`${file} changed: authorization policy reloaded`),
      ).authorize
    : undefined;
  const tls = await servingCertFiles(opts);
  const server = await startApiServer({
    bindAddress: opts.bindAddress,
    port: opts.port,
    signingKey: readSigningKey(opts.tokenSigningKeyFile),
    kubeletTokenSigningKey:
      opts.kubeletTokenSigningKeyFile === undefined
        ? undefined
        : createPrivateKey(fs.readFileSync(opts.kubeletTokenSigningKeyFile)),
    staticTokens: opts.tokenAuthFile ? readTokenAuthFile(opts.tokenAuthFile) : undefined,
    serviceAccountKeys: opts.serviceAccountKeyFile.flatMap(readPublicKeys),
    authorizationPolicy,
    maxConnectionBytesPerSec: opts.maxConnectionBytesPerSec,
    tls: tls && { cert: fs.readFileSync(tls.certFile), key: fs.readFileSync(tls.keyFile) },
    kubeletTls: {
      ca: readIf(opts.kubeletCertificateAuthority),
      cert: readIf(opts.kubeletClientCertificate),
      key: readIf(opts.kubeletClientKey),
    },
    etcd: opts.etcdServers && {
      servers: opts.etcdServers,
      prefix: opts.etcdPrefix,
      tls: etcdTls(opts),
    },
    scheduler: opts.scheduler,
    verbosity: opts.v,
    translateStreamCloseWebsocketRequests: opts.featureGates.TranslateStreamCloseWebsocketRequests ?? true,
    log,
    auditLogPath: opts.auditLogPath,
    processMetrics: true,
  });
  log.info('serving', { url: server.url });
  // A CA made here (--cert-dir): name it so a launcher can put it in a kubeconfig.
  writeReadyLine({
    service: 'apiserver',
    url: server.url,
    ...(tls?.caFile ? { caFile: path.resolve(tls.caFile) } : {}),
  });

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info(`${signal}, shutting down`);
    // Bounded: nobody may be left to SIGKILL a service whose supervisor died.
    setTimeout(() => process.exit(1), 5_000).unref();
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  stopWithParent(stop);
}

main(process.argv).catch((err: unknown) => {
  stderrLogger('apiserver')(errorMessage(err));
  process.exit(1);
});
