/**
 * The real kubectl binaries the tests judge us by, installed into .tools/ by
 * scripts/install-clients.sh (`npm test` runs it first). A missing binary fails the test that
 * needs it with the command to run; it is never skipped.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../package-root.js';

export type KubectlVersion = 'v1.35' | 'v1.33' | 'v1.20';

export function kubectlPath(version: KubectlVersion): string {
  const bin = path.join(packageRoot(), '.tools', `kubectl-${version}`, 'kubectl');
  if (!fs.existsSync(bin)) {
    throw new Error(`${bin} is missing: run \`npm run clients\` (scripts/install-clients.sh) first`);
  }
  return bin;
}
