#!/usr/bin/env node
// The `kexec` command (package.json "bin"): the bundled CLI in dist/kexec/bundle/, which
// `npm run build` makes from the compiled kexec/main.ts (scripts/bundle-kexec.mjs: one file per
// lazily loaded part starts quicker than the ~120 files it is made of).
import '../dist/kexec/bundle/main.js';
