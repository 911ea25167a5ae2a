/**
 * `kexec attach POD`: the command's flags, Complete and Validate.
 *
 * Mirrors kubectl `pkg/cmd/attach/attach.go` (NewCmdAttach; Validate: one pod as POD, TYPE/NAME or
 * TYPE NAME). Run is `../attach.ts`.
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { ExecOptions } from './exec.js';
import {
  addConnectionFlags,
  addProtocolFlag,
  addStreamFlags,
  streamOptionsFrom,
  type StreamFlags,
} from './flags.js';

export type AttachOptions = Omit<ExecOptions, 'command'>;

export function completeAttach(
  operands: string[],
  flags: StreamFlags,
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
  return streamOptionsFrom(pod, flags, commandPath);
}

export function newCmdAttach(run: (o: AttachOptions) => Promise<void>): Command {
  const cmd = addStreamFlags(
    addConnectionFlags(
      new Command('attach')
        .description('Attach to a process that is already running inside an existing container')
        .usage('[options] POD')
        .argument('[pod...]', 'the pod (NAME, pod/NAME or pod NAME)'),
    ),
  );
  return addProtocolFlag(cmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
    .addHelpText(
      'after',
      `
Without -i, attach only shows what the container's main process writes from now on (kubectl's
notice first); Ctrl-C detaches and leaves the process running.

Examples:
  # Get output from running pod demo, first container
  kexec attach demo

  # Switch to raw terminal mode; sends stdin to the main process of container demo of pod demo
  kexec attach demo -c demo -i -t`,
    )
    .action(async (operands: string[], flags: StreamFlags) => run(completeAttach(operands, flags)));
}
