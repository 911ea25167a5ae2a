/**
 * `kubectl cp` and `kexec cp` against a real lab (issue 6: path tricks in `kubectl cp` paths;
 * upstream CVE-2018-1002100, CVE-2019-1002101, CVE-2019-11246, CVE-2019-11249, CVE-2019-11251).
 *
 * - Round trips of a file and a directory, both ways, with kubectl v1.35 and kexec, against the
 *   busybox demo pod, on each runtime (e2e/support/runtimes.ts: the cri-shim and containerd).
 * - A malicious container (image evil-tar: its `tar` always writes an archive with `..`
 *   entries, an absolute entry, symlinks out of the destination with files behind them, and hard
 *   links to outside; see cri-shim/images/evil-tar/root/bin/tar): kubectl v1.35, kubectl v1.20
 *   (SPDY) and kexec copy from it into a fresh directory beside a sentinel directory, which must
 *   stay exactly as it was. A control extraction without the checks shows the same archive does
 *   write into the sentinel, so each assertion fails if the protection goes.
 * - Path tricks in the copy-to destination (`pod:../../../../tmp/x`): they resolve inside the
 *   container (bubblewrap: its /tmp is its own directory under the cri-shim's root), never on
 *   the host. Under `--isolation none` the same copy writes the host's /tmp.
 *
 * Needs `npm run build` (the lab and kexec run from dist/) and the kubectl binaries in .tools/.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { startLab, type Lab } from '../lab/lab.js';
import { Kubectl, KUBECTL_CLIENTS, type KubectlClient } from './support/kubectl.js';
import { runKexec, type RunResult } from './support/processes.js';
import { E2E_RUNTIMES, labOn } from './support/runtimes.js';

let dir = '';
let work = '';
let lab: Lab;
const logs: string[] = [];
/** The sentinel every evil entry aims at: beside each destination, and by absolute path. */
let sentinel = '';

const V135 = KUBECTL_CLIENTS.find((c) => c.version === 'v1.35' && !c.forceSpdy)!;
const V120 = KUBECTL_CLIENTS.find((c) => c.version === 'v1.20')!;

const kubectls = new Map<string, Kubectl>();

/** `client` on `on`'s kubeconfig (the file's lab by default). */
function kubectl(client: KubectlClient, on: Lab = lab): Kubectl {
  const key = `${client.name} ${on.kubeconfigPath}`;
  let k = kubectls.get(key);
  if (!k) {
    k = new Kubectl(client, on.kubeconfigPath, path.join(dir, `home-${client.version}-${kubectls.size}`));
    kubectls.set(key, k);
  }
  return k;
}

async function ok(args: string[]): Promise<string> {
  const r = await kubectl(V135).run(args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.toString();
}

const evilPodYaml = (absolute: string) => `apiVersion: v1
kind: Pod
metadata:
  name: evil
spec:
  containers:
  - name: main
    image: evil-tar
    env:
    - name: EVIL_TAR_ABSOLUTE
      value: ${JSON.stringify(absolute)}
`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cp-e2e-'));
  work = path.join(dir, 'work');
  sentinel = path.join(work, 'evil-tar-sentinel');
  fs.mkdirSync(sentinel, { recursive: true });
  fs.writeFileSync(path.join(sentinel, 'victim.txt'), 'original\n');
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, isolation: 'bwrap', log: (l) => logs.push(l) });
  const r = await kubectl(V135).run(['apply', '-f', '-'], evilPodYaml(sentinel));
  if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
  await ok(['wait', '--for=condition=Ready', 'pod/evil', 'pod/demo', '--timeout=40s']);
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** A copier: real kubectl or kexec, as a child process. */
interface Copier {
  name: string;
  cp(args: string[]): Promise<RunResult>;
  exec(args: string[]): Promise<RunResult>;
}

const viaKubectl = (client: KubectlClient, on: Lab = lab): Copier => ({
  name: client.name,
  cp: (args) => kubectl(client, on).run(['cp', ...args]),
  exec: (args) => kubectl(client, on).run(['exec', ...args]),
});

const viaKexecOn = (on: Lab): Copier => ({
  name: 'kexec',
  cp: (args) => runKexec(['--kubeconfig', on.kubeconfigPath, 'cp', ...args]),
  exec: (args) => runKexec(['--kubeconfig', on.kubeconfigPath, ...args]),
});

const slug = (s: string) => s.replace(/[^a-z0-9]+/gi, '-').replace(/^-|-$/g, '');
const show = (r: RunResult) => ({ code: r.code, stderr: r.stderr });

/** Every path under `d` (relative, sorted; `x/` a directory, `x@` a symlink, never followed). */
function tree(d: string): string[] {
  const out: string[] = [];
  const walk = (p: string, rel: string) => {
    for (const e of fs.readdirSync(p, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isSymbolicLink() ? `${r}@` : e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) walk(path.join(p, e.name), r);
    }
  };
  walk(d, '');
  return out.sort();
}

/** The host directory behind the pod's container (`root/`, `tmp/`, `var/` are its /root, /tmp, /var). */
async function containerDir(pod: string): Promise<string> {
  const id = (
    await ok(['get', 'pod', pod, '-o', 'jsonpath={.status.containerStatuses[0].containerID}'])
  ).replace(/^[a-z-]+:\/\//, '');
  expect(id).not.toBe('');
  const node = lab.nodes.find((n) => fs.existsSync(path.join(n.criRoot, 'containers', id)));
  if (!node) throw new Error(`no node holds container ${id}`);
  return path.join(node.criRoot, 'containers', id);
}

const viaKexec: Copier = {
  name: 'kexec',
  cp: (args) => viaKexecOn(lab).cp(args),
  exec: (args) => viaKexecOn(lab).exec(args),
};

describe.each(E2E_RUNTIMES)('round trips against the busybox pod on %s', (runtime) => {
  const onLab = labOn(
    runtime,
    () => lab,
    () => dir,
  );
  const copiers = () => [viaKubectl(V135, onLab()), viaKexecOn(onLab())];

  it.each(['kubectl v1.35 (WebSocket)', 'kexec'])('copies a file there and back with %s', async (name) => {
    const c = copiers().find((x) => x.name === name)!;
    const local = path.join(work, `rt-${runtime}-${slug(name)}`);
    fs.mkdirSync(local, { recursive: true });
    const data = randomBytes(300_000);
    fs.writeFileSync(path.join(local, 'up.bin'), data);
    const remote = `/tmp/${slug(name)}-file.bin`;

    const up = await c.cp([path.join(local, 'up.bin'), `demo:${remote}`]);
    expect(show(up)).toEqual({ code: 0, stderr: '' });
    if (runtime === 'cri-shim') {
      // It is in the container's own /tmp, on the host under the cri-shim's root.
      const onHost = path.join(await containerDir('demo'), 'tmp', path.basename(remote));
      expect(fs.readFileSync(onHost).equals(data)).toBe(true);
    }

    const down = await c.cp([`demo:${remote}`, path.join(local, 'down.bin')]);
    expect(down.code).toBe(0);
    expect(fs.readFileSync(path.join(local, 'down.bin')).equals(data)).toBe(true);
  });

  it.each(['kubectl v1.35 (WebSocket)', 'kexec'])(
    'copies a directory there and back with %s',
    async (name) => {
      const c = copiers().find((x) => x.name === name)!;
      const local = path.join(work, `rtdir-${runtime}-${slug(name)}`);
      const src = path.join(local, 'src');
      fs.mkdirSync(path.join(src, 'sub', 'deeper'), { recursive: true });
      fs.mkdirSync(path.join(src, 'empty'));
      fs.writeFileSync(path.join(src, 'a.txt'), 'alpha\n');
      fs.writeFileSync(path.join(src, 'sub', 'b.bin'), randomBytes(70_000));
      fs.writeFileSync(path.join(src, 'sub', 'deeper', 'c.txt'), 'gamma\n');
      const remote = `/tmp/${slug(name)}-dir`;

      const up = await c.cp([src, `demo:${remote}`]);
      expect(up.code).toBe(0);
      const listed = await c.exec(['demo', '--', 'find', remote]);
      expect(listed.stdout.toString().trim().split('\n').sort()).toEqual(
        ['', '/a.txt', '/empty', '/sub', '/sub/b.bin', '/sub/deeper', '/sub/deeper/c.txt'].map(
          (p) => remote + p,
        ),
      );

      const back = path.join(local, 'back');
      const down = await c.cp([`demo:${remote}`, back]);
      expect(down.code).toBe(0);
      expect(tree(back)).toEqual(tree(src));
      for (const f of ['a.txt', 'sub/b.bin', 'sub/deeper/c.txt']) {
        expect(fs.readFileSync(path.join(back, f)).equals(fs.readFileSync(path.join(src, f)))).toBe(true);
      }
    },
  );
  // Issue 13: a missing source used to end in node-tar's "TAR_BAD_ARCHIVE: Unrecognized archive
  // format" (the container's tar writes nothing); kexec now names the missing path.
  it('says so when the file to copy from the pod does not exist', async () => {
    const local = path.join(work, 'missing-dest');
    const r = await viaKexec.cp(['demo:/no/such/file', local]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('/no/such/file: Cannot stat: No such file or directory');
    expect(r.stderr).toContain(
      'error: cannot copy default/demo:/no/such/file: no such file or directory in the container, or not readable (tar exited with code 2)\n',
    );
    expect(r.stderr).not.toContain('TAR_BAD_ARCHIVE');
    expect(fs.existsSync(local)).toBe(false);
  });
});

describe("a malicious container's tar (image evil-tar)", () => {
  /** The sentinel exactly as beforeAll made it: no new file, the victim unchanged and not linked. */
  function expectSentinelUntouched(): void {
    expect(tree(sentinel)).toEqual(['victim.txt']);
    expect(fs.readFileSync(path.join(sentinel, 'victim.txt'), 'utf8')).toBe('original\n');
    expect(fs.statSync(path.join(sentinel, 'victim.txt')).nlink).toBe(1);
  }

  it('really is an attack: extraction without the checks writes into the sentinel', async () => {
    // Its own sentinel and destination, so the real one stays pristine.
    const ctl = path.join(dir, 'control');
    const ctlSentinel = path.join(ctl, 'evil-tar-sentinel');
    fs.mkdirSync(ctlSentinel, { recursive: true });
    fs.writeFileSync(path.join(ctlSentinel, 'victim.txt'), 'original\n');
    const got = await viaKexec.exec([
      'evil',
      '--',
      'env',
      `EVIL_TAR_ABSOLUTE=${ctlSentinel}`,
      'tar',
      'cf',
      '-',
      '/root/loot',
    ]);
    expect(got.code).toBe(0);

    // kubectl's untar before the fixes: dest + (name - prefix), symlinks made, links followed.
    const dest = path.join(ctl, 'dest');
    const prefix = 'root/loot';
    const under = (name: string) =>
      path.join(dest, name.startsWith(prefix) ? name.slice(prefix.length) : name);
    const parser = new Parser();
    parser.on('entry', (e: ReadEntry) => {
      const target = under(e.path);
      fs.mkdirSync(path.dirname(target), { recursive: true });
      if (e.type === 'Directory') fs.mkdirSync(target, { recursive: true });
      else if (e.type === 'SymbolicLink') fs.symlinkSync(e.linkpath!, target);
      else if (e.type === 'Link')
        fs.linkSync(path.isAbsolute(e.linkpath!) ? e.linkpath! : under(e.linkpath!), target);
      else {
        const chunks: Buffer[] = [];
        e.on('data', (c: Buffer) => chunks.push(c));
        e.on('end', () => fs.writeFileSync(target, Buffer.concat(chunks)));
        return;
      }
      e.resume();
    });
    await new Promise<void>((resolve, reject) => {
      parser.on('end', resolve);
      parser.on('error', reject);
      parser.end(got.stdout);
    });
    expect(tree(ctlSentinel)).toEqual([
      'deep-dotdot.txt',
      'dotdot.txt',
      'through-abs-symlink.txt',
      'through-symlink.txt',
      'victim.txt',
    ]);
    expect(fs.statSync(path.join(ctlSentinel, 'victim.txt')).nlink).toBe(3);
    expect(fs.lstatSync(path.join(dest, 'escape')).isSymbolicLink()).toBe(true);
  });

  const attackers: Copier[] = [viaKubectl(V135), viaKubectl(V120), viaKexec];

  it.each(attackers.map((a) => [a.name, a] as const))(
    'copy-from with %s writes nothing outside the destination',
    async (_name, c) => {
      const dest = path.join(work, `evil-dest-${slug(c.name)}`);
      fs.mkdirSync(dest);
      const before = fs.readdirSync(work).sort();

      const r = await c.cp(['evil:/root/loot', dest]);

      expectSentinelUntouched();
      // Nothing new beside the destination, nothing at the absolute target's siblings.
      expect(fs.readdirSync(work).sort()).toEqual(before);
      // The symlink trick: no symlink was made, so `escape/through-symlink.txt` is a plain file
      // in a plain directory inside the destination (or was not written at all).
      const inside = tree(dest);
      expect(inside.filter((p) => p.endsWith('@'))).toEqual([]);
      expect(inside).toEqual(expect.arrayContaining(['ok.txt', 'escape/', 'escape/through-symlink.txt']));
      expect(fs.readFileSync(path.join(dest, 'ok.txt'), 'utf8')).toBe('harmless\n');
      expect(r.stderr).toContain(
        `${path.join(sentinel, 'dotdot.txt')}" is outside target destination, skipping`,
      );
      expect(r.stderr).toMatch(/skipping symlink: ".*escape" -> "\.\.\/evil-tar-sentinel"/);

      if (c === viaKexec) {
        // kexec also refuses the hard links out and the absolute entry, and says so with exit 1.
        expect(r.code).toBe(1);
        expect(r.stderr).toMatch(
          /hard link ".*hardlink" -> ".*victim\.txt" points outside target destination/,
        );
        expect(r.stderr).toContain(`file "${sentinel}/absolute.txt" is not under the requested path`);
        expect(r.stderr).toMatch(/error: refused 7 tar entries from default\/evil:\/root\/loot/);
        expect(inside).toEqual([
          'abs-escape/',
          'abs-escape/through-abs-symlink.txt',
          'escape/',
          'escape/through-symlink.txt',
          'hard-src',
          'hard-src-abs',
          'ok.txt',
        ]);
      } else {
        // kubectl stops at the absolute entry, the last one: "tar contents corrupted" (exit 1).
        // It writes hard links as empty regular files of their own, never linked to the target.
        expect(r.code).toBe(1);
        expect(r.stderr).toContain('error: tar contents corrupted');
        expect(inside).toEqual([
          'abs-escape/',
          'abs-escape/through-abs-symlink.txt',
          'escape/',
          'escape/through-symlink.txt',
          'hard-src',
          'hard-src-abs',
          'hardlink',
          'hardlink-abs',
          'ok.txt',
        ]);
        for (const h of ['hardlink', 'hardlink-abs']) {
          expect(fs.statSync(path.join(dest, h))).toMatchObject({ size: 0, nlink: 1 });
        }
      }
    },
  );
});

describe('path tricks in the copy-to destination', () => {
  it.each([
    ['kubectl v1.35 (WebSocket)', '../../../../tmp/'],
    ['kubectl v1.35 (WebSocket)', `${'../'.repeat(16)}tmp/`],
    ['kexec', '../../../../tmp/'],
    ['kexec', `${'../'.repeat(16)}tmp/`],
  ])('%s cp FILE demo:%sNAME lands in the container, not on the host', async (name, up) => {
    const c = name === 'kexec' ? viaKexec : viaKubectl(V135);
    const file = `kexec-cp-escape-${randomBytes(6).toString('hex')}`;
    const local = path.join(work, file);
    fs.writeFileSync(local, 'escaped?\n');
    const cdir = await containerDir('demo');
    // Where the path would land on the host: from the container's working dir (/root is
    // cdir/root on the host) without isolation, and the plain host /tmp.
    const hostGuesses = [path.resolve(cdir, 'root', `${up}${file}`), path.join('/tmp', file)];
    for (const h of hostGuesses) expect(fs.existsSync(h)).toBe(false);

    const r = await c.cp([local, `demo:${up}${file}`]);
    expect(show(r)).toEqual({ code: 0, stderr: '' });

    // Inside the container, /root/../../../../tmp is /tmp: the container's own tmp directory.
    const seen = await c.exec(['demo', '--', 'cat', `/tmp/${file}`]);
    expect(seen.stdout.toString()).toBe('escaped?\n');
    expect(fs.readFileSync(path.join(cdir, 'tmp', file), 'utf8')).toBe('escaped?\n');
    for (const h of hostGuesses) expect(fs.existsSync(h)).toBe(false);
  });
});
