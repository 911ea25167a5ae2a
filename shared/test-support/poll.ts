/**
 * The one poll-until for tests: for state another loop changes (a process dying, a watch event, a
 * log line) with no event the test can wait on. Bounded in time, never a bare sleep.
 *
 * - `waitFor` resolves with the first value `check` returns that is not `undefined`/`false`
 *   (a throw counts as "not yet"), and fails naming `what` after `timeoutMs`.
 * - `holdsWithin` answers whether `check` came to hold within `timeoutMs`, for tests that assert
 *   either outcome (a thing that must *not* happen, or a figure reported either way).
 */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function holdsWithin(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  everyMs = 50,
): Promise<boolean> {
  try {
    await waitFor('', check, timeoutMs, everyMs);
    return true;
  } catch {
    return false;
  }
}
