/**
 * Command-line flag parsers the services and the lab share, as commander argument parsers: a bad
 * value throws InvalidArgumentError, which commander prints as "option '…' argument '…' is
 * invalid. …" and exits 1, as a Go binary's pflag would refuse it.
 */
import { InvalidArgumentError } from 'commander';

/** A TCP port flag (`--port`, `--streaming-port`, …): 0-65535, where 0 picks a free one. */
export function portArgument(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError('expected a port number 0-65535 (0 picks a free one)');
  }
  return n;
}
