/**
 * `kexec cp`: kubectl `pkg/cmd/cp/cp.go` and `filespec.go`, over the exec path kexec already uses.
 *
 *   kexec cp [-n NS] [-c CONTAINER] [--protocol P] [[NS/]POD:]SRC [[NS/]POD:]DEST
 *
 * Copy from a pod runs `tar cf - SRC` in the container and extracts its stdout locally; copy to a
 * pod runs `test -d DEST` (a directory: the file goes into it, as `DEST/basename(SRC)`) and then
 * `tar -xmf - -C dir(DEST)` in the container with a tar of SRC on its stdin, the entries named
 * `basename(DEST)/…`. Exactly kubectl's commands, so the container needs a `tar`.
 *
 * The archive comes from the container, which may be hostile: its `tar` can emit any entry. The
 * attacks upstream learnt about, and what stops each here:
 *
 * - CVE-2018-1002100 (`../` entries written outside the destination): every entry must lie under
 *   the requested path (kubectl's prefix check, "tar contents corrupted"), and
 *   `DEST + (name − prefix)` must stay inside DEST (kubectl's isRelative); else a warning and the
 *   entry is skipped. An absolute name fails the prefix check (or, copying `/`, is re-rooted).
 * - CVE-2019-1002101 (the fix was incomplete: a symlink out of the destination, then a file
 *   written through it), CVE-2019-11246 and CVE-2019-11249 (incomplete fixes of that: traversal
 *   through link targets and relative paths) and CVE-2019-11251 (two symlinks chained out): no
 *   symlink is ever created, as kubectl since 1.16 ("warning: skipping symlink"), so no later
 *   entry, and no later command of the user's, can follow one out. A hard link is created only
 *   when its target, mapped the same way, is inside DEST (kubectl writes an empty file instead).
 * - Defence in depth, node-tar's own checks (its CVE-2021-32803/32804/37701/37712/37713): no path
 *   with `..` or escaping the extraction root, no hard link through a symlink already on disk,
 *   and `unlink: true` replaces whatever is in the way (a symlink, an existing hard link) instead
 *   of writing through it; `preserveOwner: false` never chowns, and setuid/setgid/sticky bits
 *   are dropped.
 *
 * Differences from kubectl: kubectl stops at the first entry without the prefix ("tar contents
 * corrupted") and exits 0 after skipping entries; kexec skips and warns for every refused entry,
 * finishes the rest and then exits 1 naming how many it refused, so a script notices. Symlinks
 * and hard links to outside count as refused. No `--retries` and no `--no-preserve`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough, Writable, type Readable } from 'node:stream';
import { Pack, Unpack, type ReadEntry, type WriteEntry } from 'tar';
import { loadClientConfig, type ClientConfig } from './client.js';
import { ApiStatusError, ExitCodeError, UsageError } from './errors.js';
import type { CpOptions } from './cmd/cp.js';
import { defaultContainer, getPod, streamUrl } from './pod.js';
import { resolveStreamProtocol, streamRemoteCommand, type StreamProtocol } from './remotecommand-executor.js';
import type { KexecIO } from './stream-session.js';

const COMMAND_PATH = 'kexec cp';

/** `[[namespace/]pod:]file/path`, as kubectl's extractFileSpec splits it. */
export interface FileSpec {
  namespace?: string;
  pod?: string;
  file: string;
}

/** CpOptions with both file specs parsed. */
interface CopyOptions extends Omit<CpOptions, 'src' | 'dest'> {
  src: FileSpec;
  dest: FileSpec;
}

/** kubectl's errFileSpecDoesntMatchFormat. */
export const FILESPEC_FORMAT_ERROR = 'filespec must match the canonical format: [[namespace/]pod:]file/path';

/** kubectl filespec.go stripTrailingSlash: one trailing `/`, never the root itself. */
function stripTrailingSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** A path inside a (Linux) container: `\` is a separator too (kubectl newRemotePath). */
function remotePath(p: string): string {
  return stripTrailingSlash(p).replaceAll('\\', '/');
}

/** kubectl extractFileSpec: the first `:` separates `[namespace/]pod` from the path. */
export function extractFileSpec(arg: string): FileSpec {
  const i = arg.indexOf(':');
  if (i === 0) throw new UsageError(FILESPEC_FORMAT_ERROR, COMMAND_PATH);
  if (i < 0) return { file: stripTrailingSlash(arg) };
  const pieces = arg.slice(0, i).split('/');
  const file = remotePath(arg.slice(i + 1));
  if (pieces.length === 1) return { pod: pieces[0], file };
  if (pieces.length === 2 && pieces[0] && pieces[1]) return { namespace: pieces[0], pod: pieces[1], file };
  throw new UsageError(FILESPEC_FORMAT_ERROR, COMMAND_PATH);
}

/** kubectl stripPathShortcuts: drops leading `../`, a lone `.`/`..`, then one leading `/`. */
export function stripPathShortcuts(p: string): string {
  let s = p;
  while (s.startsWith('../')) s = s.slice(3);
  if (s === '.' || s === '..') s = '';
  return s.startsWith('/') ? s.slice(1) : s;
}

/**
 * The prefix every entry of `tar cf - SRC` carries (GNU tar strips leading `/`):
 * kubectl's `stripPathShortcuts(srcFile.StripSlashes().Clean())`.
 */
export function remotePrefix(src: string): string {
  const stripped = remotePath(src).replace(/^[/\\]+/, '');
  return stripPathShortcuts(path.posix.normalize(stripped || '.').replace(/\/$/, ''));
}

/** kubectl isRelative: `target` is `base` or below it (both already cleaned, absolute). */
export function isRelative(base: string, target: string): boolean {
  const rel = path.relative(base, target);
  return rel === '' || (rel !== '..' && !rel.startsWith('../') && !path.isAbsolute(rel));
}

/** An archive entry as the planner sees it (node-tar's ReadEntry has these fields). */
export interface TarEntryHead {
  path: string;
  type: string;
  linkpath?: string;
}

/** What to do with one entry: extract it at `path` (relative to the extraction root), or skip it. */
export type EntryPlan =
  { extract: true; path: string; linkpath?: string } | { extract: false; warning: string };

/** The part of `name` below the prefix (`''` for the prefix itself), or undefined when outside it. */
function belowPrefix(name: string, prefix: string): string | undefined {
  if (prefix === '') return name;
  if (name === prefix) return '';
  // kubectl checks a plain string prefix; a component boundary is what it means.
  return name.startsWith(`${prefix}/`) ? name.slice(prefix.length) : undefined;
}

const q = (s: string) => JSON.stringify(s);

/**
 * Where an entry of the container's archive goes, with kubectl's rules: the name must start with
 * the prefix, `dest + (name − prefix)` must stay in `dest`, symlinks are skipped, a hard link's
 * target is mapped the same way and must stay in `dest` too. `dest` is absolute; the plan's paths
 * are relative to `path.dirname(dest)` (the extraction root, so a single file can become `dest`).
 */
export function planEntry(entry: TarEntryHead, prefix: string, dest: string): EntryPlan {
  const name = remotePath(entry.path);
  const rest = belowPrefix(name, prefix);
  if (rest === undefined) {
    return {
      extract: false,
      warning: `file ${q(name)} is not under the requested path ${q(prefix)} (tar contents corrupted), skipping`,
    };
  }
  const target = path.join(dest, rest);
  if (!isRelative(dest, target)) {
    return { extract: false, warning: `file ${q(target)} is outside target destination, skipping` };
  }
  if (entry.type === 'SymbolicLink') {
    return { extract: false, warning: `skipping symlink: ${q(target)} -> ${q(entry.linkpath ?? '')}` };
  }
  const root = path.dirname(dest);
  const plan: EntryPlan = { extract: true, path: path.relative(root, target) || '.' };
  if (entry.type === 'Link') {
    const link = belowPrefix(remotePath(entry.linkpath ?? ''), prefix);
    const linkTarget = link === undefined ? undefined : path.join(dest, link);
    if (linkTarget === undefined || !isRelative(dest, linkTarget) || linkTarget === dest) {
      return {
        extract: false,
        warning: `hard link ${q(target)} -> ${q(entry.linkpath ?? '')} points outside target destination, skipping`,
      };
    }
    plan.linkpath = path.relative(root, linkTarget);
  }
  return plan;
}

/** Counts and reports what extraction refused. */
export interface ExtractReport {
  extracted: number;
  refused: number;
}

/**
 * An extractor for the container's tar stream: node-tar's Unpack rooted at `dirname(dest)`, each
 * entry renamed by planEntry or skipped with a warning on `stderr`. Resolves when the archive has
 * been written out (the returned stream must be ended by the caller).
 */
export function untarTo(
  dest: string,
  prefix: string,
  stderr: Writable,
): { input: Writable; done: Promise<ExtractReport> } {
  const root = path.dirname(dest);
  fs.mkdirSync(root, { recursive: true });
  const report: ExtractReport = { extracted: 0, refused: 0 };
  const warn = (text: string) => stderr.write(`warning: ${text}\n`);
  const destIsDir = () => {
    try {
      return fs.statSync(dest).isDirectory();
    } catch {
      return false;
    }
  };
  const unpack = new Unpack({
    cwd: root,
    preserveOwner: false,
    unlink: true,
    strict: false,
    filter: (_p: string, e: unknown) => {
      const entry = e as ReadEntry;
      const plan = planEntry({ path: entry.path, type: entry.type, linkpath: entry.linkpath }, prefix, dest);
      if (!plan.extract) {
        report.refused++;
        warn(plan.warning);
        return false;
      }
      // kubectl: a file onto an existing directory fails (open: is a directory); never replace it.
      if (plan.path === path.basename(dest) && entry.type !== 'Directory' && destIsDir()) {
        report.refused++;
        warn(`cannot write file ${q(dest)}: it is a directory, skipping`);
        return false;
      }
      entry.path = plan.path;
      if (plan.linkpath !== undefined) entry.linkpath = plan.linkpath;
      if (entry.mode !== undefined) entry.mode &= 0o777;
      report.extracted++;
      return true;
    },
    onwarn: (code: string, message: string, data: object) => {
      // Stripping a root is informational (it cannot happen here: planned paths are relative).
      if (code === 'TAR_ENTRY_INFO') return;
      report.refused++;
      const entryPath = (data as { entry?: { path?: unknown } }).entry?.path;
      const where = typeof entryPath === 'string' ? `${q(path.join(root, entryPath))}: ` : '';
      warn(`${where}${message}, skipping`);
    },
  });
  const input = new PassThrough();
  input.pipe(unpack as unknown as Writable);
  const done = new Promise<ExtractReport>((resolve, reject) => {
    unpack.on('error', reject);
    unpack.on('close', () => resolve(report));
  });
  return { input, done };
}

/**
 * A tar of local `src` whose entries are named `destBase[/…]` (kubectl makeTar/recursiveTar:
 * symlinks stored as symlinks, empty directories kept). `failure()` tells, once the stream has
 * ended, whether reading the local files failed (the archive is then incomplete).
 */
export function tarOf(
  src: string,
  destBase: string,
  stderr: Writable,
): { stream: Readable; failure: () => Error | undefined } {
  const abs = path.resolve(src);
  const srcBase = path.basename(abs);
  let failed: Error | undefined;
  const pack = new Pack({
    cwd: path.dirname(abs),
    portable: true,
    onwarn: (_code: string, message: string) => {
      stderr.write(`warning: ${message}\n`);
    },
    onWriteEntry: (entry: WriteEntry) => {
      entry.path = destBase + entry.path.slice(srcBase.length);
      if (entry.type === 'Link' && entry.linkpath?.startsWith(srcBase)) {
        entry.linkpath = destBase + entry.linkpath.slice(srcBase.length);
      }
    },
  });
  const out = new PassThrough();
  pack.on('error', (err: unknown) => {
    failed = err instanceof Error ? err : new Error(String(err));
    out.end();
  });
  pack.pipe(out);
  pack.add(srcBase);
  pack.end();
  return { stream: out, failure: () => failed };
}

/** A Writable that keeps nothing. */
const discard = () =>
  new Writable({
    write(_c, _e, cb) {
      cb();
    },
  });

interface Target {
  cfg: ClientConfig;
  namespace: string;
  pod: string;
  container: string;
}

async function resolveTarget(o: CopyOptions, spec: FileSpec, io: KexecIO): Promise<Target> {
  const cfg = await loadClientConfig({ ...o, namespace: spec.namespace || o.namespace });
  const namespace = cfg.namespace;
  const pod = spec.pod!;
  const obj = await getPod(cfg, namespace, pod);
  const phase = obj.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    throw new Error(`cannot exec into a container in a completed pod; current phase is ${phase}`);
  }
  let container = o.container;
  if (!container) {
    const d = defaultContainer(obj);
    container = d.name;
    if (d.notice) io.stderr.write(`${d.notice}\n`);
  }
  return { cfg, namespace, pod, container };
}

/** Runs `command` in the target container; resolves to the exit code, throws a non-exit failure. */
async function execIn(
  t: Target,
  command: string[],
  streams: { stdin?: Readable; stdout: Writable; stderr: Writable },
  protocol: StreamProtocol,
  io: KexecIO,
): Promise<number> {
  const url = streamUrl(t.cfg, t.namespace, t.pod, 'exec', {
    container: t.container,
    command,
    stdin: Boolean(streams.stdin),
    tty: false,
  });
  const r = await streamRemoteCommand(
    protocol,
    {
      url: url.href,
      headers: t.cfg.headers,
      tls: t.cfg.tls,
      stdin: streams.stdin ?? null,
      stdout: streams.stdout,
      stderr: streams.stderr,
      tty: false,
    },
    io,
  );
  if (r.exitCode === 0 || r.status.reason === 'NonZeroExitCode') return r.exitCode;
  throw new ApiStatusError(r.status);
}

async function copyFromPod(o: CopyOptions, protocol: StreamProtocol, io: KexecIO): Promise<number> {
  const t = await resolveTarget(o, o.src, io);
  const dest = path.resolve(o.dest.file);
  const prefix = remotePrefix(o.src.file);
  const { input, done } = untarTo(dest, prefix, io.stderr);
  let code: number;
  try {
    code = await execIn(
      t,
      ['tar', 'cf', '-', o.src.file],
      { stdout: input, stderr: io.stderr },
      protocol,
      io,
    );
  } finally {
    input.end();
  }
  const outcome = await done.then(
    (report) => ({ report, err: undefined }),
    (err: unknown) => ({ report: undefined, err }),
  );
  // tar found nothing to archive (a missing or unreadable path) and wrote only end-of-archive
  // blocks, which node-tar calls TAR_BAD_ARCHIVE: say what happened instead. tar's own message
  // ("Cannot stat: No such file or directory") went to stderr above.
  if (code !== 0 && (outcome.err || outcome.report!.extracted + outcome.report!.refused === 0)) {
    throw new Error(
      `cannot copy ${t.namespace}/${t.pod}:${o.src.file}: no such file or directory in the container, or not readable (tar exited with code ${code})`,
    );
  }
  if (outcome.err) throw outcome.err;
  const report = outcome.report!;
  if (code !== 0) throw new ExitCodeError(code);
  if (report.refused > 0) {
    throw new Error(
      `refused ${report.refused} tar ${report.refused === 1 ? 'entry' : 'entries'} from ${t.namespace}/${t.pod}:${o.src.file} ` +
        `(outside ${q(dest)}, links, or not under the requested path; see the warnings above)`,
    );
  }
  return 0;
}

async function copyToPod(o: CopyOptions, protocol: StreamProtocol, io: KexecIO): Promise<number> {
  const src = o.src.file;
  if (!fs.existsSync(src)) throw new Error(`${src} doesn't exist in local filesystem`);
  const t = await resolveTarget(o, o.dest, io);
  let destFile = o.dest.file;
  const isDir = await execIn(
    t,
    ['test', '-d', destFile],
    { stdout: discard(), stderr: discard() },
    protocol,
    io,
  );
  if (isDir === 0) destFile = path.posix.join(destFile, path.basename(path.resolve(src)));
  const destBase = path.posix.basename(path.posix.normalize(destFile));
  const archive = tarOf(src, destBase, io.stderr);
  const code = await execIn(
    t,
    ['tar', '-xmf', '-', '-C', path.posix.dirname(destFile)],
    { stdin: archive.stream, stdout: io.stdout, stderr: io.stderr },
    protocol,
    io,
  );
  const failure = archive.failure();
  if (failure) throw new Error(`reading ${src}: ${failure.message} (the copy is incomplete)`);
  if (code !== 0) throw new ExitCodeError(code);
  return 0;
}

/** kubectl cp's Validate and Run: which way, and the checks on the two file specs. */
export async function runCp(opts: CpOptions, io: KexecIO): Promise<number> {
  const o: CopyOptions = { ...opts, src: extractFileSpec(opts.src), dest: extractFileSpec(opts.dest) };
  const protocol = resolveStreamProtocol(o.protocol, io.env);
  if (o.src.pod && o.dest.pod) {
    throw new UsageError('one of src or dest must be a local file specification', COMMAND_PATH);
  }
  if (!o.src.file || !o.dest.file) throw new UsageError('filepath can not be empty', COMMAND_PATH);
  if (o.src.pod) return copyFromPod(o, protocol, io);
  if (o.dest.pod) return copyToPod(o, protocol, io);
  throw new UsageError('one of src or dest must be a remote file specification', COMMAND_PATH);
}
