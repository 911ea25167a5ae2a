import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { fromPackageRoot } from '../shared/package-root.js';
import { BUSYBOX, buildOciImage, normalizeRef, stageRootfs } from './oci-image.js';
import { planLab } from './plan.js';

const images = fromPackageRoot('cri-shim', 'images');
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'oci-'));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Every entry of a tar file: name → contents (files) or type. */
async function entries(file: string): Promise<Map<string, Buffer | string>> {
  const out = new Map<string, Buffer | string>();
  const parser = new Parser({
    onReadEntry: (e: ReadEntry) => {
      const chunks: Buffer[] = [];
      e.on('data', (c: Buffer) => chunks.push(c));
      e.on('end', () =>
        out.set(e.path.replace(/^\.\//, ''), e.type === 'File' ? Buffer.concat(chunks) : e.type),
      );
    },
  });
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file).pipe(parser).on('finish', resolve).on('error', reject);
  });
  return out;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

describe('oci-image', () => {
  it('normalises references as containerd does', () => {
    expect(normalizeRef('busybox')).toBe('docker.io/library/busybox:latest');
    expect(normalizeRef('busybox:1.36')).toBe('docker.io/library/busybox:1.36');
    expect(normalizeRef('me/app')).toBe('docker.io/me/app:latest');
    expect(normalizeRef('kexec.local/pause:lab')).toBe('kexec.local/pause:lab');
    expect(normalizeRef('localhost:5000/x')).toBe('localhost:5000/x:latest');
  });

  it("stages busybox with its applets, the template's files, and host programs with their libraries", () => {
    const root = tmp();
    stageRootfs(path.join(images, 'evil-tar'), root);
    expect(fs.readFileSync(path.join(root, 'bin/busybox')).equals(fs.readFileSync(BUSYBOX))).toBe(true);
    expect(fs.readlinkSync(path.join(root, 'bin/sh'))).toBe('/bin/busybox');
    expect(fs.statSync(path.join(root, 'tmp')).mode & 0o7777).toBe(0o1777);
    // The template's root/ is the image's /root; its bin/tar is the malicious script.
    expect(fs.readFileSync(path.join(root, 'root/bin/tar'), 'utf8')).toContain('evil-tar');
    // GNU tar at /usr/bin/tar (busybox's applet is /bin/tar), with the libraries it loads.
    expect(fs.lstatSync(path.join(root, 'usr/bin/tar')).isSymbolicLink()).toBe(false);
    const libs = execFileSync('ldd', ['/usr/bin/tar'], { encoding: 'utf8' });
    for (const lib of [...libs.matchAll(/(\/\S+) \(0x/g)].map((m) => m[1]!)) {
      expect(fs.existsSync(path.join(root, lib))).toBe(true);
    }
  });

  it('builds an OCI layout whose index names the image and whose digests hold', async () => {
    const d = tmp();
    const img = await buildOciImage(
      path.join(images, 'busybox'),
      'docker.io/library/busybox:latest',
      path.join(d, 'busybox.tar'),
      path.join(d, 'work'),
    );
    expect(fs.existsSync(path.join(d, 'work'))).toBe(false);
    const files = await entries(img.file);
    const blob = (digest: string) => files.get(`blobs/sha256/${digest.slice(7)}`) as Buffer;
    const index = JSON.parse((files.get('index.json') as Buffer).toString()) as {
      manifests: { digest: string; annotations: Record<string, string> }[];
    };
    expect(index.manifests[0]!.annotations['io.containerd.image.name']).toBe(
      'docker.io/library/busybox:latest',
    );
    const manifestBytes = blob(index.manifests[0]!.digest);
    expect(sha(manifestBytes)).toBe(index.manifests[0]!.digest);
    const manifest = JSON.parse(manifestBytes.toString()) as {
      config: { digest: string };
      layers: { digest: string; size: number }[];
    };
    expect(manifest.config.digest).toBe(img.configDigest);
    const config = JSON.parse(blob(img.configDigest).toString()) as {
      config: { Cmd: string[]; WorkingDir: string; Env: string[] };
      rootfs: { diff_ids: string[] };
    };
    expect(config.config).toMatchObject({ Cmd: ['sleep', 'infinity'], WorkingDir: '/root' });
    expect(config.config.Env).toContain('HOME=/root');
    const layer = blob(manifest.layers[0]!.digest);
    expect(sha(layer)).toBe(config.rootfs.diff_ids[0]);
    const layerFile = path.join(d, 'layer.tar');
    fs.writeFileSync(layerFile, layer);
    const inLayer = await entries(layerFile);
    expect((inLayer.get('root/README.txt') as Buffer).toString()).toBe(
      fs.readFileSync(path.join(images, 'busybox/root/README.txt'), 'utf8'),
    );
    expect(inLayer.get('bin/sh')).toBe('SymbolicLink');
  });
});

describe('planLab runtime', () => {
  it('names each node runtime after it, and refuses an unknown one', () => {
    const dist = tmp();
    for (const svc of ['apiserver', 'kubelet-sim', 'cri-shim']) {
      fs.mkdirSync(path.join(dist, svc), { recursive: true });
      fs.writeFileSync(path.join(dist, svc, 'main.js'), '');
    }
    const plan = planLab({ dir: '/tmp/x', runtime: 'containerd', nodes: 2, distDir: dist });
    expect(plan.nodes.map((n) => [n.runtime, n.criShim, n.criRoot])).toEqual([
      ['containerd', 'containerd', '/tmp/x/containerd'],
      ['containerd', 'containerd-2', '/tmp/x/containerd-2'],
    ]);
    expect(plan.podLogsDir).toBe('/tmp/x/pod-logs');
    expect(() => planLab({ dir: '/tmp/x', runtime: 'docker' as never, distDir: dist })).toThrow(
      /runtime must be one of cri-shim, containerd/,
    );
  });
});
