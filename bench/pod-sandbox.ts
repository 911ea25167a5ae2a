/**
 * What a pod sandbox costs: the time to create a pod (CRI RunPodSandbox + CreateContainer +
 * StartContainer, as the kubelet calls them) and to run one exec in it (CRI ExecSync `true`),
 * against a real cri-shim over its unix socket; prints the median and the spread of N runs.
 *
 * Run: npm run build && node dist/bench/pod-sandbox.js [--runs 20] [--isolation bwrap]
 * Each pod is removed after its exec runs; every call has a deadline (the CRI client's).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { connectRuntime } from '../shared/cri/client.js';
import { startCriShim } from '../cri-shim/server.js';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '20' }, isolation: { type: 'string', default: 'bwrap' } },
});
const runs = Number(values.runs);
const isolation = values.isolation as 'bwrap' | 'none';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (t0: bigint): number => Number(process.hrtime.bigint() - t0) / 1e6;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-pod-'));
const shim = await startCriShim({
  listen: `unix://${tmp}/cri.sock`,
  root: path.join(tmp, 'root'),
  isolation,
  log: () => {},
});
const rt = connectRuntime(shim.endpoint);
await rt.waitForReady(5000);
const create: number[] = [];
const exec: number[] = [];
try {
  for (let i = 0; i < runs; i++) {
    let t0 = process.hrtime.bigint();
    const { pod_sandbox_id } = await rt.runPodSandbox({
      config: { metadata: { name: `bench-${i}`, namespace: 'default', uid: `uid-${i}` } },
    });
    const { container_id } = await rt.createContainer({
      pod_sandbox_id,
      config: { metadata: { name: 'main' }, image: { image: 'busybox' } },
    });
    await rt.startContainer({ container_id });
    create.push(ms(t0));
    t0 = process.hrtime.bigint();
    const r = await rt.execSync({ container_id, cmd: ['true'], timeout: 10 });
    exec.push(ms(t0));
    if (r.exit_code !== 0) throw new Error(`exec exited ${r.exit_code}: ${r.stderr.toString()}`);
    await rt.stopPodSandbox({ pod_sandbox_id });
    await rt.removePodSandbox({ pod_sandbox_id });
  }
} finally {
  rt.close();
  await shim.close();
  fs.rmSync(tmp, { recursive: true, force: true });
}
const line = (name: string, xs: number[]) =>
  `${name}: median ${median(xs).toFixed(1)} ms (min ${Math.min(...xs).toFixed(1)}, max ${Math.max(...xs).toFixed(1)}, n=${xs.length})`;
console.log(`isolation ${shim.isolation}`);
console.log(line('pod creation (RunPodSandbox + CreateContainer + StartContainer)', create));
console.log(line('one exec (ExecSync true)', exec));
