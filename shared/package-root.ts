/**
 * Finds the kexec-lab package root (the directory holding our package.json) from any module, so
 * files the TypeScript build does not emit (`shared/cri/cri.proto`, `cri-shim/images/`) are read
 * from the source tree both under jest (running `shared/*.ts`) and from `dist/shared/*.js`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** Walks up from `start` (default: this module's directory) to the first directory with a package.json. */
export function packageRoot(start?: string): string {
  if (!start && cached) return cached;
  let dir = start ?? path.dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 64; i++) {
    if (fs.existsSync(path.join(dir, 'package.json'))) {
      if (!start) cached = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`no package.json above ${start ?? fileURLToPath(import.meta.url)}`);
}

/** A path inside the package root, e.g. `fromPackageRoot('shared', 'cri', 'cri.proto')`. */
export function fromPackageRoot(...segments: string[]): string {
  return path.join(packageRoot(), ...segments);
}
