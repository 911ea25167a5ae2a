/**
 * `cri-shim`: the lab's container runtime process (see docs/wiring.md).
 *
 *   node dist/cri-shim/main.js --listen unix:///tmp/lab/cri.sock --root /tmp/lab/cri
 *
 * Prints `READY {"service":"cri-shim","endpoint":…,"streamingUrl":…}` on stdout once the CRI and
 * streaming servers both listen; logs go to stderr. SIGTERM/SIGINT kill every container process
 * group (waiting at most 5 s for them), remove the socket and exit 0. Killed outright (SIGKILL),
 * it still leaves no container process: bwrap's `--die-with-parent`, or under `--isolation none`
 * the death watch (death-watch.ts).
 *
 * `--streaming-tls-cert-file` + `--streaming-tls-private-key-file` serve the streaming server over
 * https (containerd's CRI plugin: `enable_tls_streaming = true` with
 * `[x509_key_pair_streaming] tls_cert_file`/`tls_key_file`; the names here follow the kubelet's
 * `--tls-cert-file`/`--tls-private-key-file`). Both or neither.
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_STREAMING_IDLE_TIMEOUT_MS, idleTimeoutArgument } from './idle-timeout.js';
import { startCriShim } from './server.js';
import type { IsolationRequest } from './isolation.js';
import { errorMessage, newLogger, stderrLogger, type LoggingFormat } from '../shared/logging.js';
import { stopWithParent } from '../shared/parent-death-watch.js';
import { addLoggingFlags, portArgument } from '../shared/cli-flags.js';
import { writeReadyLine } from '../shared/ready-line.js';

const program = new Command('cri-shim')
  .description('kexec-lab CRI runtime: pod sandboxes and containers as isolated process trees, CRI over gRPC')
  .option(
    '--listen <endpoint>',
    'CRI gRPC endpoint: unix:///path or tcp://host:port',
    'unix:///tmp/kexec-lab/cri-shim.sock',
  )
  .option('--streaming-address <address>', 'bind address of the streaming server', '127.0.0.1')
  .option('--streaming-port <port>', 'streaming server port (0 = any free port)', portArgument, 0)
  .option(
    '--root <dir>',
    'state directory: sandboxes, container filesystems, logs',
    '/tmp/kexec-lab/cri-shim',
  )
  .option('--images <dir>', 'image templates directory (default: cri-shim/images in the package)')
  .option(
    '--spdy-only',
    'streaming server: refuse WebSocket upgrades, as real CRI runtimes (SPDY/3.1 only)',
    false,
  )
  .addOption(
    new Option(
      '--streaming-connection-idle-timeout <duration>',
      'end exec/attach/port-forward sessions with no traffic either way for this long (Go duration: 4h, 30s, 500ms; 0 = never)',
    )
      .argParser(idleTimeoutArgument)
      .default(DEFAULT_STREAMING_IDLE_TIMEOUT_MS, '4h'),
  )
  .option(
    '--streaming-tls-cert-file <file>',
    'serve the streaming server (exec/attach/port-forward) over https with this certificate (PEM); the streaming URLs CRI Exec/Attach/PortForward return are then https://. containerd: enable_tls_streaming with x509_key_pair_streaming.tls_cert_file. Needs --streaming-tls-private-key-file; plain http without both',
  )
  .option(
    '--streaming-tls-private-key-file <file>',
    "the streaming server's private key (PEM) for --streaming-tls-cert-file. containerd: x509_key_pair_streaming.tls_key_file",
  )
  .option(
    '--pod-pids-limit <n>',
    "pids.max of every pod's cgroup (the kubelet's --pod-max-pids; 0 = unlimited); bwrap only",
    (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected an integer >= 0');
      return n;
    },
    1024,
  )
  .addOption(
    new Option('--isolation <mode>', 'process isolation: bubblewrap, none, or bwrap when it works')
      .choices(['auto', 'bwrap', 'none'])
      .default('auto'),
  );

addLoggingFlags(program);

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<{
    listen: string;
    streamingAddress: string;
    streamingPort: number;
    root: string;
    images?: string;
    isolation: IsolationRequest;
    spdyOnly: boolean;
    streamingConnectionIdleTimeout: number;
    streamingTlsCertFile?: string;
    streamingTlsPrivateKeyFile?: string;
    podPidsLimit: number;
    v: number;
    loggingFormat: LoggingFormat;
  }>();
  const log = newLogger({ service: 'cri-shim', verbosity: o.v, format: o.loggingFormat });
  // As containerd's getStreamListenerMode: one file without the other is a configuration error.
  if (!!o.streamingTlsCertFile !== !!o.streamingTlsPrivateKeyFile) {
    program.error(
      o.streamingTlsCertFile
        ? 'error: --streaming-tls-cert-file needs --streaming-tls-private-key-file'
        : 'error: --streaming-tls-private-key-file needs --streaming-tls-cert-file',
    );
  }
  const shim = await startCriShim({
    listen: o.listen,
    streamingAddress: o.streamingAddress,
    streamingPort: o.streamingPort,
    root: o.root,
    images: o.images,
    isolation: o.isolation,
    spdyOnly: o.spdyOnly,
    podPidsLimit: o.podPidsLimit,
    streamingConnectionIdleTimeoutMs: o.streamingConnectionIdleTimeout,
    streamingTls:
      o.streamingTlsCertFile && o.streamingTlsPrivateKeyFile
        ? { certFile: o.streamingTlsCertFile, keyFile: o.streamingTlsPrivateKeyFile }
        : undefined,
    log,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping all containers`);
    // Bounded: nobody may be left to SIGKILL a service whose supervisor died.
    setTimeout(() => process.exit(1), 5_000).unref();
    shim.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log(`shutdown failed: ${String(err)}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  stopWithParent(stop);
  writeReadyLine({ service: 'cri-shim', endpoint: shim.endpoint, streamingUrl: shim.streamingUrl });
}

main().catch((err: unknown) => {
  stderrLogger('cri-shim')(errorMessage(err));
  process.exit(1);
});
