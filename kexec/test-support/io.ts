/**
 * Test helpers for kexec: in-memory output sinks that can be awaited for a pattern, a kubeconfig
 * writer, and a kexec() runner with its own streams.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { kexec } from '../cli.js';
import type { KexecIO } from '../stream-session.js';

export class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
    this.emit('text');
  }

  /** Resolves with the match once the output matches `re` (checked on every write). */
  waitFor(re: RegExp): Promise<RegExpMatchArray> {
    return new Promise((resolve) => {
      const check = () => {
        const m = this.data.match(re);
        if (!m) return;
        this.off('text', check);
        resolve(m);
      };
      this.on('text', check);
      check();
    });
  }
}

export function writeKubeconfig(
  dir: string,
  name: string,
  server: string,
  token: string,
  namespace = 'default',
): string {
  const file = path.join(dir, name);
  fs.writeFileSync(
    file,
    `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: ${server}
${server.startsWith('http:') ? '    insecure-skip-tls-verify: true # plain http on purpose: send the token anyway\n' : ''}contexts:
- name: lab
  context:
    cluster: lab
    user: admin
    namespace: ${namespace}
current-context: lab
users:
- name: admin
  user:
    token: ${token}
`,
  );
  return file;
}

export interface RunOptions extends Partial<KexecIO> {
  input?: string;
}

/** Runs kexec with fresh sinks; `input` ends stdin with that text. */
export function start(argv: string[], o: RunOptions = {}) {
  const stdout = new Sink();
  const stderr = new Sink();
  const stdin = new PassThrough();
  if (o.input !== undefined) stdin.end(o.input);
  const done = kexec(argv, { env: {}, ...o, stdin, stdout, stderr });
  return { stdout, stderr, stdin, done };
}

export async function run(argv: string[], o: RunOptions = {}) {
  const r = start(argv, o);
  const code = await r.done;
  return { code, stdout: r.stdout.data, stderr: r.stderr.data };
}
