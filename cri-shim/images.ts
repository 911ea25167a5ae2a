/**
 * Image store: an "image" is a template directory `<images>/<name>/` holding `image.json`
 * (env, default command, working dir) and a `root/` folder copied into each new container's
 * writable /root (optionally `tmp/` and `var/` too).
 *
 * Plays the part of containerd's image service for the CRI plugin, without layers or pulls:
 * references are normalised the way users type them (`busybox`, `busybox:latest`,
 * `docker.io/library/busybox:1.36`, `busybox@sha256:…` all mean template `busybox`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { CriError } from './errors.js';

export interface ImageConfig {
  /** Template name (directory under the images root). */
  name: string;
  /** Directory holding `image.json` and `root/`. */
  dir: string;
  env: Record<string, string>;
  command: string[];
  workingDir: string;
}

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** `docker.io/library/busybox:1.36` → `busybox`. */
export function imageName(ref: string): string {
  let name = ref.trim();
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  const slash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > slash) name = name.slice(0, colon);
  return name.slice(slash + 1);
}

export class ImageStore {
  constructor(readonly root: string) {}

  /** The image for a reference; NOT_FOUND when there is no such template. */
  resolve(ref: string): ImageConfig {
    const name = imageName(ref);
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(name))
      throw CriError.notFound(`image ${JSON.stringify(ref)} not found`);
    const dir = path.join(this.root, name);
    const file = path.join(dir, 'image.json');
    if (!fs.existsSync(file)) {
      throw CriError.notFound(`image ${JSON.stringify(ref)} not found (no template ${name} in ${this.root})`);
    }
    let raw: { env?: Record<string, string>; command?: string[]; workingDir?: string };
    try {
      raw = JSON.parse(fs.readFileSync(file, 'utf8')) as typeof raw;
    } catch (err) {
      throw CriError.internal(`image ${JSON.stringify(ref)}: bad image.json: ${(err as Error).message}`);
    }
    return {
      name,
      dir,
      env: { PATH: DEFAULT_PATH, HOME: '/root', ...(raw.env ?? {}) },
      command:
        Array.isArray(raw.command) && raw.command.length ? raw.command.map(String) : ['sleep', 'infinity'],
      workingDir: raw.workingDir || '/root',
    };
  }

  /** Copies the template's root/ (and tmp/, var/ when present) into a container's directories. */
  seed(image: ImageConfig, dirs: { root: string; tmp: string; var: string }): void {
    for (const [sub, dest] of [
      ['root', dirs.root],
      ['tmp', dirs.tmp],
      ['var', dirs.var],
    ] as const) {
      fs.mkdirSync(dest, { recursive: true });
      const src = path.join(image.dir, sub);
      if (fs.existsSync(src)) fs.cpSync(src, dest, { recursive: true, preserveTimestamps: true });
    }
  }

  list(): string[] {
    try {
      return fs
        .readdirSync(this.root, { withFileTypes: true })
        .filter((d) => d.isDirectory() && fs.existsSync(path.join(this.root, d.name, 'image.json')))
        .map((d) => d.name);
    } catch {
      return [];
    }
  }
}
