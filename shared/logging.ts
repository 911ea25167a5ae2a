/**
 * What every process here logs through, and how an error becomes one line of it.
 *
 * A Logger takes one finished line (the process prefixes and writes it, to stderr in the real
 * services); it mirrors nothing upstream (klog there) and stays a plain function so tests can
 * collect lines in an array.
 */

/** One log line (to stderr in the real process). */
export type Logger = (line: string) => void;

/** The message of an Error, or the thrown value as text. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
