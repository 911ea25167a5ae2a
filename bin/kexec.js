#!/usr/bin/env node
// The `kexec` command (package.json "bin"): the compiled CLI in dist/ (`npm run build` first).
import '../dist/kexec/main.js';
