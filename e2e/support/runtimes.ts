/**
 * The container runtimes the e2e suites run against: the cri-shim always, and a real containerd
 * (lab/containerd.ts) wherever it can start here. Where it cannot (not root, a package missing),
 * its runs are left out — loudly, once per test file, with the reason — rather than failing every
 * suite; on the project's machines and in CI it runs.
 *
 * Also the bits of a test that differ by runtime: a pod's own loopback (a containerd pod has its
 * own network namespace; a cri-shim pod shares the host's), and the pull policy of pods made from
 * the lab's images.
 */
import path from 'node:path';
import { containerdUnavailable } from '../../lab/containerd.js';
import { startLab, type Lab } from '../../lab/lab.js';
import type { LabRuntime } from '../../lab/plan.js';

const unavailable = containerdUnavailable();
if (unavailable) {
  process.stderr.write(
    `\n*** SKIPPING the containerd runs of this suite: containerd cannot start here (${unavailable}) ***\n\n`,
  );
}

/** `cri-shim`, then `containerd` when it can start here. */
export const E2E_RUNTIMES: readonly LabRuntime[] = unavailable ? ['cri-shim'] : ['cri-shim', 'containerd'];

/** Whether the host reaches a pod's ports on 127.0.0.1 (the cri-shim's pods share its network). */
export const sharesHostLoopback = (runtime: LabRuntime): boolean => runtime === 'cri-shim';

/**
 * The lab's images are on every node already and no registry is reachable: pods made from them
 * say so, or `busybox` (tag latest, pull policy Always by default) would be pulled — and fail — on
 * containerd, as on a real node without a registry.
 */
export const LOCAL_IMAGE_POLICY = 'IfNotPresent';

/**
 * A busybox pod on node-1 running `command`, as YAML for `kubectl apply -f -` (`extra` appended,
 * `labels` in its metadata when given).
 */
export const podYaml = (
  name: string,
  command: string[],
  extra = '',
  labels?: Record<string, string>,
) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}${labels ? `\n  labels: ${JSON.stringify(labels)}` : ''}
spec:
  nodeName: node-1
  containers:
  - name: main
    image: busybox
    imagePullPolicy: ${LOCAL_IMAGE_POLICY}
    command: ${JSON.stringify(command)}
${extra}`;

/**
 * `stty size` once the terminal has a size (at most 100 tries, 50 ms apart). containerd starts an
 * `-it` command before it applies the client's first terminal size (the cri-shim waits for it),
 * and busybox's `stty size` fails on a 0x0 terminal (printing an error, exiting 0); the size
 * must still arrive.
 */
export const STTY_SIZE_SOON =
  'for i in $(seq 1 100); do s=$(stty size 2>/dev/null); case "$s" in [1-9]*) echo "$s"; break;; esac; sleep 0.05; done';

/**
 * Inside a `describe` of one runtime: that runtime's lab — the file's own cri-shim lab (`shared`),
 * or a lab on `runtime` started in `dir()` for this describe and stopped after it.
 */
export function labOn(runtime: LabRuntime, shared: () => Lab, dir: () => string): () => Lab {
  let own: Lab | undefined;
  beforeAll(async () => {
    if (runtime === 'cri-shim') return;
    own = await startLab({ dir: path.join(dir(), `lab-${runtime}`), port: 0, runtime, log: () => {} });
  }, 120_000);
  afterAll(async () => {
    await own?.stop();
  }, 60_000);
  return () => own ?? shared();
}
