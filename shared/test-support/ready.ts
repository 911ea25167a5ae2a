/**
 * Waits for a service a test spawned to print its READY line (shared/ready-line.ts), bounded:
 * rejects with its stderr if it exits first or prints nothing within `timeoutMs` (then it is
 * SIGKILLed). The lab's supervisor does the same for the lab (lab/supervisor.ts).
 */
import type { ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import { parseReadyLine, type ReadyInfo } from '../ready-line.js';

export function readyLineOf<T extends ReadyInfo = ReadyInfo>(
  child: ChildProcess,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const stderr: string[] = [];
  const keep = (c: Buffer) => stderr.push(c.toString());
  child.stderr?.on('data', keep);
  return new Promise<T>((resolve, reject) => {
    const lines = readline.createInterface({ input: child.stdout!, crlfDelay: Infinity });
    const done = () => {
      clearTimeout(timer);
      child.off('exit', onExit);
      child.stderr?.off('data', keep);
      lines.close();
      child.stdout!.resume();
    };
    const timer = setTimeout(() => {
      done();
      child.kill('SIGKILL');
      reject(new Error(`${what}: no READY line within ${timeoutMs} ms\n${stderr.join('')}`));
    }, timeoutMs);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      done();
      reject(new Error(`${what} exited early (${code ?? signal})\n${stderr.join('')}`));
    };
    child.once('exit', onExit);
    lines.on('line', (line) => {
      try {
        const ready = parseReadyLine(line);
        if (!ready) return;
        done();
        resolve(ready as T);
      } catch (err) {
        done();
        reject(new Error(`${what} printed a READY line that is not JSON: ${line} (${String(err)})`));
      }
    });
  });
}
