/**
 * The Status a remotecommand session ends with, on the error channel (or error stream for SPDY).
 *
 * Mirrors kubelet `pkg/kubelet/cri/streaming/remotecommand/websocket.go` / `httpstream.go`
 * (v4 writer) and client-go `tools/remotecommand/v4.go` (errorDecoderV4): success is
 * `{"metadata":{},"status":"Success"}`; a non-zero exit is reason NonZeroExitCode with one cause
 * of type ExitCode (serialised under `reason`) holding the code; anything else is InternalError.
 * Protocols before v4 send only failures, as plain text.
 */
import type { Status } from '../status.js';
import type { ChannelProtocol } from './protocol.js';

export function successStatus(): Status {
  return { metadata: {}, status: 'Success' };
}

/** `argv` names the command in the message, as the kubelet's CodeExitError does. */
export function nonZeroExitStatus(code: number, argv: readonly string[] = []): Status {
  const what = argv.length ? `command '${argv.join(' ')}'` : 'command';
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: ${what} exited with ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

export function internalErrorStatus(message: string): Status {
  return { metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 };
}

/**
 * The Status for a finished process. A process killed by a signal reports 128 + the signal number,
 * as a shell would.
 */
export function exitStatus(
  code: number | null,
  signal?: NodeJS.Signals | null,
  argv: readonly string[] = [],
): Status {
  if (code === 0) return successStatus();
  if (code !== null) return nonZeroExitStatus(code, argv);
  const n = signal ? signalNumber(signal) : undefined;
  return n !== undefined
    ? nonZeroExitStatus(128 + n, argv)
    : internalErrorStatus('process ended without an exit code');
}

function signalNumber(signal: NodeJS.Signals): number | undefined {
  const table: Partial<Record<NodeJS.Signals, number>> = {
    SIGHUP: 1,
    SIGINT: 2,
    SIGQUIT: 3,
    SIGKILL: 9,
    SIGPIPE: 13,
    SIGALRM: 14,
    SIGTERM: 15,
  };
  return table[signal];
}

/** The bytes to put on the error channel for `status`, or undefined when nothing is sent. */
export function encodeStatus(proto: Pick<ChannelProtocol, 'version'>, status: Status): Buffer | undefined {
  if (proto.version >= 4) return Buffer.from(JSON.stringify(status));
  if (status.status === 'Success') return undefined;
  return Buffer.from(status.message ?? 'error executing command');
}

/**
 * Reads the error channel's bytes back into a Status (client side). Empty means success; v4+ is
 * JSON; older protocols' text is a failure message.
 */
export function decodeStatus(proto: Pick<ChannelProtocol, 'version'>, data: Buffer): Status {
  if (data.length === 0) return successStatus();
  const text = data.toString('utf8');
  if (proto.version >= 4) {
    try {
      const parsed = JSON.parse(text) as Status;
      if (
        parsed &&
        typeof parsed === 'object' &&
        (parsed.status === 'Success' || parsed.status === 'Failure')
      ) {
        return parsed;
      }
    } catch {
      // fall through: an unparseable status is an error in its own right
    }
    return internalErrorStatus(`error stream protocol error: ${text}`);
  }
  return { metadata: {}, status: 'Failure', message: text };
}

/** The process exit code a Status stands for: 0, the ExitCode cause, or 1 for any other failure. */
export function exitCodeOf(status: Status): number {
  if (status.status === 'Success') return 0;
  if (status.reason === 'NonZeroExitCode') {
    const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
    const n = Number(cause?.message);
    if (Number.isInteger(n) && n > 0 && n < 256) return n;
  }
  return 1;
}
