/**
 * `kexec cp SRC DEST`: the command's flags, Complete and Validate (the file specs themselves are
 * parsed by `../cp.ts`, which also runs the copy).
 *
 * Mirrors kubectl `pkg/cmd/cp/cp.go` (NewCmdCp; Complete: exactly two arguments).
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { StreamProtocol } from '../remotecommand-executor.js';
import {
  addConnectionFlags,
  addProtocolFlag,
  CONTAINER_HELP,
  connectionFlags,
  protocolFlag,
  type ConnectionFlags,
} from './flags.js';

/** `kexec cp SRC DEST`: each a local path or `[[namespace/]pod:]path` (../cp.ts parses them). */
export interface CpOptions extends ConnectionFlags {
  src: string;
  dest: string;
  container?: string;
  protocol?: StreamProtocol;
}

type CpFlags = ConnectionFlags & { container?: string; protocol?: unknown };

const COMMAND_PATH = 'kexec cp';

export function completeCp(operands: string[], flags: CpFlags): CpOptions {
  if (operands.length !== 2) throw new UsageError('source and destination are required', COMMAND_PATH);
  return {
    ...connectionFlags(flags, COMMAND_PATH),
    container: flags.container || undefined,
    protocol: protocolFlag(flags.protocol, COMMAND_PATH),
    src: operands[0],
    dest: operands[1],
  };
}

export function newCmdCp(run: (o: CpOptions) => Promise<void>): Command {
  const cmd = addConnectionFlags(
    new Command('cp')
      .description('Copy files and directories to and from containers (needs `tar` in the container)')
      .usage('[options] <file-spec-src> <file-spec-dest>')
      .argument('[specs...]', '[[namespace/]pod:]path or a local path: the source, then the destination'),
  ).option('-c, --container <name>', CONTAINER_HELP);
  return addProtocolFlag(cmd, 'KUBECTL_REMOTE_COMMAND_WEBSOCKETS')
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
    .action(async (operands: string[], flags: CpFlags) => run(completeCp(operands, flags)));
}
