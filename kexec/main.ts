/**
 * `kexec`: runs with the process's arguments and streams and exits with the remote command's exit
 * code. bin/kexec.js runs this module bundled (scripts/bundle-kexec.mjs, `npm run build`). Each
 * command and the stream clients are loaded when needed (cli.ts, remotecommand-executor.ts), so
 * `--help` and usage errors stay quick.
 */
import { kexec } from './cli.js';

const code = await kexec(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
});
// stdin (with -i) or an idle keep-alive socket could keep the loop alive: exit once output is flushed.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
