/**
 * Lab 7's check (docs/labs/07-packet-capture-over-https.md): the student captured an exec on `lo`
 * into `DIR/capture.pcapng` while the lab ran with `--tls-keylog DIR/tls-keys.log`, and the
 * capture decrypts. The check runs tshark (Wireshark's CLI, Debian package `tshark`) on the
 * capture with the key log, as the student would, and looks for a decrypted `101 Switching
 * Protocols` whose `Audit-Id` is an exec in the lab's audit log: proof that the very upgrade the
 * apiserver recorded was read in clear text from an https connection.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { isExec, readAudit } from './audit.js';
import type { CheckResult } from './checks.js';

/** Where the lab's doc tells the student to write the capture and the key log. */
export const CAPTURE_FILE = 'capture.pcapng';
export const KEYLOG_FILE = 'tls-keys.log';

/** One decrypted 101: who sent it (the server's port), its Audit-Id and subprotocol, if any. */
export interface Decrypted101 {
  frame: number;
  serverPort: number;
  auditID?: string;
  protocol?: string;
}

/** Runs tshark on a capture; its output, or why it could not run. */
export function tshark(args: string[]): { ok: true; out: string } | { ok: false; error: string } {
  const r = spawnSync('tshark', args, { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 << 20 });
  if (r.error) {
    const missing = (r.error as NodeJS.ErrnoException).code === 'ENOENT';
    return {
      ok: false,
      error: missing ? 'tshark is not installed (apt-get install tshark)' : r.error.message,
    };
  }
  if (r.status !== 0)
    return { ok: false, error: `tshark exited ${r.status}: ${r.stderr.trim().split('\n').at(-1)}` };
  return { ok: true, out: r.stdout };
}

/** The 101 responses tshark can read in `capture` with `keylog` (none when nothing decrypts). */
export function decrypted101s(capture: string, keylog: string): Decrypted101[] | string {
  const r = tshark([
    '-r',
    capture,
    '-o',
    `tls.keylog_file:${keylog}`,
    '-Y',
    'http.response.code == 101',
    '-T',
    'fields',
    '-E',
    'separator=\t',
    '-e',
    'frame.number',
    '-e',
    'tcp.srcport',
    '-e',
    'http.response.line',
  ]);
  if (!r.ok) return r.error;
  return r.out
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const [frame, port, lines = ''] = l.split('\t');
      // http.response.line is every header line, comma-separated, with its \r\n escaped.
      const header = (name: string) =>
        new RegExp(`(?:^|,)${name}: ([^\\\\,]+)`, 'i').exec(lines)?.[1]?.trim();
      return {
        frame: Number(frame),
        serverPort: Number(port),
        auditID: header('Audit-Id'),
        protocol: header('Sec-WebSocket-Protocol') ?? header('X-Stream-Protocol-Version'),
      };
    });
}

/** How many TLS records and WebSocket frames the capture shows (the latter only when decrypted). */
function countFrames(capture: string, keylog: string | undefined, filter: string): number {
  const r = tshark([
    '-r',
    capture,
    ...(keylog ? ['-o', `tls.keylog_file:${keylog}`] : []),
    '-Y',
    filter,
    '-T',
    'fields',
    '-e',
    'frame.number',
  ]);
  return r.ok ? r.out.split('\n').filter((l) => l.trim()).length : 0;
}

export function packetCapture(dir: string): CheckResult {
  const capture = path.join(dir, CAPTURE_FILE);
  const keylog = path.join(dir, KEYLOG_FILE);
  const howTo = [
    `Start the lab with npm start -- --tls-keylog ${keylog}, then capture an exec:`,
    `  tshark -i lo -f 'tcp' -w ${capture} -a duration:20 &   # then: kexec demo -- echo hop`,
  ];
  if (!fs.existsSync(capture)) return { ok: false, lines: [`no capture at ${capture} yet.`, ...howTo] };
  if (!fs.existsSync(keylog)) {
    return { ok: false, lines: [`no TLS key log at ${keylog}: the capture cannot be decrypted.`, ...howTo] };
  }
  const found = decrypted101s(capture, keylog);
  if (typeof found === 'string') return { ok: false, lines: [found] };
  const execs = new Set(
    readAudit(dir)
      .filter(isExec)
      .map((e) => e.auditID),
  );
  const hit = found.find((f) => f.auditID && execs.has(f.auditID));
  if (!hit) {
    const tls = countFrames(capture, undefined, 'tls');
    return {
      ok: false,
      lines: [
        found.length
          ? `${found.length} decrypted 101 Switching Protocols, none with the Audit-Id of an exec in the audit log.`
          : tls
            ? `${tls} TLS records in ${capture}, but nothing in them decrypts with ${keylog}: was the capture made while this lab ran with --tls-keylog?`
            : `no TLS in ${capture}: capture on lo while an exec runs.`,
        ...howTo,
      ],
    };
  }
  const frames = countFrames(capture, keylog, 'websocket');
  return {
    ok: true,
    lines: [
      `decrypted: frame ${hit.frame}, 101 Switching Protocols from port ${hit.serverPort}, Audit-Id ${hit.auditID}${hit.protocol ? `, ${hit.protocol}` : ''}.`,
      `${found.length} upgrades read in clear (one per https hop the capture saw), ${frames} WebSocket frames.`,
    ],
  };
}
