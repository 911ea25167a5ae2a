// `npm run build:kexec` (part of `npm run build`, after tsc): bundles the compiled kexec CLI
// (dist/kexec/main.js and what it imports, our modules and the packages) into
// dist/kexec/bundle/, which bin/kexec.js runs. Measured (bench/compare/findings.md, start-up):
// resolving and reading ~120 separate files (yaml alone is 72) cost `kexec demo -- true` more CPU
// than compiling them; one file per lazily loaded part (code splitting: the exec stream client,
// port-forward, cp's tar) keeps `--help` from compiling what it does not run.
//
// Left outside the bundle, loaded from node_modules when needed: @kubernetes/client-node (only for
// kubeconfig users with credential plugins), bufferutil / utf-8-validate (ws's optional native
// addons) and pino (shared/logging requires it on the first service logger; kexec has none).
import fs from 'node:fs';
import { build } from 'esbuild';

const outdir = 'dist/kexec/bundle';
// Chunk names carry a content hash: clear the previous build's.
fs.rmSync(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['dist/kexec/main.js'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: ['@kubernetes/client-node', 'bufferutil', 'utf-8-validate', 'pino'],
  // The CommonJS packages inside (ws, yaml, commander) require Node's built-in modules.
  banner: {
    js: "import { createRequire as __kexecRequire } from 'node:module';\nconst require = __kexecRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
