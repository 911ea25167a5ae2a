/**
 * The kexec command line, as kubectl spells it (kubectl `pkg/cmd/exec/exec.go`,
 * `pkg/cmd/attach/attach.go`, `pkg/cmd/portforward/portforward.go`, `pkg/cmd/cp/cp.go`: NewCmd… /
 * Complete / Validate):
 *
 *   kexec [exec] [-n NS] [-c CONTAINER] [-i] [-t] [-q] [--protocol P] POD -- COMMAND [ARGS...]
 *   kexec attach [-n NS] [-c CONTAINER] [-i] [-t] [-q] [--protocol P] POD
 *   kexec port-forward [-n NS] [--address ADDR,...] [--protocol P] POD [LOCAL:]REMOTE...
 *   kexec cp [-n NS] [-c CONTAINER] [--protocol P] [[NS/]POD:]SRC [[NS/]POD:]DEST  (cp.ts)
 *
 * plus `--kubeconfig FILE` and `--context CTX` everywhere.
 *
 * Subcommands are commander commands; `exec` is the default one, so `kexec POD -- CMD` and
 * `kexec exec POD -- CMD` are the same. Everything after the first `--` is the remote command,
 * never parsed as kexec options.
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from './errors.js';
import { parseAddresses, parsePorts, type ForwardedPort, type ListenAddress } from './forwarded-ports.js';
import { STREAM_PROTOCOLS, type StreamProtocol } from './remotecommand-executor.js';

/** Flags every subcommand that talks to the apiserver accepts (kubectl's global flags). */
export interface ConnectionFlags {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

export interface ExecOptions extends ConnectionFlags {
  pod: string;
  container?: string;
  stdin: boolean;
  tty: boolean;
  quiet: boolean;
  command: string[];
  /** `--protocol`; undefined: the environment decides (see remotecommand-executor.ts). */
  protocol?: StreamProtocol;
}

export type AttachOptions = Omit<ExecOptions, 'command'>;

export interface PortForwardOptions extends ConnectionFlags {
  pod: string;
  ports: ForwardedPort[];
  addresses: ListenAddress[];
  protocol?: StreamProtocol;
}

/** `kexec cp SRC DEST`: each a local path or `[[namespace/]pod:]path` (cp.ts parses them). */
export interface CpOptions extends ConnectionFlags {
  src: string;
  dest: string;
  container?: string;
  protocol?: StreamProtocol;
}

export interface KexecActions {
  /** Runs `exec`; resolves to the process exit code. */
  exec(opts: ExecOptions): Promise<number>;
  attach?(opts: AttachOptions): Promise<number>;
  portForward?(opts: PortForwardOptions): Promise<number>;
  cp?(opts: CpOptions): Promise<number>;
}

export interface ProgramIO {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

function addConnectionFlags(cmd: Command): Command {
  return cmd
    .option('--kubeconfig <file>', 'path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'the kubeconfig context to use')
    .option('-n, --namespace <namespace>', 'namespace of the pod (default: the context namespace)');
}

const CONTAINER_HELP = 'container name (default: the pod’s default container)';

/** exec's and attach's flags for the session's streams. */
function addStreamFlags(cmd: Command): Command {
  return cmd
    .option('-c, --container <name>', CONTAINER_HELP)
    .option('-i, --stdin', 'pass stdin to the container', false)
    .option('-t, --tty', 'stdin is a TTY', false)
    .option('-q, --quiet', 'only print output from the remote session', false);
}

const PROTOCOL_HELP =
  'stream protocol: auto (default: WebSocket, then SPDY if the upgrade is refused, as kubectl), websocket, or spdy';

function addProtocolFlag(cmd: Command, envName: string): Command {
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

function connectionFlags(flags: ConnectionFlags, commandPath: string): ConnectionFlags {
  if (flags.namespace === '') throw new UsageError('--namespace must not be empty', commandPath);
  return { kubeconfig: flags.kubeconfig, context: flags.context, namespace: flags.namespace };
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

/**
 * kubectl's Complete + Validate for exec. `operands` are all positional arguments (the pod and,
 * after `--`, the command); `argsLenAtDash` is how many of them came before `--` (-1: no `--`).
 */
export function completeExec(
  operands: string[],
  argsLenAtDash: number,
  flags: ConnectionFlags & {
    container?: string;
    stdin?: boolean;
    tty?: boolean;
    quiet?: boolean;
    protocol?: unknown;
  },
  commandPath = 'kexec exec',
): ExecOptions {
  let pod = '';
  if (operands.length > 0 && argsLenAtDash !== 0) pod = operands[0];
  let command: string[] = [];
  if (argsLenAtDash > -1) {
    if (argsLenAtDash > 1) {
      throw new UsageError(
        `exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead`,
        commandPath,
      );
    }
    command = operands.slice(argsLenAtDash);
  } else if (operands.length > 1) {
    throw new UsageError(
      `exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead`,
      commandPath,
    );
  }
  if (!pod) throw new UsageError('pod or type/name must be specified', commandPath);
  if (command.length === 0) {
    throw new UsageError('you must specify at least one command for the container', commandPath);
  }
  return {
    ...connectionFlags(flags, commandPath),
    pod: podNameFrom(pod, commandPath),
    container: flags.container || undefined,
    stdin: Boolean(flags.stdin),
    tty: Boolean(flags.tty),
    quiet: Boolean(flags.quiet),
    command,
    protocol: protocolFlag(flags.protocol, commandPath),
  };
}

/** kubectl attach's Validate: one pod (POD or pod/NAME; kubectl also takes `TYPE NAME`). */
export function completeAttach(
  operands: string[],
  flags: Parameters<typeof completeExec>[2],
  commandPath = 'kexec attach',
): AttachOptions {
  if (operands.length === 0) throw new UsageError('at least 1 argument is required for attach', commandPath);
  let pod = operands[0];
  if (operands.length === 2) pod = `${operands[0]}/${operands[1]}`;
  if (operands.length > 2) {
    throw new UsageError(
      `expected POD, TYPE/NAME, or TYPE NAME, (at most 2 arguments) saw ${operands.length}: [${operands.join(' ')}]`,
      commandPath,
    );
  }
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

/** kubectl port-forward's Complete/Validate: POD then one or more port specs. */
export function completePortForward(
  operands: string[],
  flags: ConnectionFlags & { address?: string[]; protocol?: unknown },
  commandPath = 'kexec port-forward',
): PortForwardOptions {
  if (operands.length < 2) {
    throw new UsageError('TYPE/NAME and list of ports are required for port-forward', commandPath);
  }
  const protocol = protocolFlag(flags.protocol, commandPath);
  return {
    ...connectionFlags(flags, commandPath),
    pod: podNameFrom(operands[0], commandPath),
    ports: parsePorts(operands.slice(1)),
    addresses: parseAddresses(flags.address?.length ? flags.address : ['localhost']),
    protocol,
  };
}

const SUBCOMMANDS = new Set(['exec', 'attach', 'port-forward', 'cp']);
const GLOBAL_VALUE_FLAGS = new Set(['--kubeconfig', '--context', '-n', '--namespace']);

/**
 * kubectl's global flags may come before the subcommand (`kexec --kubeconfig F port-forward …`):
 * moves leading `--kubeconfig`, `--context`, `-n`/`--namespace` (with their values) to just after
 * an explicit subcommand name, where that subcommand parses them. Anything else is left alone, so
 * `kexec --kubeconfig F POD -- CMD` still runs the default `exec`.
 */
export function hoistGlobalFlags(argv: string[]): string[] {
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (GLOBAL_VALUE_FLAGS.has(a)) i += 2;
    else if (/^--(kubeconfig|context|namespace)=/.test(a) || /^-n.+/.test(a)) i += 1;
    else break;
  }
  if (i === 0 || i >= argv.length || !SUBCOMMANDS.has(argv[i])) return argv;
  return [argv[i], ...argv.slice(0, i), ...argv.slice(i + 1)];
}

/**
 * Builds the commander program. `argv` are the user's arguments (without node and script); they
 * are needed to find where `--` was, which commander does not report.
 */
export function buildProgram(argv: string[], actions: KexecActions, io: ProgramIO): Command {
  const dash = argv.indexOf('--');
  const afterDash = dash < 0 ? -1 : argv.length - dash - 1;

  const program = new Command('kexec')
    .description('Execute a command in a container of a kexec-lab (or any Kubernetes) pod')
    .configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr })
    .exitOverride()
    .showHelpAfterError("See 'kexec -h' for help and examples");

  const execCmd = addStreamFlags(
    addConnectionFlags(
      program
        .command('exec', { isDefault: true })
        .description('Execute a command in a container (the default command)')
        .usage('[options] POD -- COMMAND [args...]')
        .argument('[pod]', 'the pod (NAME or pod/NAME)')
        .argument('[command...]', 'the command and its arguments, after --'),
    ),
  );
  addProtocolFlag(execCmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Examples:
  # Run 'ls /root' in pod demo, first container
  kexec demo -- ls /root

  # Switch to raw terminal mode; sends stdin to 'sh' in container demo of pod demo
  kexec -it demo -c demo -- sh`,
    )
    .exitOverride()
    .action(async (pod: string | undefined, rest: string[], flags: Record<string, unknown>) => {
      const operands = pod === undefined ? [] : [pod, ...rest];
      const argsLenAtDash = afterDash < 0 ? -1 : Math.max(0, operands.length - afterDash);
      const opts = completeExec(operands, argsLenAtDash, flags as Parameters<typeof completeExec>[2]);
      await actions.exec(opts);
    });

  const attachCmd = addStreamFlags(
    addConnectionFlags(
      program
        .command('attach')
        .description('Attach to a process that is already running inside an existing container')
        .usage('[options] POD')
        .argument('[pod...]', 'the pod (NAME, pod/NAME or pod NAME)'),
    ),
  );
  addProtocolFlag(attachCmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Examples:
  # Get output from running pod demo, first container
  kexec attach demo

  # Switch to raw terminal mode; sends stdin to the main process of container demo of pod demo
  kexec attach demo -c demo -i -t`,
    )
    .exitOverride()
    .action(async (operands: string[], flags: Record<string, unknown>) => {
      const opts = completeAttach(operands, flags as Parameters<typeof completeAttach>[1]);
      if (!actions.attach) throw new UsageError('attach is not available', 'kexec attach');
      await actions.attach(opts);
    });

  const pfCmd = addConnectionFlags(
    program
      .command('port-forward')
      .description('Forward one or more local ports to a pod')
      .usage('[options] POD [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]')
      .argument('[pod]', 'the pod (NAME or pod/NAME)')
      .argument('[ports...]', 'LOCAL:REMOTE, REMOTE (same local port) or :REMOTE (any free local port)'),
  ).option(
    '--address <addresses>',
    'addresses to listen on (comma-separated, repeatable); only IP addresses or localhost',
    (value: string, prev: string[] | undefined) => [
      ...(prev ?? []),
      ...value
        .split(',')
        .map((a) => a.trim())
        .filter(Boolean),
    ],
  );
  addProtocolFlag(pfCmd, 'KUBECTL_PORT_FORWARD_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Examples:
  # Listen on ports 5000 and 6000 locally, forwarding data to/from ports 5000 and 6000 in the pod
  kexec port-forward demo 5000 6000

  # Listen on port 8888 locally, forwarding to 5000 in the pod
  kexec port-forward demo 8888:5000

  # Listen on a random port locally, forwarding to 5000 in the pod
  kexec port-forward demo :5000

  # Listen on port 8888 on localhost and 10.0.0.2, forwarding to 5000 in the pod
  kexec port-forward --address localhost,10.0.0.2 demo 8888:5000`,
    )
    .exitOverride()
    .action(async (pod: string | undefined, ports: string[], flags: Record<string, unknown>) => {
      const operands = pod === undefined ? [] : [pod, ...ports];
      const opts = completePortForward(operands, flags as Parameters<typeof completePortForward>[1]);
      if (!actions.portForward) throw new UsageError('port-forward is not available', 'kexec port-forward');
      await actions.portForward(opts);
    });

  const cpCmd = addConnectionFlags(
    program
      .command('cp')
      .description('Copy files and directories to and from containers (needs `tar` in the container)')
      .usage('[options] <file-spec-src> <file-spec-dest>')
      .argument('[src]', '[[namespace/]pod:]path or a local path')
      .argument('[dest]', '[[namespace/]pod:]path or a local path'),
  ).option('-c, --container <name>', CONTAINER_HELP);
  addProtocolFlag(cpCmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Entries of the container's tar that would land outside the destination (.., absolute paths,
hard links out), and every symlink, are refused with a warning; kexec cp then exits 1.

Examples:
  # Copy /tmp/foo from pod demo to ./foo
  kexec cp demo:/tmp/foo ./foo

  # Copy local dir ./bar into /root/bar of container main in pod demo, namespace dev
  kexec cp ./bar dev/demo:/root/bar -c main`,
    )
    .exitOverride()
    .action(async (src: string | undefined, dest: string | undefined, flags: Record<string, unknown>) => {
      if (src === undefined || dest === undefined || cpCmd.args.length !== 2) {
        throw new UsageError('source and destination are required', 'kexec cp');
      }
      if (!actions.cp) throw new UsageError('cp is not available', 'kexec cp');
      await actions.cp({
        ...connectionFlags(flags as ConnectionFlags, 'kexec cp'),
        container: (flags.container as string | undefined) || undefined,
        protocol: protocolFlag(flags.protocol, 'kexec cp'),
        src,
        dest,
      });
    });
  cpCmd.allowExcessArguments(true);
  return program;
}

/** Parses `argv` (user arguments) and runs the chosen action; resolves to the exit code. */
export async function runProgram(argv: string[], actions: KexecActions, io: ProgramIO): Promise<number> {
  let code = 0;
  argv = hoistGlobalFlags(argv);
  const program = buildProgram(
    argv,
    {
      exec: async (o) => (code = await actions.exec(o)),
      attach: actions.attach && (async (o) => (code = await actions.attach!(o))),
      portForward: actions.portForward && (async (o) => (code = await actions.portForward!(o))),
      cp: actions.cp && (async (o) => (code = await actions.cp!(o))),
    },
    io,
  );
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; commander has already printed its own message.
      return err.exitCode;
    }
    throw err;
  }
  return code;
}
