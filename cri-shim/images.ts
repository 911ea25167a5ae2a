/**
 * Image store: an "image" is a template directory `<images>/<name>/` holding `image.json`
 * (env, default command, working dir) and a `root/` folder copied into each new container's
 * writable /root (optionally `tmp/` and `var/` too).
 *
 * Plays the part of containerd's image store for the CRI plugin, without layers or registries:
 * references are normalised the way users type them (`busybox`, `busybox:latest`,
 * `docker.io/library/busybox:1.36`, `busybox@sha256:…` all mean template `busybox`), and an
 * image's ID (`sha256:` of its name and image.json, what ImageStatus and PullImage answer) names
 * it too. Every template is present from the start (a preloaded node); RemoveImage hides one
 * until it is pulled again, so the ImageService behaves as a runtime's (image-service.ts).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CriError } from './errors.js';

export interface ImageConfig {
  /** Template name (directory under the images root). */
  name: string;
  /** `sha256:…` of the name and image.json: the image ID. */
  id: string;
  /** `docker.io/library/<name>:latest`, as a runtime lists its tag. */
  repoTag: string;
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
  /** Templates RemoveImage took away (until PullImage brings them back). */
  private readonly removed = new Set<string>();

  constructor(readonly root: string) {}

  /** The image for a reference or an image ID; NOT_FOUND when there is no such image. */
  resolve(ref: string): ImageConfig {
    const byId = /^(?:sha256:)?([a-f0-9]{64})$/.exec(ref.trim());
    if (byId) {
      const found = this.images().find((img) => img.id === `sha256:${byId[1]}`);
      if (!found) throw CriError.notFound(`image ${JSON.stringify(ref)} not found`);
      return found;
    }
    const image = this.load(imageName(ref), ref);
    if (this.removed.has(image.name))
      throw CriError.notFound(`image ${JSON.stringify(ref)} not found (removed)`);
    return image;
  }

  /** The image, or undefined when there is none (any reference, valid or not). */
  find(ref: string): ImageConfig | undefined {
    try {
      return this.resolve(ref);
    } catch {
      return undefined;
    }
  }

  /** "Pulls" the image: a template of that name is there (again); NOT_FOUND otherwise. */
  pull(ref: string): ImageConfig {
    const image = this.load(imageName(ref), ref);
    this.removed.delete(image.name);
    return image;
  }

  /** Removes the image (hides its template); one that is not there is no error. */
  remove(ref: string): void {
    const image = this.find(ref);
    if (image) this.removed.add(image.name);
  }

  /** The images present (templates not removed). */
  images(): ImageConfig[] {
    return this.list()
      .filter((n) => !this.removed.has(n))
      .map((n) => this.load(n, n));
  }

  /** Total size of the template's files, in bytes. */
  size(image: ImageConfig): number {
    let total = 0;
    const walk = (dir: string): void => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.isFile()) total += fs.statSync(p).size;
      }
    };
    walk(image.dir);
    return total;
  }

  private load(name: string, ref: string): ImageConfig {
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
      id: `sha256:${createHash('sha256').update(`${name}\n`).update(fs.readFileSync(file)).digest('hex')}`,
      repoTag: `docker.io/library/${name}:latest`,
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
