/**
 * kexec's entry point as a function: parse, run, report. `main.ts` calls it with the real process
 * streams; tests call it with their own (and may inject the stream clients and a stop signal).
 * Each command's Run is imported only when that command runs: `cp` alone needs `tar`, and a
 * `kexec demo -- true` should not load it (start-up, see bench/compare/findings.md).
 */
import { exitCodeOf, formatError } from './errors.js';
import { runProgram } from './cmd/kexec.js';
import type { KexecIO } from './stream-session.js';

/** Runs kexec with the user's arguments; resolves to the exit code (errors already printed). */
export async function kexec(argv: string[], io: KexecIO): Promise<number> {
  try {
    return await runProgram(
      argv,
      {
        exec: async (o) => (await import('./exec.js')).runExec(o, io),
        attach: async (o) => (await import('./attach.js')).runAttach(o, io),
        portForward: async (o) => (await import('./port-forward.js')).runPortForward(o, io),
        cp: async (o) => (await import('./cp.js')).runCp(o, io),
      },
      { writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) },
    );
  } catch (err) {
    io.stderr.write(`${formatError(err)}\n`);
    return exitCodeOf(err);
  }
}
