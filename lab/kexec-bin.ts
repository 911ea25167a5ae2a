/**
 * `DIR/bin/kexec`: a `kexec` that starts at once, for the lab's users. A small shell script that
 * runs this checkout's compiled CLI (`bin/kexec.js`, from `npm run build`) with `node`, and uses
 * the lab's kubeconfig when `KUBECONFIG` is not set. The lab prints how to put it on PATH.
 *
 * Why not `npx kexec`: the first `npx kexec` copies and rebuilds the project into npm's npx cache
 * (about ten seconds), and an interrupted one leaves that cache broken until deleted by hand.
 * `npm link` (a global `kexec` pointing at this checkout) is the other way; it needs no lab.
 */
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';

/** Single-quotes a path for sh. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Writes `DIR/bin/kexec` (mode 0755) and returns its directory. */
export function writeKexecBin(labDir: string, kubeconfigPath: string, root = packageRoot()): string {
  const binDir = path.join(path.resolve(labDir), 'bin');
  fs.mkdirSync(binDir, { recursive: true });
  const script = [
    '#!/bin/sh',
    '# Written by the kexec lab (npm start): kexec from this checkout, with the lab’s kubeconfig',
    '# unless KUBECONFIG is set.',
    `: "\${KUBECONFIG:=${path.resolve(kubeconfigPath).replace(/["$`\\]/g, '\\$&')}}"`,
    'export KUBECONFIG',
    `exec node ${shQuote(path.join(root, 'bin', 'kexec.js'))} "$@"`,
    '',
  ].join('\n');
  const file = path.join(binDir, 'kexec');
  fs.writeFileSync(file, script, { mode: 0o755 });
  fs.chmodSync(file, 0o755);
  return binDir;
}

/** The line that puts `DIR/bin` on PATH (relative to the cwd when inside it, as the Try: block). */
export function pathHint(binDir: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, binDir);
  const shown = rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? `$PWD/${rel}` : binDir;
  return `export PATH="${shown}:$PATH"   # then plain \`kexec\` (or once: npm link)`;
}
