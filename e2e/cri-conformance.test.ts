/**
 * The CRI conformance checks of e2e/support/cri-validate.ts against each runtime the lab can use:
 * the cri-shim as the lab starts it (dist/cri-shim/main.js, its own process), and a real
 * containerd as `--runtime containerd` starts it (lab/containerd.ts: Debian's containerd, runc,
 * CNI bridge, the lab's images imported). Both streaming servers over plain http here.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startContainerd } from '../lab/containerd.js';
import type { LabRuntime } from '../lab/plan.js';
import { startService } from '../lab/supervisor.js';
import { connectImageService, connectRuntime } from '../shared/cri/client.js';
import { fromPackageRoot } from '../shared/package-root.js';
import { validateRuntime, type CriTarget } from './support/cri-validate.js';
import { E2E_RUNTIMES } from './support/runtimes.js';

async function startRuntime(
  runtime: LabRuntime,
  dir: string,
): Promise<{ endpoint: string; stop(): Promise<unknown> }> {
  const log = process.env.CRI_LOG ? (l: string) => process.stderr.write(`${l}\n`) : () => {};
  if (runtime === 'containerd') {
    const c = await startContainerd({
      dir: path.join(dir, 'containerd'),
      imagesDir: fromPackageRoot('cri-shim', 'images'),
      log,
    });
    return { endpoint: c.endpoint, stop: () => c.stop() };
  }
  const shim = startService({
    name: 'cri-shim',
    script: fromPackageRoot('dist', 'cri-shim', 'main.js'),
    args: [
      '--listen',
      `unix://${path.join(dir, 'cri.sock')}`,
      '--root',
      path.join(dir, 'root'),
      '--streaming-port',
      '0',
    ],
    log,
  });
  const ready = await shim.ready.catch(async (err: unknown) => {
    await shim.stop();
    throw err;
  });
  return { endpoint: String(ready.endpoint), stop: () => shim.stop() };
}

describe.each(E2E_RUNTIMES)('CRI conformance: %s', (runtime) => {
  let dir = '';
  let stopRuntime: (() => Promise<unknown>) | undefined;
  let target: CriTarget;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `cri-${runtime}-`));
    const started = await startRuntime(runtime, dir);
    stopRuntime = started.stop;
    target = {
      name: runtime,
      rt: connectRuntime(started.endpoint),
      images: connectImageService(started.endpoint),
      logRoot: path.join(dir, 'pod-logs'),
    };
  }, 60_000);
  validateRuntime(() => target);

  // jest-circus runs afterAll hooks in the order they are declared: this one after the checks'
  // own (which removes their sandboxes).
  afterAll(async () => {
    target?.rt.close();
    target?.images.close();
    await stopRuntime?.();
    fs.rmSync(dir, { recursive: true, force: true });
  }, 60_000);
});
