/**
 * Heap probe for bench/soak-heap.ts, preloaded into each lab service by the bench with
 * `NODE_OPTIONS="--expose-gc --import …/heap-probe.js"` (no service code changes). Inert unless
 * KEXEC_HEAP_PROBE_DIR is set. On SIGUSR2 it reads `DIR/cmd` ("stats SEQ" or "snapshot SEQ"),
 * runs full GCs, and writes `DIR/PID-SEQ.json` with process.memoryUsage(),
 * v8.getHeapStatistics() and v8.getHeapSpaceStatistics() (plus `DIR/PID-SEQ.heapsnapshot` for "snapshot"). KEXEC_HEAP_PROBE_V8_FLAGS
 * sets V8 flags at start (v8.setFlagsFromString).
 */
import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';

const dir = process.env.KEXEC_HEAP_PROBE_DIR;
const gc = (globalThis as { gc?: () => void }).gc;

if (dir && gc) {
  // E.g. "--no-opt --no-maglev --no-sparkplug" (not allowed in NODE_OPTIONS): interpreter only,
  // so that growth of JIT-compiled code can be told apart from growth of data.
  for (const f of (process.env.KEXEC_HEAP_PROBE_V8_FLAGS ?? '').split(' ').filter(Boolean))
    v8.setFlagsFromString(f);
  process.on('SIGUSR2', () => {
    void (async () => {
      const [what, seq] = fs.readFileSync(path.join(dir, 'cmd'), 'utf8').trim().split(' ');
      // Several full collections with turns of the event loop between them, so that weak
      // callbacks and FinalizationRegistry cleanups run and what they free is collected too.
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((r) => setImmediate(r));
      }
      const base = path.join(dir, `${process.pid}-${seq}`);
      if (what === 'snapshot') v8.writeHeapSnapshot(`${base}.heapsnapshot`);
      const out = {
        memory: process.memoryUsage(),
        heap: v8.getHeapStatistics(),
        spaces: v8.getHeapSpaceStatistics(),
      };
      fs.writeFileSync(`${base}.tmp`, JSON.stringify(out));
      fs.renameSync(`${base}.tmp`, `${base}.json`);
    })();
  });
}
