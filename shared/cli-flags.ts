/**
 * Command-line flag parsers the services and the lab share, as commander argument parsers: a bad
 * value throws InvalidArgumentError, which commander prints as "option '…' argument '…' is
 * invalid. …" and exits 1, as a Go binary's pflag would refuse it.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { LOGGING_FORMATS, type LoggingFormat } from './logging.js';

/** A TCP port flag (`--port`, `--streaming-port`, …): 0-65535, where 0 picks a free one. */
export function portArgument(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) {
    throw new InvalidArgumentError('expected a port number 0-65535 (0 picks a free one)');
  }
  return n;
}

/** `-v`/`--v` as pflag takes it: `-v=4`, `--v=4`, `-v 4` (`-v=4` reaches commander as `=4`). */
export function verbosityArgument(value: string): number {
  const n = Number(value.replace(/^=/, ''));
  if (!Number.isInteger(n) || n < 0 || n > 10) throw new InvalidArgumentError('expected a level 0-10');
  return n;
}

/** `--logging-format text|json`, as component-base's logs options. */
export function loggingFormatArgument(value: string): LoggingFormat {
  if (!(LOGGING_FORMATS as readonly string[]).includes(value)) {
    throw new InvalidArgumentError(`expected one of ${LOGGING_FORMATS.join(', ')}`);
  }
  return value as LoggingFormat;
}

export interface LoggingFlags {
  v: number;
  loggingFormat: LoggingFormat;
}

/** Adds `-v, --v <level>` and `--logging-format <format>` to a service's command. */
export function addLoggingFlags(cmd: Command): Command {
  return cmd
    .option('-v, --v <level>', 'log verbosity: lines at V(n) show when n <= level', verbosityArgument, 0)
    .option('--logging-format <format>', 'log format: text (klog) or json', loggingFormatArgument, 'text');
}
