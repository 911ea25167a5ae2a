/**
 * The kexec command line, as kubectl spells it (kubectl `pkg/cmd/exec/exec.go` NewCmdExec /
 * Complete / Validate):
 *
 *   kexec [exec] [-n NS] [-c CONTAINER] [-i] [-t] [-q] [--kubeconfig FILE] [--context CTX] POD -- COMMAND [ARGS...]
 *
 * Subcommands are commander commands; `exec` is the default one, so `kexec POD -- CMD` and
 * `kexec exec POD -- CMD` are the same. Everything after the first `--` is the remote command,
 * never parsed as kexec options.
 */
import { Command, CommanderError } from 'commander';
import { UsageError } from './errors.js';

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
}

export interface KexecActions {
  /** Runs `exec`; resolves to the process exit code. */
  exec(opts: ExecOptions): Promise<number>;
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
  flags: ConnectionFlags & { container?: string; stdin?: boolean; tty?: boolean; quiet?: boolean },
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
  if (flags.namespace === '') throw new UsageError('--namespace must not be empty', commandPath);
  return {
    kubeconfig: flags.kubeconfig,
    context: flags.context,
    namespace: flags.namespace,
    pod: podNameFrom(pod, commandPath),
    container: flags.container || undefined,
    stdin: Boolean(flags.stdin),
    tty: Boolean(flags.tty),
    quiet: Boolean(flags.quiet),
    command,
  };
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

  addConnectionFlags(
    program
      .command('exec', { isDefault: true })
      .description('Execute a command in a container (the default command)')
      .usage('[options] POD -- COMMAND [args...]')
      .argument('[pod]', 'the pod (NAME or pod/NAME)')
      .argument('[command...]', 'the command and its arguments, after --'),
  )
    .option('-c, --container <name>', 'container name (default: the pod’s default container)')
    .option('-i, --stdin', 'pass stdin to the container', false)
    .option('-t, --tty', 'stdin is a TTY', false)
    .option('-q, --quiet', 'only print output from the remote session', false)
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
  return program;
}

/** Parses `argv` (user arguments) and runs the chosen action; resolves to the exit code. */
export async function runProgram(argv: string[], actions: KexecActions, io: ProgramIO): Promise<number> {
  let code = 0;
  const program = buildProgram(argv, { exec: async (o) => (code = await actions.exec(o)) }, io);
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
