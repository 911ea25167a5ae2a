/**
 * `kexec` (bin/kexec.js imports this module): runs with the process's arguments and streams and
 * exits with the remote command's exit code. The stream clients are loaded when a command needs
 * them (remotecommand-executor.ts), so `--help` and usage errors stay quick.
 */
import { kexec } from './cli.js';

const code = await kexec(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
// stdin (with -i) or an idle keep-alive socket could keep the loop alive: exit once output is flushed.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
