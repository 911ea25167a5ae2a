/**
 * `kexec port-forward POD [LOCAL:]REMOTE...`: the command's flags, Complete and Validate.
 *
 * Mirrors kubectl `pkg/cmd/portforward/portforward.go` (NewCmdPortForward, PortForwardOptions
 * Complete: the pod then one or more port specs; `--address`). Run is `../port-forward.ts`.
 */
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { parseAddresses, parsePorts, type ForwardedPort, type ListenAddress } from '../forwarded-ports.js';
import type { StreamProtocol } from '../remotecommand-executor.js';
import {
  addConnectionFlags,
  addProtocolFlag,
  connectionFlags,
  podNameFrom,
  protocolFlag,
  type ConnectionFlags,
} from './flags.js';

export interface PortForwardOptions extends ConnectionFlags {
  pod: string;
  ports: ForwardedPort[];
  addresses: ListenAddress[];
  protocol?: StreamProtocol;
}

type PortForwardFlags = ConnectionFlags & { address?: string[]; protocol?: unknown };

export function completePortForward(
  operands: string[],
  flags: PortForwardFlags,
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

function addressList(value: string, prev: string[] | undefined): string[] {
  return [
    ...(prev ?? []),
    ...value
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean),
  ];
}

export function newCmdPortForward(run: (o: PortForwardOptions) => Promise<void>): Command {
  const cmd = addConnectionFlags(
    new Command('port-forward')
      .description('Forward one or more local ports to a pod')
      .usage('[options] POD [LOCAL_PORT:]REMOTE_PORT [...[LOCAL_PORT_N:]REMOTE_PORT_N]')
      .argument('[pod]', 'the pod (NAME or pod/NAME)')
      .argument('[ports...]', 'LOCAL:REMOTE, REMOTE (same local port) or :REMOTE (any free local port)'),
  ).option(
    '--address <addresses>',
    'addresses to listen on (comma-separated, repeatable); only IP addresses or localhost',
    addressList,
  );
  return addProtocolFlag(cmd, 'KUBECTL_PORT_FORWARD_WEBSOCKETS')
    .addHelpText(
      'after',
      `
As kubectl (1.28 and later): a connection the pod refuses is reported, and port-forward then
ends with "lost connection to pod" (exit 1).

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
    .action(async (pod: string | undefined, ports: string[], flags: PortForwardFlags) => {
      const operands = pod === undefined ? [] : [pod, ...ports];
      await run(completePortForward(operands, flags));
    });
}
