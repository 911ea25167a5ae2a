/**
 * The lab's images as OCI image archives, for a real container runtime (`--runtime containerd`):
 * each template of `cri-shim/images/<name>/` (the same `image.json` and `root/`, `tmp/`, `var/`
 * the cri-shim seeds its containers from) becomes one single-layer image whose file system is
 * Debian's static busybox (`/bin/busybox` from busybox-static, every applet linked at its usual
 * place), a minimal `/etc/passwd` and `/etc/group`, the template's folders, and the host programs
 * the template names in `hostPrograms` (copied with the shared libraries `ldd` lists). The image
 * config carries the template's env, command and working dir.
 *
 * The archive is an OCI image layout (image-spec `image-layout.md`: `oci-layout`, `index.json`,
 * `blobs/sha256/…`) in one tar, which `ctr -n k8s.io images import` takes; the index entry's
 * `io.containerd.image.name` annotation names the image (containerd `images/archive/importer.go`).
 * The layer is an uncompressed tar (its digest is its diff_id). Differences from a registry image:
 * no compression, one layer, no history beyond one entry; built in the lab's directory, never
 * pushed or pulled.
 *
 * The cri-shim binds the host's /usr read-only into its containers instead; a containerd
 * container sees only what the image holds, hence busybox.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tar from 'tar';

/** Where Debian's busybox-static puts its binary. */
export const BUSYBOX = '/bin/busybox';

export interface ImageTemplate {
  env?: Record<string, string>;
  command?: string[];
  workingDir?: string;
  /** Host programs to copy into the image with their shared libraries (absolute paths). */
  hostPrograms?: string[];
}

export interface OciImage {
  /** Full reference, e.g. `docker.io/library/busybox:latest`. */
  ref: string;
  /** The archive file. */
  file: string;
  /** `sha256:…` of the image config: the image ID containerd reports. */
  configDigest: string;
}

/** `busybox` → `docker.io/library/busybox:latest`, as containerd normalises a pod's image. */
export function normalizeRef(name: string): string {
  let ref = name;
  const firstSlash = ref.indexOf('/');
  const first = firstSlash < 0 ? '' : ref.slice(0, firstSlash);
  const hasRegistry =
    firstSlash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  if (!hasRegistry) ref = `docker.io/${firstSlash < 0 ? `library/${ref}` : ref}`;
  const lastSlash = ref.lastIndexOf('/');
  if (!ref.includes('@') && ref.lastIndexOf(':') < lastSlash) ref = `${ref}:latest`;
  return ref;
}

function readTemplate(dir: string): ImageTemplate {
  return JSON.parse(fs.readFileSync(path.join(dir, 'image.json'), 'utf8')) as ImageTemplate;
}

/** The shared libraries a dynamically linked program loads (ldd's paths); none for a static one. */
function sharedLibraries(program: string): string[] {
  let out: string;
  try {
    out = execFileSync('ldd', [program], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return []; // "not a dynamic executable"
  }
  return [...out.matchAll(/(\/\S+) \(0x[0-9a-f]+\)/g)].map((m) => m[1]!);
}

function copyHostFile(src: string, rootfs: string): void {
  const dest = path.join(rootfs, src);
  fs.mkdirSync(path.dirname(dest), { recursive: true });
  fs.copyFileSync(fs.realpathSync(src), dest);
  fs.chmodSync(dest, fs.statSync(src).mode & 0o7777);
}

/** Lays the image's file system out in `rootfs` (an empty directory). */
export function stageRootfs(templateDir: string, rootfs: string, busybox = BUSYBOX): void {
  const tmpl = readTemplate(templateDir);
  for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'root', 'var']) {
    fs.mkdirSync(path.join(rootfs, d), { recursive: true });
  }
  fs.mkdirSync(path.join(rootfs, 'tmp'));
  fs.chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  fs.copyFileSync(busybox, path.join(rootfs, 'bin/busybox'));
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755);
  const applets = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const applet of applets) {
    const at = path.join(rootfs, applet);
    if (fs.existsSync(at)) continue;
    fs.mkdirSync(path.dirname(at), { recursive: true });
    fs.symlinkSync('/bin/busybox', at);
  }
  fs.writeFileSync(
    path.join(rootfs, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  for (const program of tmpl.hostPrograms ?? []) {
    if (!path.isAbsolute(program))
      throw new Error(`hostPrograms: ${JSON.stringify(program)} is not absolute`);
    for (const file of [program, ...sharedLibraries(program)]) {
      // A host program replaces a busybox applet of the same path (GNU tar for evil-tar).
      fs.rmSync(path.join(rootfs, file), { force: true });
      copyHostFile(file, rootfs);
    }
  }
  for (const sub of ['root', 'tmp', 'var']) {
    const src = path.join(templateDir, sub);
    if (fs.existsSync(src))
      fs.cpSync(src, path.join(rootfs, sub), { recursive: true, preserveTimestamps: true });
  }
}

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Builds `out` (an OCI layout tar) for the template in `templateDir`, named `ref`. `work` is a
 * scratch directory of the caller's (emptied and removed).
 */
export async function buildOciImage(
  templateDir: string,
  ref: string,
  out: string,
  work: string,
): Promise<OciImage> {
  const tmpl = readTemplate(templateDir);
  fs.rmSync(work, { recursive: true, force: true });
  const rootfs = path.join(work, 'rootfs');
  const layout = path.join(work, 'layout');
  const blobs = path.join(layout, 'blobs', 'sha256');
  fs.mkdirSync(rootfs, { recursive: true });
  fs.mkdirSync(blobs, { recursive: true });
  try {
    stageRootfs(templateDir, rootfs);
    const layerFile = path.join(work, 'layer.tar');
    // Owned by root whoever builds it; fixed mtimes for a layer that does not change between runs.
    await tar.c(
      { cwd: rootfs, file: layerFile, portable: true, mtime: new Date(0) },
      fs.readdirSync(rootfs).sort(),
    );
    const put = (buf: Buffer): { digest: string; size: number } => {
      const digest = sha256(buf);
      fs.writeFileSync(path.join(blobs, digest.slice('sha256:'.length)), buf);
      return { digest, size: buf.length };
    };
    const layer = put(fs.readFileSync(layerFile));
    const config = put(
      Buffer.from(
        JSON.stringify({
          architecture: goArch(),
          os: 'linux',
          config: {
            Env: Object.entries(tmpl.env ?? {}).map(([k, v]) => `${k}=${v}`),
            Cmd: tmpl.command?.length ? tmpl.command : ['sleep', 'infinity'],
            WorkingDir: tmpl.workingDir || '/root',
          },
          rootfs: { type: 'layers', diff_ids: [layer.digest] },
          history: [{ created_by: `kexec-lab lab/oci-image.ts from ${path.basename(templateDir)}` }],
        }),
      ),
    );
    const manifest = put(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
        }),
      ),
    );
    fs.writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    fs.writeFileSync(
      path.join(layout, 'index.json'),
      JSON.stringify({
        schemaVersion: 2,
        manifests: [
          {
            mediaType: 'application/vnd.oci.image.manifest.v1+json',
            ...manifest,
            platform: { architecture: goArch(), os: 'linux' },
            annotations: { 'io.containerd.image.name': ref },
          },
        ],
      }),
    );
    await tar.c({ cwd: layout, file: out, portable: true }, ['oci-layout', 'index.json', 'blobs']);
    return { ref, file: out, configDigest: config.digest };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Node's arch as Go (and the OCI platform) spells it. */
function goArch(): string {
  return (
    ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386' } as Record<string, string>)[process.arch] ??
    process.arch
  );
}
