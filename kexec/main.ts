/**
 * `kexec` (bin/kexec.js imports this module): runs with the process's arguments and streams and
 * exits with the remote command's exit code.
 */
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { kexec } from './cli.js';

const code = await kexec(process.argv.slice(2), {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  runChannelClient,
});
// stdin (with -i) or an idle keep-alive socket could keep the loop alive: exit once output is flushed.
process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
