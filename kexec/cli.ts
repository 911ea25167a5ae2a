/**
 * kexec's entry point as a function: parse, run, report. `main.ts` calls it with the real process
 * streams; tests call it with their own.
 */
import type { Writable } from 'node:stream';
import { exitCodeOf, formatError } from './errors.js';
import { runExec, type ExecIO } from './exec.js';
import { runProgram } from './options.js';

/** Runs kexec with the user's arguments; resolves to the exit code (errors already printed). */
export async function kexec(argv: string[], io: ExecIO & { stderr: Writable }): Promise<number> {
  try {
    return await runProgram(
      argv,
      { exec: (o) => runExec(o, io) },
      { writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) },
    );
  } catch (err) {
    io.stderr.write(`${formatError(err)}\n`);
    return exitCodeOf(err);
  }
}
