// A stand-in service for supervisor tests. Behaviour from argv[2]:
//   ready        print a log line on stderr and a READY line; exit 0 on SIGTERM
//   stubborn     READY, then ignore SIGTERM (needs SIGKILL); spawns a grandchild in its group
//   early-exit   exit 3 before READY
//   crash-later  READY, then exit 2 after 200 ms
import { spawn } from 'node:child_process';
import { clearInterval, setInterval, setTimeout } from 'node:timers';

const mode = process.argv[2];
process.stderr.write(`starting in mode ${mode}\n`);
if (mode === 'early-exit') process.exit(3);
const keepAlive = setInterval(() => {}, 1000);
if (mode === 'stubborn') {
  process.on('SIGTERM', () => process.stderr.write('ignoring SIGTERM\n'));
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
  process.stdout.write(`READY ${JSON.stringify({ service: 'fake', grandchild: child.pid })}\n`);
} else {
  process.on('SIGTERM', () => {
    clearInterval(keepAlive);
    process.stderr.write('bye\n');
    process.exit(0);
  });
  process.stdout.write('not the ready line\n');
  process.stdout.write(`READY ${JSON.stringify({ service: 'fake', url: 'http://127.0.0.1:1' })}\n`);
  if (mode === 'crash-later') setTimeout(() => process.exit(2), 200);
}
