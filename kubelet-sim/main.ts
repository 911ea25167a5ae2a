/**
 * kubelet-sim: the lab's node agent. Registers its Node (and keeps its heartbeat), runs the pods
 * bound to it in the CRI runtime (restart policy, PLEG), and serves `/exec`, `/attach`,
 * `/portForward` and `/containerLogs` for the apiserver (see docs/wiring.md).
 *
 *   node dist/kubelet-sim/main.js --apiserver http://127.0.0.1:6443 --token-file node.token \
 *     [--apiserver-token-key-file kubelet-token.pub] --node-name node-1 --address 127.0.0.1 --port 0 \
 *     --container-runtime-endpoint unix:///tmp/lab/cri.sock [--pod-logs-dir /var/log/pods] \
 *     [--tls-cert-file kubelet.crt --tls-private-key-file kubelet.key [--client-ca-file ca.crt]]
 *
 * Prints `READY {"service":"kubelet-sim","url":…,"node":…}` on stdout once it listens and its Node
 * is registered; logs to stderr. SIGTERM / SIGINT stop it; the pods keep running in the runtime.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { readPublicKeys } from '../shared/auth/tokens.js';
import { faultModesHelp, kubeletFaultOption, type KubeletFault } from './fault-injection.js';
import { startKubelet } from './kubelet.js';
import type { KubeletTlsOptions } from './server.js';
import { errorMessage, newLogger, stderrLogger } from '../shared/logging.js';
import { stopWithParent } from '../shared/parent-death-watch.js';
import { addLoggingFlags, portArgument, type LoggingFlags } from '../shared/cli-flags.js';
import { writeReadyLine } from '../shared/ready-line.js';
import {
  DEFAULT_WEBHOOK_CACHE,
  KUBELET_AUTHORIZATION_MODES,
  type KubeletAuthorizationMode,
} from './kubelet-authorizer.js';

export { startKubelet, type KubeletOptions, type RunningKubelet } from './kubelet.js';

interface Flags extends LoggingFlags {
  apiserver: string;
  tokenFile: string;
  apiserverTokenKeyFile?: string;
  nodeName: string;
  address: string;
  port: number;
  containerRuntimeEndpoint: string;
  imageServiceEndpoint?: string;
  podLogsDir: string;
  nodeStatusUpdateFrequency: number;
  fault?: KubeletFault;
  tlsCertFile?: string;
  tlsPrivateKeyFile?: string;
  clientCaFile?: string;
  authorizationMode?: KubeletAuthorizationMode;
  authorizationWebhookCacheAuthorizedTtl: number;
  authorizationWebhookCacheUnauthorizedTtl: number;
}

/** A Go-style duration with one unit: `500ms`, `10s`, `1m`. */
function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m)$/.exec(v);
  if (!m) throw new InvalidArgumentError('expected a duration such as 500ms, 10s or 1m');
  const n = Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
  if (n <= 0) throw new InvalidArgumentError('must be greater than 0');
  return n;
}

/** A duration that may be 0 (`0`, `0s`: nothing cached). */
function parseTtl(v: string): number {
  return /^0(ms|s|m)?$/.test(v) ? 0 : parseDuration(v);
}

export function buildCommand(): Command {
  return addLoggingFlags(new Command('kubelet-sim'))
    .description(
      'kexec-lab node agent: registers a Node, syncs its pods over CRI, serves /exec, /attach, /portForward and /containerLogs',
    )
    .requiredOption('--apiserver <url>', 'apiserver URL, e.g. http://127.0.0.1:6443')
    .requiredOption('--token-file <path>', "file holding this node's bearer token for the apiserver")
    .option(
      '--apiserver-token-key-file <path>',
      "PEM RSA public key(s) that verify the apiserver's RS256 bearer token (a node never holds a key that signs tokens); without it only --client-ca-file certificates authenticate the apiserver",
    )
    .requiredOption('--node-name <name>', 'name of the Node to register')
    .option('--address <ip>', 'bind address, also the Node InternalIP', '127.0.0.1')
    .option('--port <port>', 'kubelet server port (0 picks a free one)', portArgument, 10250)
    .requiredOption(
      '--container-runtime-endpoint <endpoint>',
      'CRI endpoint: unix:///path/to/cri.sock or tcp://host:port',
    )
    .option(
      '--image-service-endpoint <endpoint>',
      'CRI ImageService endpoint (default: the --container-runtime-endpoint)',
    )
    .option(
      '--pod-logs-dir <dir>',
      "where the pods' log directories (<ns>_<pod>_<uid>) are made: the sandboxes' log_directory",
      '/var/log/pods',
    )
    .option(
      '--node-status-update-frequency <duration>',
      'how often the Node status (Ready heartbeat) is posted',
      parseDuration,
      10_000,
    )
    .option('--tls-cert-file <file>', 'serve https with this PEM certificate (chain); plain http without')
    .option('--tls-private-key-file <file>', 'the PEM private key of --tls-cert-file')
    .option(
      '--client-ca-file <file>',
      'PEM CA whose client certificates authenticate as their CN (the apiserver: kube-apiserver-kubelet-client); needs --tls-cert-file',
    )
    .addOption(
      new Option(
        '--authorization-mode <mode>',
        "Webhook: authorize every request to this kubelet's API with a SubjectAccessReview to the apiserver, as kubeadm's kubelets do (default: the apiserver's identities only)",
      ).choices(KUBELET_AUTHORIZATION_MODES),
    )
    .option(
      '--authorization-webhook-cache-authorized-ttl <duration>',
      "how long the webhook's 'allowed' answers are kept (0 keeps none)",
      parseTtl,
      DEFAULT_WEBHOOK_CACHE.authorizedTtlMs,
    )
    .option(
      '--authorization-webhook-cache-unauthorized-ttl <duration>',
      "how long the webhook's 'denied' answers are kept (0 keeps none)",
      parseTtl,
      DEFAULT_WEBHOOK_CACHE.unauthorizedTtlMs,
    )
    .option(
      '--fault <mode>',
      `lab fault mode for /exec, /attach and /portForward upgrades, a malicious kubelet (kubelet-sim/fault-injection.ts): ${faultModesHelp()} (default: none)`,
      kubeletFaultOption,
    )
    .showHelpAfterError();
}

/** The TLS flags, read and checked before anything starts. */
function servingTls(flags: Flags): KubeletTlsOptions | undefined {
  if (!flags.tlsCertFile !== !flags.tlsPrivateKeyFile) {
    throw new Error('--tls-cert-file and --tls-private-key-file go together');
  }
  if (!flags.tlsCertFile || !flags.tlsPrivateKeyFile) {
    if (flags.clientCaFile) throw new Error('--client-ca-file needs --tls-cert-file');
    return undefined;
  }
  return {
    cert: readFileSync(flags.tlsCertFile),
    key: readFileSync(flags.tlsPrivateKeyFile),
    ...(flags.clientCaFile ? { clientCa: readFileSync(flags.clientCaFile) } : {}),
  };
}

export async function main(argv: string[]): Promise<void> {
  const flags = buildCommand().parse(argv).opts<Flags>();
  const log = newLogger({ service: 'kubelet-sim', verbosity: flags.v, format: flags.loggingFormat });
  const token = readFileSync(flags.tokenFile, 'utf8').trim();
  if (!token) throw new Error(`token file ${flags.tokenFile} is empty`);
  const tls = servingTls(flags);
  const kubelet = await startKubelet({
    apiserver: flags.apiserver,
    token,
    ...(flags.apiserverTokenKeyFile
      ? { apiserverTokenKeys: { rs256: readPublicKeys(flags.apiserverTokenKeyFile) } }
      : {}),
    nodeName: flags.nodeName,
    address: flags.address,
    port: flags.port,
    runtime: flags.containerRuntimeEndpoint,
    images: flags.imageServiceEndpoint,
    podLogsDir: flags.podLogsDir,
    nodeStatusUpdateMs: flags.nodeStatusUpdateFrequency,
    fault: flags.fault,
    tls,
    authorizationMode: flags.authorizationMode,
    authorizationWebhookCache: {
      authorizedTtlMs: flags.authorizationWebhookCacheAuthorizedTtl,
      unauthorizedTtlMs: flags.authorizationWebhookCacheUnauthorizedTtl,
    },
    log,
  });
  writeReadyLine({ service: 'kubelet-sim', url: kubelet.url, node: kubelet.nodeName });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping (pods keep running in the runtime)`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    kubelet.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log(`error while stopping: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  stopWithParent(stop);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv).catch((err: unknown) => {
    stderrLogger('kubelet-sim')(errorMessage(err));
    process.exit(1);
  });
}
