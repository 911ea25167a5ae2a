/**
 * The flags several kexec commands share, and the checks that go with them: kubectl's global
 * flags (`--kubeconfig`, `--context`, `-n`), exec's and attach's stream flags, `--protocol`, and
 * the pod argument (`POD` or `pod/POD`).
 *
 * Mirrors kubectl `pkg/cmd/util` (the global flags of `genericclioptions.ConfigFlags`) and
 * `pkg/cmd/exec/exec.go` (StreamOptions' flags, which attach reuses).
 */
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { STREAM_PROTOCOLS, type StreamProtocol } from '../remotecommand-executor.js';
import { parseTimeout } from '../verbose.js';
import { verbosityArgument } from '../../shared/cli-flags.js';

/** Flags every subcommand that talks to the apiserver accepts (kubectl's global flags). */
export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  /** `-v`: 6 requests, codes and timings (and Audit-Ids); 7 request headers; 8 response headers. */
  verbosity?: number;
  /** `--request-timeout` in ms (0: none). */
  requestTimeoutMs?: number;
  /** `--pod-running-timeout` in ms: how long exec and attach wait for a Pending pod (default 1m). */
  podRunningTimeoutMs?: number;
}

/** The verbose flags as commander hands them over (strings), before connectionFlags checks them. */
interface RawVerboseFlags {
  v?: string;
  requestTimeout?: string;
  podRunningTimeout?: string;
}

/** exec's and attach's flags as commander hands them over, before Complete. */
export type StreamFlags = ConnectionFlags & {
  container?: string;
  stdin?: boolean;
  tty?: boolean;
  quiet?: boolean;
  protocol?: unknown;
};

/** kubectl's global flags that take a value, which may come before the subcommand. */
export const GLOBAL_VALUE_FLAGS = new Set([
  '--kubeconfig',
  '--context',
  '-n',
  '--namespace',
  '-v',
  '--v',
  '--request-timeout',
  '--pod-running-timeout',
]);

export function addConnectionFlags(cmd: Command): Command {
  return cmd
    .option(
      '--kubeconfig <file>',
      'path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; the lab writes .lab/kubeconfig)',
    )
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <namespace>', 'namespace of the pod (default: the context namespace)')
    .option('-v, --v <level>', 'log level: 6 requests and timings, 8 headers and the negotiated subprotocol')
    .option('--request-timeout <duration>', 'how long to wait for one API request (0: no limit; default 30s)')
    .option('--pod-running-timeout <duration>', 'how long to wait for the pod to be running (default 1m)');
}

export const CONTAINER_HELP = 'container name (default: the pod’s default container)';

/** exec's and attach's flags for the session's streams. */
export function addStreamFlags(cmd: Command): Command {
  return cmd
    .option('-c, --container <name>', CONTAINER_HELP)
    .option('-i, --stdin', 'pass stdin to the container', false)
    .option('-t, --tty', 'stdin is a TTY', false)
    .option('-q, --quiet', 'only print output from the remote session', false);
}

const PROTOCOL_HELP =
  'stream protocol: auto (default: WebSocket, then SPDY if the upgrade is refused, as kubectl), websocket, or spdy';

export function addProtocolFlag(cmd: Command, envName: string): Command {
  return cmd.option('--protocol <protocol>', `${PROTOCOL_HELP}; ${envName}=false means spdy`);
}

/** `--protocol`'s value, checked; undefined when not given. */
export function protocolFlag(value: unknown, commandPath: string): StreamProtocol | undefined {
  if (value === undefined) return undefined;
  if (typeof value === 'string' && (STREAM_PROTOCOLS as readonly string[]).includes(value)) {
    return value as StreamProtocol;
  }
  throw new UsageError(
    `invalid argument ${JSON.stringify(value)} for "--protocol": must be one of ${STREAM_PROTOCOLS.join(', ')}`,
    commandPath,
  );
}

export function connectionFlags(
  flags: ConnectionFlags & RawVerboseFlags,
  commandPath: string,
): ConnectionFlags {
  if (flags.namespace === '') throw new UsageError('--namespace must not be empty', commandPath);
  const parsed = (name: string, value: string | undefined, parse: (v: string) => number) => {
    if (value === undefined) return undefined;
    try {
      return parse(value);
    } catch (err) {
      throw new UsageError(
        `invalid argument ${JSON.stringify(value)} for "${name}": ${(err as Error).message}`,
        commandPath,
      );
    }
  };
  return {
    kubeconfig: flags.kubeconfig,
    context: flags.context,
    namespace: flags.namespace,
    verbosity: parsed('-v', flags.v, verbosityArgument),
    requestTimeoutMs: parsed('--request-timeout', flags.requestTimeout, parseTimeout),
    podRunningTimeoutMs: parsed('--pod-running-timeout', flags.podRunningTimeout, parseTimeout),
  };
}

/** exec's and attach's common Complete: the pod, the container and the stream flags. */
export function streamOptionsFrom(pod: string, flags: StreamFlags, commandPath: string) {
  return {
    ...connectionFlags(flags, commandPath),
    pod: podNameFrom(pod, commandPath),
    container: flags.container || undefined,
    stdin: Boolean(flags.stdin),
    tty: Boolean(flags.tty),
    quiet: Boolean(flags.quiet),
    protocol: protocolFlag(flags.protocol, commandPath),
  };
}

/** The pod name from `POD`, `pod/POD` or `pods/POD` (kubectl accepts TYPE/NAME). */
export function podNameFrom(arg: string, commandPath: string): string {
  const slash = arg.indexOf('/');
  if (slash < 0) return arg;
  const type = arg.slice(0, slash).toLowerCase();
  const name = arg.slice(slash + 1);
  if (!['pod', 'pods', 'po'].includes(type) || !name) {
    throw new UsageError(`cannot exec into ${JSON.stringify(arg)}: only pods are supported`, commandPath);
  }
  return name;
}
