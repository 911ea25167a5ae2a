/**
 * kexec's entry point as a function: parse, run, report. `main.ts` calls it with the real process
 * streams; tests call it with their own (and may inject the stream clients and a stop signal).
 */
import { runAttach } from './attach.js';
import { runCp } from './cp.js';
import { exitCodeOf, formatError } from './errors.js';
import { runExec } from './exec.js';
import { runProgram } from './cmd/kexec.js';
import { runPortForward } from './port-forward.js';
import type { KexecIO } from './stream-session.js';

/** Runs kexec with the user's arguments; resolves to the exit code (errors already printed). */
export async function kexec(argv: string[], io: KexecIO): Promise<number> {
  try {
    return await runProgram(
      argv,
      {
        exec: (o) => runExec(o, io),
        attach: (o) => runAttach(o, io),
        portForward: (o) => runPortForward(o, io),
        cp: (o) => runCp(o, io),
      },
      { writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) },
    );
  } catch (err) {
    io.stderr.write(`${formatError(err)}\n`);
    return exitCodeOf(err);
  }
}
