/**
 * The `kexec` root command: which subcommand runs, with which arguments.
 *
 *   kexec [exec] [-n NS] [-c CONTAINER] [-i] [-t] [-q] [--protocol P] POD -- COMMAND [ARGS...]
 *   kexec attach [-n NS] [-c CONTAINER] [-i] [-t] [-q] [--protocol P] POD
 *   kexec port-forward [-n NS] [--address ADDR,...] [--protocol P] POD [LOCAL:]REMOTE...
 *   kexec cp [-n NS] [-c CONTAINER] [--protocol P] [[NS/]POD:]SRC [[NS/]POD:]DEST
 *
 * plus `--kubeconfig FILE` and `--context CTX` everywhere. One module per subcommand beside this
 * one (exec.ts, attach.ts, port-forward.ts, cp.ts), each with its flags and kubectl's Complete /
 * Validate; the Run of each lives in the kexec folder.
 *
 * Mirrors kubectl `pkg/cmd/cmd.go` (NewKubectlCommand: one root, a child per command, the global
 * flags accepted before the command name). Differences: `exec` is the default command, so
 * `kexec POD -- CMD` is `kexec exec POD -- CMD`; the subcommand is chosen here from the arguments
 * before the first `--` (routeArgv), never from the remote command, so `kexec --kubeconfig F
 * demo -- ls --help` runs `ls --help` in the pod (commander's own default-command dispatch looked
 * for `-h`/`--help` in every argument, the remote command's included, and printed kexec's help).
 */
import { Command, CommanderError } from 'commander';
import { newCmdAttach, type AttachOptions } from './attach.js';
import { newCmdCp, type CpOptions } from './cp.js';
import { newCmdExec, type ExecOptions } from './exec.js';
import { GLOBAL_VALUE_FLAGS } from './flags.js';
import { newCmdPortForward, type PortForwardOptions } from './port-forward.js';

export interface KexecActions {
  /** Runs `exec`; resolves to the process exit code. */
  exec(opts: ExecOptions): Promise<number>;
  attach(opts: AttachOptions): Promise<number>;
  portForward(opts: PortForwardOptions): Promise<number>;
  cp(opts: CpOptions): Promise<number>;
}

export interface ProgramIO {
  writeOut(text: string): void;
  writeErr(text: string): void;
}

const SUBCOMMANDS = new Set(['exec', 'attach', 'port-forward', 'cp', 'help']);
const ROOT_HELP = new Set(['-h', '--help']);

/**
 * The user's arguments with the subcommand first: an explicit subcommand name that follows only
 * kubectl's global flags (`kexec --kubeconfig F port-forward …`) is moved to the front; otherwise
 * `exec` is put there. Only arguments before the first `--` are looked at.
 */
export function routeArgv(argv: string[]): string[] {
  if (argv.length > 0 && ROOT_HELP.has(argv[0]!)) return argv;
  let i = 0;
  while (i < argv.length) {
    const a = argv[i]!;
    if (GLOBAL_VALUE_FLAGS.has(a)) i += 2;
    else if (/^--(kubeconfig|context|namespace)=/.test(a) || /^-n.+/.test(a)) i += 1;
    else break;
  }
  if (i < argv.length && argv[i] !== '--' && SUBCOMMANDS.has(argv[i]!)) {
    return [argv[i]!, ...argv.slice(0, i), ...argv.slice(i + 1)];
  }
  return ['exec', ...argv];
}

/**
 * The commander program for already routed arguments. `argv` (without node and script) is
 * needed to find where `--` was, which commander does not report.
 */
export function buildProgram(argv: string[], actions: KexecActions, io: ProgramIO): Command {
  const dash = argv.indexOf('--');
  const afterDash = dash < 0 ? -1 : argv.length - dash - 1;
  const program = new Command('kexec')
    .description('Execute a command in a container of a kexec-lab (or any Kubernetes) pod')
    .enablePositionalOptions()
    .showHelpAfterError("See 'kexec -h' for help and examples");
  const commands = [
    newCmdExec(afterDash, async (o) => void (await actions.exec(o))),
    newCmdAttach(async (o) => void (await actions.attach(o))),
    newCmdPortForward(async (o) => void (await actions.portForward(o))),
    newCmdCp(async (o) => void (await actions.cp(o))),
  ];
  for (const cmd of commands) program.addCommand(cmd, { isDefault: cmd.name() === 'exec' });
  for (const cmd of [program, ...commands]) {
    cmd.configureOutput({ writeOut: io.writeOut, writeErr: io.writeErr }).exitOverride();
  }
  return program;
}

/** Parses the user's arguments and runs the chosen command; resolves to the exit code. */
export async function runProgram(argv: string[], actions: KexecActions, io: ProgramIO): Promise<number> {
  const routed = routeArgv(argv);
  let code = 0;
  const recorded: KexecActions = {
    exec: async (o) => (code = await actions.exec(o)),
    attach: async (o) => (code = await actions.attach(o)),
    portForward: async (o) => (code = await actions.portForward(o)),
    cp: async (o) => (code = await actions.cp(o)),
  };
  const program = buildProgram(routed, recorded, io);
  try {
    await program.parseAsync(routed, { from: 'user' });
  } catch (err) {
    // help exits 0, usage errors 1; commander has already printed its own message.
    if (err instanceof CommanderError) return err.exitCode;
    throw err;
  }
  return code;
}
