/**
 * The death watch on its own: ending its pipe (what the kernel does when the cri-shim dies, and
 * what `close()` does) kills the listed sessions, children in other process groups included, and
 * nothing it was told to forget. The cri-shim SIGKILLed for real: e2e/isolation-none.test.ts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import { DeathWatch } from './death-watch.js';
import { waitFor } from '../shared/test-support/poll.js';

const started: ChildProcess[] = [];
afterEach(() => {
  for (const c of started.splice(0)) {
    try {
      process.kill(-c.pid!, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** pids of live processes whose argv contains `word`. */
function withArg(word: string): number[] {
  const found: number[] = [];
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (fs.readFileSync(`/proc/${e}/cmdline`, 'utf8').split('\0').includes(word)) found.push(Number(e));
    } catch {
      // ended while we looked
    }
  }
  return found;
}

/** A session leader (as the runtime spawns them) whose shell starts two sleeps marked `tag`. */
function session(tag: string, jobControl = false): ChildProcess {
  const child = spawn('sh', ['-c', `${jobControl ? 'set -m; ' : ''}sleep ${tag} & sleep ${tag}; :`], {
    detached: true,
    stdio: 'ignore',
  });
  started.push(child);
  return child;
}

let seq = 0;
/** A sleep length no other process here uses (seconds; the tests end long before). */
const tag = (): string => `1${process.pid}${seq++}`;

test('ending the pipe kills every listed session, its other process groups included', async () => {
  const watch = new DeathWatch(() => {});
  const [a, b] = [tag(), tag()];
  watch.track(session(a).pid);
  watch.track(session(b, true).pid);
  await waitFor(
    "both sessions' sleeps to start",
    () => withArg(a).length === 2 && withArg(b).length === 2,
    5000,
  );
  await watch.close();
  await waitFor('both sessions to be killed', () => withArg(a).length + withArg(b).length === 0, 5000);
});

test('a session it was told to forget is left alone', async () => {
  const lines: string[] = [];
  const watch = new DeathWatch((l) => lines.push(l));
  const [kept, killed] = [tag(), tag()];
  const forgotten = session(kept);
  watch.track(forgotten.pid);
  watch.track(session(killed).pid);
  watch.untrack(forgotten.pid);
  await waitFor(
    "both sessions' sleeps to start",
    () => withArg(kept).length === 2 && withArg(killed).length === 2,
    5000,
  );
  await watch.close();
  await waitFor('the listed session to be killed', () => withArg(killed).length === 0, 5000);
  expect(withArg(kept)).toHaveLength(2);
  expect(lines).toEqual([]);
});
