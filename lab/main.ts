/**
 * `npm start`: the lab in the foreground (see lab.ts). Ctrl-C / SIGTERM / SIGHUP stop every
 * service and exit 0; a service dying on its own stops the rest and exits 1.
 *
 *   node dist/lab/main.js [--dir .lab] [--port 6443] [--nodes 1] [--max-connection-bytes-per-sec N] [--insecure-http] [--etcd]
 *     [--runtime cri-shim|containerd]
 */
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  describeKubeletFault,
  faultModesHelp,
  formatKubeletFault,
  kubeletFaultOption,
  type KubeletFault,
} from '../kubelet-sim/fault-injection.js';
import { pathHint } from './kexec-bin.js';
import { startLab, tryCommands } from './lab.js';
import { LAB_RUNTIMES, type LabRuntime } from './plan.js';
import { consoleLog } from './console.js';
import { loggingFormatArgument } from '../shared/cli-flags.js';
import type { LoggingFormat } from '../shared/logging.js';
import { describeExit } from './supervisor.js';
import { errorMessage } from '../shared/logging.js';
import { portArgument } from '../shared/cli-flags.js';

function nonNegativeInt(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw new InvalidArgumentError(`expected an integer 0-${max}`);
    return n;
  };
}

function positiveInt(max: number) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > max)
      throw new InvalidArgumentError(`expected an integer 1-${max}`);
    return n;
  };
}

const program = new Command('kexec-lab')
  .description(
    'Start the kexec lab: cri-shim, apiserver and kubelet-sim as separate processes, and a demo pod',
  )
  .option('--dir <dir>', 'state directory: signing key, tokens, kubeconfig, runtime state', '.lab')
  .option('--port <port>', 'apiserver port (0 picks a free one)', portArgument, 6443)
  .option('--dashboard-port <port>', 'the live dashboard on 127.0.0.1 (0 picks a free one)', portArgument, 0)
  .option('--no-dashboard', 'do not serve the live dashboard')
  .option(
    '--max-connection-bytes-per-sec <n>',
    'apiserver rate limit for each direction of a proxied stream (0 = unlimited)',
    nonNegativeInt(Number.MAX_SAFE_INTEGER),
    0,
  )
  .option('--node-name <name>', 'name of the first node (the demo pod runs there)', 'node-1')
  .option(
    '--nodes <n>',
    'how many kubelet-sim + cri-shim pairs (nodes node-2 … node-N after the first)',
    positiveInt(64),
    1,
  )
  .option(
    '--insecure-http',
    'serve the apiserver over plain http (to read the exchange in a packet capture; kubectl then sends no token)',
    false,
  )
  .option(
    '--etcd',
    "keep the apiserver's objects in a real etcd (data in DIR/etcd; needs the etcd-server package) instead of in memory",
    false,
  )
  .addOption(
    new Option(
      '--runtime <runtime>',
      "each node's container runtime: the cri-shim, or a real containerd (Debian's containerd, runc and CNI plugins; needs root)",
    )
      .choices(LAB_RUNTIMES)
      .default('cri-shim'),
  )
  .addOption(
    new Option('--isolation <mode>', 'cri-shim process isolation')
      .choices(['auto', 'bwrap', 'none'])
      .default('auto'),
  )
  .option(
    '--spdy-only-runtime',
    'the cri-shim speaks SPDY only, like containerd (WebSocket via the translator)',
    false,
  )
  .option(
    '--no-stream-translation',
    'splice v5 WebSocket sessions to the runtime instead of translating to SPDY',
  )
  .option(
    '--authorization-policy-file <file>',
    "the apiserver's RBAC-like rules for lab users (npm run lab:user), added to the built-in policy",
  )
  .option(
    '--kubelet-fault <mode>',
    `every kubelet-sim answers exec/attach/port-forward upgrades maliciously, an attack drill (kubelet-sim/fault-injection.ts): ${faultModesHelp()}`,
    // Checked here, so that a typo stops the lab before anything starts.
    kubeletFaultOption,
  )
  .option(
    '--tls-keylog <file>',
    "every service appends its TLS session secrets to FILE (Node's --tls-keylog, NSS key log format) so tshark can decrypt a capture of the hops; whoever reads FILE reads those sessions",
  )
  .option(
    '-v, --verbose',
    "more output (repeatable): -v also logs each node's heartbeats and pod list/watch requests",
    (_: string, n: number) => n + 1,
    0,
  )
  .option(
    '--logging-format <format>',
    "how the services' log lines are shown: text (klog, the default) or json (as they write them)",
    loggingFormatArgument,
    'text',
  )
  .showHelpAfterError();

async function main(): Promise<number> {
  program.parse();
  const o = program.opts<{
    dir: string;
    port: number;
    dashboardPort: number;
    dashboard: boolean;
    maxConnectionBytesPerSec: number;
    nodeName: string;
    nodes: number;
    insecureHttp: boolean;
    etcd: boolean;
    isolation: 'auto' | 'bwrap' | 'none';
    runtime: LabRuntime;
    spdyOnlyRuntime: boolean;
    streamTranslation: boolean;
    kubeletFault?: KubeletFault;
    authorizationPolicyFile?: string;
    tlsKeylog?: string;
    verbose: number;
    loggingFormat: LoggingFormat;
  }>();
  const say = (line: string) => void process.stderr.write(`[lab] ${line}\n`);

  const interrupt = new AbortController();
  let signalled: NodeJS.Signals | undefined;
  let onSignal: (s: NodeJS.Signals) => void = (s) => {
    signalled = s;
    interrupt.abort();
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, () => onSignal(s));

  let lab;
  try {
    lab = await startLab({
      dir: o.dir,
      port: o.port,
      dashboard: o.dashboard,
      dashboardPort: o.dashboardPort,
      maxConnectionBytesPerSec: o.maxConnectionBytesPerSec,
      authorizationPolicyFile: o.authorizationPolicyFile,
      nodeName: o.nodeName,
      nodes: o.nodes,
      insecureHttp: o.insecureHttp,
      etcd: o.etcd,
      isolation: o.isolation,
      runtime: o.runtime,
      spdyOnlyRuntime: o.spdyOnlyRuntime,
      streamTranslation: o.streamTranslation,
      kubeletFault: o.kubeletFault && formatKubeletFault(o.kubeletFault),
      verbosity: o.verbose,
      loggingFormat: o.loggingFormat,
      tlsKeylog: o.tlsKeylog,
      log: consoleLog(process.stderr),
      signal: interrupt.signal,
    });
  } catch (err) {
    if (signalled) {
      say(`${signalled}: stopped during start-up`);
      return 0;
    }
    say(`start-up failed: ${errorMessage(err)}`);
    return 1;
  }

  const [first, ...rest] = tryCommands(lab.kubeconfigPath, lab.apiserverUrl);
  process.stdout.write(
    [
      '',
      `kexec lab is up: apiserver ${lab.apiserverUrl}, ${
        lab.nodes.length === 1 ? `node ${o.nodeName}` : `nodes ${lab.nodes.map((n) => n.name).join(', ')}`
      }, pod default/demo Running on ${o.nodeName}.`,
      `kubeconfig: ${lab.kubeconfigPath}`,
      `audit log: ${lab.auditLogPath}`,
      ...(lab.dashboard
        ? [
            `dashboard: ${lab.dashboard.url} (log in once with ${lab.dashboard.newLoginLink()} ,`,
            '  or send the admin token as Authorization: Bearer)',
          ]
        : []),
      ...(lab.caFile ? [`lab CA: ${lab.caFile}`] : []),
      ...(o.tlsKeylog
        ? [`TLS key log: ${path.resolve(o.tlsKeylog)} (tshark -o tls.keylog_file:FILE decrypts the hops)`]
        : []),
      ...(lab.etcdUrl ? [`etcd: ${lab.etcdUrl} (objects kept in ${o.dir}/etcd)`] : []),
      ...(o.kubeletFault && o.kubeletFault.mode !== 'none'
        ? [
            '',
            `KUBELET FAULT ON (--kubelet-fault ${formatKubeletFault(o.kubeletFault)}): every kubelet-sim will ${describeKubeletFault(o.kubeletFault)}.`,
            'exec, attach and port-forward must fail with an error from the apiserver; get, logs, apply keep working.',
            'The kubelet-sim logs each faulty answer ("fault … answered …") and how many requests its connection carried.',
          ]
        : []),
      '',
      `kexec: ${pathHint(lab.kexecBinDir)}`,
      'Try:',
      `  ${first}`,
      ...rest.map((c) => `  ${c}`),
      '',
      `Another identity: npm run lab:user -- --dir ${o.dir} --name alice --group devs (a kubeconfig for alice;`,
      '  grant her rights with --authorization-policy-file, see docs/wiring.md).',
      '',
      'Press Ctrl-C to stop the lab.',
      '',
    ].join('\n'),
  );

  const running = lab;
  const stopped = new Promise<number>((resolve) => {
    onSignal = (s) => {
      say(`${s}: stopping the lab`);
      void running.stop().then(() => resolve(0));
    };
    void running.failed.then((f) => {
      const why = f.reason === 'crash-loop' ? 'keeps crashing' : 'exited unexpectedly';
      say(`${f.service} ${why} (${describeExit(f)}): stopping the lab`);
      void running.stop().then(() => resolve(1));
    });
  });
  const code = await stopped;
  say('stopped');
  return code;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[lab] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
