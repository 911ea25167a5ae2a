/**
 * `kexec [exec] POD -- COMMAND [ARGS...]`: the command's flags, Complete and Validate.
 *
 * Mirrors kubectl `pkg/cmd/exec/exec.go` (NewCmdExec, ExecOptions.Complete: the pod is the first
 * argument before `--` and the command everything after it, `cmd.ArgsLenAtDash`; Validate: a pod
 * and a command are required). Run is `../exec.ts`.
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { StreamProtocol } from '../remotecommand-executor.js';
import {
  addConnectionFlags,
  addProtocolFlag,
  addStreamFlags,
  streamOptionsFrom,
  type ConnectionFlags,
  type StreamFlags,
} from './flags.js';

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

const OLD_FORM = 'exec [POD] [COMMAND] is not supported anymore. Use exec [POD] -- [COMMAND] instead';

/**
 * Complete + Validate. `operands` are all positional arguments (the pod and, after `--`, the
 * command); `argsLenAtDash` is how many of them came before `--` (-1: no `--`).
 */
export function completeExec(
  operands: string[],
  argsLenAtDash: number,
  flags: StreamFlags,
  commandPath = 'kexec exec',
): ExecOptions {
  let pod = '';
  if (operands.length > 0 && argsLenAtDash !== 0) pod = operands[0];
  let command: string[] = [];
  if (argsLenAtDash > -1) {
    if (argsLenAtDash > 1) throw new UsageError(OLD_FORM, commandPath);
    command = operands.slice(argsLenAtDash);
  } else if (operands.length > 1) {
    throw new UsageError(OLD_FORM, commandPath);
  }
  if (!pod) throw new UsageError('pod or type/name must be specified', commandPath);
  if (command.length === 0) {
    throw new UsageError('you must specify at least one command for the container', commandPath);
  }
  return { ...streamOptionsFrom(pod, flags, commandPath), command };
}

/**
 * The `exec` command. `afterDash` is how many of the user's arguments followed the first `--`
 * (-1: none), which commander does not report.
 */
export function newCmdExec(afterDash: number, run: (o: ExecOptions) => Promise<void>): Command {
  const cmd = addStreamFlags(
    addConnectionFlags(
      new Command('exec')
        .description('Execute a command in a container (the default command)')
        .usage('[options] POD -- COMMAND [args...]')
        .argument('[pod]', 'the pod (NAME or pod/NAME)')
        .argument('[command...]', 'the command and its arguments, after --'),
    ),
  );
  return addProtocolFlag(cmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Everything after -- is the remote command and its arguments, never kexec's own options.

Examples:
  # Run 'ls /root' in pod demo, first container
  kexec demo -- ls /root

  # Switch to raw terminal mode; sends stdin to 'sh' in container demo of pod demo
  kexec -it demo -c demo -- sh`,
    )
    .action(async (pod: string | undefined, rest: string[], flags: StreamFlags) => {
      const operands = pod === undefined ? [] : [pod, ...rest];
      const argsLenAtDash = afterDash < 0 ? -1 : Math.max(0, operands.length - afterDash);
      await run(completeExec(operands, argsLenAtDash, flags));
    });
}
