/**
 * `kexec cp` path handling, without a lab: kubectl's file specs and prefix rules, the per-entry
 * plan, and extraction of hostile archives into a temp dir with a sentinel directory beside the
 * destination (issue 6; CVE-2018-1002100, CVE-2019-1002101, CVE-2019-11246, CVE-2019-11249,
 * CVE-2019-11251). The hostile archive is the evil-tar image's own (cri-shim/images/evil-tar,
 * run here with the host's sh and GNU tar); the smaller ones are built with node-tar's Header.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { Header } from 'tar';
import { packageRoot } from '../shared/package-root.js';
import { kexec } from './cli.js';
import { routeArgv } from './cmd/kexec.js';
import {
  extractFileSpec,
  isRelative,
  planEntry,
  remotePrefix,
  stripPathShortcuts,
  tarOf,
  untarTo,
  type ExtractReport,
} from './cp.js';

const EVIL_TAR = path.join(packageRoot(), 'cri-shim', 'images', 'evil-tar', 'root', 'bin', 'tar');

class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

let work = '';
beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-cp-'));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

/** One archive member as node-tar's Header encodes it, then its data padded to 512. */
function member(h: { path: string; type?: string; linkpath?: string; data?: string; mode?: number }): Buffer {
  const data = Buffer.from(h.data ?? '');
  const header = new Header({
    path: h.path,
    type: (h.type ?? 'File') as 'File',
    linkpath: h.linkpath,
    size: data.length,
    mode: h.mode ?? (h.type === 'Directory' ? 0o755 : 0o644),
    mtime: new Date(0),
    uid: 0,
    gid: 0,
  });
  header.encode();
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512);
  return Buffer.concat([header.block!, data, pad]);
}

const archive = (...members: Buffer[]) => Buffer.concat([...members, Buffer.alloc(1024)]);

async function extract(
  bytes: Buffer,
  dest: string,
  prefix: string,
): Promise<ExtractReport & { warnings: string }> {
  const err = new Sink();
  const { input, done } = untarTo(dest, prefix, err);
  input.end(bytes);
  const report = await done;
  return { ...report, warnings: err.data };
}

/** Every path under `dir` (relative, sorted), symlinks not followed. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      out.push(e.isSymbolicLink() ? `${r}@` : e.isDirectory() ? `${r}/` : r);
      if (e.isDirectory()) walk(path.join(d, e.name), r);
    }
  };
  walk(dir, '');
  return out.sort();
}

describe('file specs and prefixes (kubectl filespec.go)', () => {
  it('splits [[namespace/]pod:]path like extractFileSpec', () => {
    expect(extractFileSpec('demo:/tmp/x/')).toEqual({ pod: 'demo', file: '/tmp/x' });
    expect(extractFileSpec('dev/demo:a\\b')).toEqual({ namespace: 'dev', pod: 'demo', file: 'a/b' });
    expect(extractFileSpec('./local/')).toEqual({ file: './local' });
    expect(() => extractFileSpec(':/x')).toThrow(/canonical format/);
    expect(() => extractFileSpec('a/b/c:/x')).toThrow(/canonical format/);
  });

  it('strips ../ and the leading slash like stripPathShortcuts', () => {
    expect(stripPathShortcuts('../../etc/passwd')).toBe('etc/passwd');
    expect(stripPathShortcuts('..')).toBe('');
    expect(stripPathShortcuts('.')).toBe('');
    expect(stripPathShortcuts('/x')).toBe('x');
    expect(remotePrefix('/root/loot/')).toBe('root/loot');
    expect(remotePrefix('//root/./loot')).toBe('root/loot');
    expect(remotePrefix('/../../etc')).toBe('etc');
    expect(remotePrefix('/')).toBe('');
  });

  it('isRelative: the base itself or below it, never beside or above', () => {
    expect(isRelative('/w/dest', '/w/dest')).toBe(true);
    expect(isRelative('/w/dest', '/w/dest/a/b')).toBe(true);
    expect(isRelative('/w/dest', '/w/dest2/x')).toBe(false);
    expect(isRelative('/w/dest', '/w/evil-tar-sentinel/x')).toBe(false);
    expect(isRelative('/w/dest', '/etc/passwd')).toBe(false);
    expect(isRelative('/w/dest', '/w/dest/..x')).toBe(true);
  });

  it('takes global flags before `cp`, as the other subcommands', () => {
    expect(routeArgv(['--kubeconfig', 'k', '-n', 'ns', 'cp', 'a', 'b'])).toEqual([
      'cp',
      '--kubeconfig',
      'k',
      '-n',
      'ns',
      'a',
      'b',
    ]);
    expect(routeArgv(['--kubeconfig', 'k', 'demo', '--', 'cp', 'a', 'b'])[0]).toBe('exec');
  });
});

describe('planEntry (the per-entry rules)', () => {
  const dest = '/w/dest';
  const plan = (p: string, type = 'File', linkpath?: string) =>
    planEntry({ path: p, type, linkpath }, 'root/loot', dest);

  it('maps the prefix onto the destination', () => {
    expect(plan('root/loot/', 'Directory')).toEqual({ extract: true, path: 'dest' });
    expect(plan('root/loot/a/b.txt')).toEqual({ extract: true, path: 'dest/a/b.txt' });
    expect(plan('root/loot/a/../b.txt')).toEqual({ extract: true, path: 'dest/b.txt' });
    expect(planEntry({ path: 'root/f.txt', type: 'File' }, 'root/f.txt', '/w/copy.txt')).toEqual({
      extract: true,
      path: 'copy.txt',
    });
  });

  it('refuses .. traversal, names outside the prefix and absolute names', () => {
    for (const p of [
      'root/loot/../evil-tar-sentinel/x',
      'root/loot/../../../../etc/passwd',
      'root/loot/..',
    ]) {
      expect(plan(p)).toEqual({
        extract: false,
        warning: expect.stringContaining('outside target destination'),
      });
    }
    for (const p of ['/etc/passwd', 'etc/passwd', 'root/lootx/a', '../root/loot/a']) {
      expect(plan(p)).toEqual({ extract: false, warning: expect.stringContaining('tar contents corrupted') });
    }
  });

  it('re-roots absolute names under the destination when the prefix is empty (copying /)', () => {
    expect(planEntry({ path: '/etc/passwd', type: 'File' }, '', dest)).toEqual({
      extract: true,
      path: 'dest/etc/passwd',
    });
  });

  it('skips every symlink and hard links whose target is not inside', () => {
    expect(plan('root/loot/in', 'SymbolicLink', 'a')).toEqual({
      extract: false,
      warning: 'skipping symlink: "/w/dest/in" -> "a"',
    });
    expect(plan('root/loot/h', 'Link', 'root/loot/a')).toEqual({
      extract: true,
      path: 'dest/h',
      linkpath: 'dest/a',
    });
    for (const l of ['root/loot/../x', '/etc/shadow', 'etc/shadow', 'root/loot']) {
      expect(plan('root/loot/h', 'Link', l)).toEqual({
        extract: false,
        warning: expect.stringContaining('points outside target destination'),
      });
    }
  });
});

describe('extracting hostile archives', () => {
  /** work/dest (to be created) with work/evil-tar-sentinel/victim.txt beside it. */
  function layout() {
    const dest = path.join(work, 'dest');
    const sentinel = path.join(work, 'evil-tar-sentinel');
    fs.mkdirSync(sentinel);
    fs.writeFileSync(path.join(sentinel, 'victim.txt'), 'original\n');
    return { dest, sentinel };
  }

  function sentinelUntouched(sentinel: string) {
    expect(tree(work)).toEqual(
      expect.arrayContaining(['evil-tar-sentinel/', 'evil-tar-sentinel/victim.txt']),
    );
    expect(tree(sentinel)).toEqual(['victim.txt']);
    expect(fs.readFileSync(path.join(sentinel, 'victim.txt'), 'utf8')).toBe('original\n');
    expect(fs.statSync(path.join(sentinel, 'victim.txt')).nlink).toBe(1);
  }

  it("refuses every trick of the evil-tar image's archive and keeps the harmless files", async () => {
    const { dest, sentinel } = layout();
    const made = spawnSync('sh', [EVIL_TAR, 'cf', '-', '/root/loot'], {
      env: { ...process.env, EVIL_TAR_ABSOLUTE: sentinel },
      maxBuffer: 1 << 20,
    });
    expect(made.status).toBe(0);
    const r = await extract(made.stdout, dest, 'root/loot');

    expect(tree(work)).toEqual([
      'dest/',
      'dest/abs-escape/',
      'dest/abs-escape/through-abs-symlink.txt',
      'dest/escape/',
      'dest/escape/through-symlink.txt',
      'dest/hard-src',
      'dest/hard-src-abs',
      'dest/ok.txt',
      'evil-tar-sentinel/',
      'evil-tar-sentinel/victim.txt',
    ]);
    sentinelUntouched(sentinel);
    expect(fs.readFileSync(path.join(dest, 'ok.txt'), 'utf8')).toBe('harmless\n');
    // dotdot, deep dotdot, 2 symlinks, 2 hard links out, the absolute name.
    expect(r.refused).toBe(7);
    expect(r.warnings).toContain(`file "${path.join(sentinel, 'dotdot.txt')}" is outside target destination`);
    expect(r.warnings).toContain(
      `file "${path.join(sentinel, 'deep-dotdot.txt')}" is outside target destination`,
    );
    expect(r.warnings).toContain(
      `skipping symlink: "${path.join(dest, 'escape')}" -> "../evil-tar-sentinel"`,
    );
    expect(r.warnings).toContain(`skipping symlink: "${path.join(dest, 'abs-escape')}" -> "${sentinel}"`);
    expect(r.warnings).toMatch(/hard link ".*\/dest\/hardlink" -> ".*victim.txt" points outside/);
    expect(r.warnings).toMatch(/hard link ".*\/dest\/hardlink-abs" -> ".*victim.txt" points outside/);
    expect(r.warnings).toContain(`file "${sentinel}/absolute.txt" is not under the requested path`);
  });

  it('never writes through a symlink already in the destination: links to it are refused, files replace it', async () => {
    const { dest, sentinel } = layout();
    fs.mkdirSync(dest);
    fs.symlinkSync(sentinel, path.join(dest, 'link'));
    const r = await extract(
      archive(
        member({ path: 'root/loot/h', type: 'Link', linkpath: 'root/loot/link/victim.txt' }),
        member({ path: 'root/loot/link/planted.txt', data: 'planted\n' }),
        member({ path: 'root/loot/fine.txt', data: 'ok\n' }),
      ),
      dest,
      'root/loot',
    );
    sentinelUntouched(sentinel);
    // node-tar (unlink: true) replaces the symlink with a real directory, as GNU tar does.
    expect(tree(dest)).toEqual(['fine.txt', 'link/', 'link/planted.txt']);
    expect(r.refused).toBe(1);
    expect(r.warnings).toMatch(/Cannot extract through symbolic link/);
  });

  it('replaces, never writes through, an existing hard link; no setuid bits, no chown', async () => {
    const { dest, sentinel } = layout();
    fs.mkdirSync(dest);
    fs.linkSync(path.join(sentinel, 'victim.txt'), path.join(dest, 'f'));
    const r = await extract(
      archive(member({ path: 'root/loot/f', data: 'new\n', mode: 0o4755 })),
      dest,
      'root/loot',
    );
    expect(r).toMatchObject({ refused: 0, extracted: 1 });
    expect(fs.readFileSync(path.join(sentinel, 'victim.txt'), 'utf8')).toBe('original\n');
    expect(fs.readFileSync(path.join(dest, 'f'), 'utf8')).toBe('new\n');
    const st = fs.statSync(path.join(dest, 'f'));
    expect(st.mode & 0o7000).toBe(0);
    expect(st.uid).toBe(process.getuid!());
  });

  it('copies a single file to the destination path, and refuses a file onto an existing directory', async () => {
    const file = path.join(work, 'copy.txt');
    expect(
      await extract(archive(member({ path: 'root/f.txt', data: 'one\n' })), file, 'root/f.txt'),
    ).toMatchObject({
      refused: 0,
    });
    expect(fs.readFileSync(file, 'utf8')).toBe('one\n');

    const dir = path.join(work, 'adir');
    fs.mkdirSync(dir);
    fs.writeFileSync(path.join(dir, 'keep'), 'k');
    const r = await extract(archive(member({ path: 'root/f.txt', data: 'one\n' })), dir, 'root/f.txt');
    expect(r.refused).toBe(1);
    expect(r.warnings).toContain('it is a directory');
    expect(tree(dir)).toEqual(['keep']);
  });

  it('keeps hard links inside the copy', async () => {
    const dest = path.join(work, 'dest');
    const r = await extract(
      archive(
        member({ path: 'root/loot/', type: 'Directory' }),
        member({ path: 'root/loot/a', data: 'A\n' }),
        member({ path: 'root/loot/b', type: 'Link', linkpath: 'root/loot/a' }),
      ),
      dest,
      'root/loot',
    );
    expect(r).toMatchObject({ refused: 0, extracted: 3 });
    expect(fs.statSync(path.join(dest, 'b')).ino).toBe(fs.statSync(path.join(dest, 'a')).ino);
  });
});

describe('tarOf (copy to a pod)', () => {
  it('names the entries after the destination, symlinks kept as symlinks', async () => {
    const src = path.join(work, 'src');
    fs.mkdirSync(path.join(src, 'empty'), { recursive: true });
    fs.writeFileSync(path.join(src, 'a.txt'), 'a');
    fs.symlinkSync('a.txt', path.join(src, 'l'));
    const out = tarOf(src, 'renamed', new Sink());
    const chunks: Buffer[] = [];
    for await (const c of out.stream) chunks.push(c as Buffer);
    expect(out.failure()).toBeUndefined();
    const listed = spawnSync('tar', ['tvf', '-'], { input: Buffer.concat(chunks) }).stdout.toString();
    const names = listed
      .trim()
      .split('\n')
      .map((l) => l.split(/\s+/).slice(5).join(' '))
      .sort();
    expect(names).toEqual(['renamed/', 'renamed/a.txt', 'renamed/empty/', 'renamed/l -> a.txt']);
  });
});

describe('kexec cp command line', () => {
  async function run(argv: string[]) {
    const stdout = new Sink();
    const stderr = new Sink();
    const code = await kexec(argv, { stdin: new PassThrough(), stdout, stderr });
    return { code, out: stdout.data, err: stderr.data };
  }

  it('needs exactly one remote side and two arguments', async () => {
    expect(await run(['cp', 'a'])).toMatchObject({
      code: 1,
      err: expect.stringContaining('source and destination are required'),
    });
    expect(await run(['cp', 'p:/a', 'q:/b'])).toMatchObject({
      code: 1,
      err: expect.stringContaining('one of src or dest must be a local file specification'),
    });
    expect(await run(['cp', 'a', 'b'])).toMatchObject({
      code: 1,
      err: expect.stringContaining('one of src or dest must be a remote file specification'),
    });
    expect(await run(['cp', 'p:', 'b'])).toMatchObject({
      code: 1,
      err: expect.stringContaining('filepath can not be empty'),
    });
    expect(await run(['cp', path.join(work, 'missing'), 'p:/x'])).toMatchObject({
      code: 1,
      err: expect.stringContaining("doesn't exist in local filesystem"),
    });
  });

  it('prints its help', async () => {
    const r = await run(['cp', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toContain('kexec cp [options] <file-spec-src> <file-spec-dest>');
  });
});
