/**
 * Loaded with `--import` through NODE_OPTIONS (where `--cpu-prof` is not allowed) by
 * `npm run bench -- --cpu-prof DIR`: profiles the whole process with the inspector's Profiler
 * and writes `DIR/<script>.<pid>.cpuprofile` when it exits, as `node --cpu-prof` would.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import path from 'node:path';

const dir = process.env.KEXEC_BENCH_CPU_PROF_DIR;
if (dir) {
  const session = new inspector.Session();
  session.connect();
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 500 });
  session.post('Profiler.start');
  process.once('exit', () => {
    // The main thread's session answers synchronously, so this runs to the end inside 'exit'.
    session.post('Profiler.stop', (err, res) => {
      if (err) return;
      fs.mkdirSync(dir, { recursive: true });
      const name =
        path.basename(path.dirname(process.argv[1] ?? 'node')) +
        '-' +
        path.basename(process.argv[1] ?? 'node', '.js');
      fs.writeFileSync(path.join(dir, `${name}.${process.pid}.cpuprofile`), JSON.stringify(res.profile));
    });
  });
}
