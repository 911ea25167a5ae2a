/**
 * A process under a pseudo-terminal (node-pty), shaped like the parts of a ChildProcess the runtime
 * uses — `pid`, `stdin`, `stdout`, `exitCode`/`signalCode`, 'exit' and 'close' — so containers and
 * execs with `tty` go through the same lifecycle (stop, remove, shutdown, kill on client exit).
 *
 * Plays the console runc sets up for `terminal: true` (containerd hands the pty master to the CRI
 * streaming code). The process is a session leader with the pty as its controlling terminal, so
 * its pid is also its process group and session id. With a terminal, stderr IS stdout: there is no
 * separate stream, as upstream.
 *
 * - `stdout` is a Readable over the pty master with backpressure: the master is paused while the
 *   reader is full (the process then blocks writing to its terminal). Caveat, from node-pty: after
 *   the process exits, node-pty waits at most 200 ms for the master to drain before it destroys
 *   it, so a reader that stays full longer than that past the exit loses the tail of the output.
 * - `stdin` writes to the master; its end() types the terminal's EOF character (^D), as a user
 *   would — a terminal has no half-close. Writes are queued by node-pty (not bounded here).
 * - 'close' (code, signal) comes once the process has exited AND its output has been read to the
 *   end, as a ChildProcess's does; with the slave held open (see the constructor) that is ~200 ms
 *   after the exit.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import { Readable, Writable } from 'node:stream';
import pty, { type IPty } from 'node-pty';
import type { TerminalSize } from '../shared/remotecommand/codec.js';
import type { ProcessSpec } from './isolation.js';

/** What a terminal has before the client says otherwise (kubectl sends its size at once). */
export const DEFAULT_TERMINAL_SIZE: TerminalSize = { width: 80, height: 24 };

const EOF_CHAR = Buffer.from([0x04]);

interface TerminalEvents {
  exit: [code: number | null, signal: NodeJS.Signals | null];
  close: [code: number | null, signal: NodeJS.Signals | null];
  error: [err: Error];
}

export class TerminalProcess extends EventEmitter<TerminalEvents> {
  readonly pid: number;
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr = null;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  private readonly pty: IPty;
  /** Our own descriptor of the terminal's slave side (see the constructor). */
  private slaveFd: number | undefined;

  /** Throws when the process cannot be started (node-pty fork failure). */
  constructor(spec: ProcessSpec, size: TerminalSize = DEFAULT_TERMINAL_SIZE) {
    super();
    this.pty = pty.spawn(spec.file, spec.args, {
      name: 'xterm',
      cols: clampSize(size.width, DEFAULT_TERMINAL_SIZE.width),
      rows: clampSize(size.height, DEFAULT_TERMINAL_SIZE.height),
      cwd: spec.cwd,
      env: spec.env,
      encoding: null,
    });
    this.pid = this.pty.pid;
    // Hold the slave side open until the process has exited. Otherwise a program that closes its
    // terminal descriptors before exiting (coreutils `cat` does, at exit) makes the master read
    // EIO, node-pty closes the master, and the kernel's hangup SIGHUPs the still-running process:
    // `cat` would "die of SIGHUP" (129) instead of exiting 0. runc's console master likewise stays
    // open until the process is reaped. Cost: node-pty then reports the exit after its 200 ms
    // drain window rather than at the master's EOF.
    const ptsName = (this.pty as unknown as { ptsName?: string }).ptsName;
    try {
      if (ptsName) this.slaveFd = fs.openSync(ptsName, fs.constants.O_RDWR | fs.constants.O_NOCTTY);
    } catch {
      // gone already (the process exited at once): nothing to protect
    }
    this.stdout = new Readable({ read: () => this.pty.resume() });
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.exitCode === null && this.signalCode === null) this.pty.write(chunk);
        cb();
      },
      final: (cb) => {
        if (this.exitCode === null && this.signalCode === null) this.pty.write(EOF_CHAR);
        cb();
      },
    });
    this.pty.onData((data: string | Buffer) => {
      const chunk = typeof data === 'string' ? Buffer.from(data) : data;
      if (!this.stdout.push(chunk)) this.pty.pause();
    });
    // node-pty reports the exit once the master has been read to EOF (or 200 ms passed).
    this.pty.onExit(({ exitCode, signal }) => {
      if (this.slaveFd !== undefined) fs.close(this.slaveFd, () => {});
      this.slaveFd = undefined;
      const sig = signal ? signalName(signal) : null;
      if (sig) this.signalCode = sig;
      else this.exitCode = exitCode;
      this.emit('exit', this.exitCode, this.signalCode);
      this.stdout.push(null);
      const closed = (): void => void this.emit('close', this.exitCode, this.signalCode);
      if (this.stdout.readableEnded) closed();
      else this.stdout.once('end', closed);
      // Nothing reads a stream nobody piped: let it end anyway.
      if (this.stdout.listenerCount('data') === 0 && !this.stdout.readableFlowing) this.stdout.resume();
    });
  }

  /** Sets the terminal size (TIOCSWINSZ; the process gets SIGWINCH). Ignored once it has exited. */
  resize(size: TerminalSize): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    try {
      this.pty.resize(clampSize(size.width, this.pty.cols), clampSize(size.height, this.pty.rows));
    } catch {
      // raced with the exit: the master is gone
    }
  }
}

/** Terminal dimensions are unsigned 16-bit; 0 or junk keeps what there was. */
function clampSize(n: number, fallback: number): number {
  return Number.isInteger(n) && n > 0 ? Math.min(n, 0xffff) : fallback;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, num] of Object.entries(os.constants.signals))
    if (num === n) return name as NodeJS.Signals;
  return null;
}
