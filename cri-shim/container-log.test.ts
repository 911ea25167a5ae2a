/**
 * The CRI log writer on its own: line splitting, F/P tags, stream names, the timestamp format.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { formatRfc3339Nano, parseLogLine } from '../shared/cri/log-format.js';
import { ContainerLog } from './container-log.js';

let tmp: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'container-log-'));
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const TS = '2024-05-01T10:20:30.123456789Z';
const read = (f: string): string[] => fs.readFileSync(f, 'utf8').split('\n').slice(0, -1);

test('complete lines are F lines of their stream; a chunk may hold several or half a line', () => {
  const file = path.join(tmp, 'nested', 'dir', '0.log');
  const log = new ContainerLog(file, { now: () => TS });
  const out = log.stream('stdout');
  const err = log.stream('stderr');
  out.write(Buffer.from('hello\nwor'));
  err.write(Buffer.from('oops\n'));
  out.write(Buffer.from('ld\n\n'));
  out.end();
  err.end();
  log.close();
  expect(read(file)).toEqual([
    `${TS} stdout F hello`,
    `${TS} stderr F oops`,
    `${TS} stdout F world`,
    `${TS} stdout F `,
  ]);
});

test('long lines are cut into P parts of the maximum size; the rest is F', () => {
  const file = path.join(tmp, 'c.log');
  const log = new ContainerLog(file, { now: () => TS, maxLineBytes: 4 });
  const out = log.stream('stdout');
  out.write(Buffer.from('abcdef'));
  out.write(Buffer.from('ghij\nxy\n'));
  log.close();
  expect(read(file)).toEqual([
    `${TS} stdout P abcd`,
    `${TS} stdout P efgh`,
    `${TS} stdout F ij`,
    `${TS} stdout F xy`,
  ]);
});

test('what is left without a newline when the stream ends is a P line', () => {
  const file = path.join(tmp, 'c.log');
  const log = new ContainerLog(file, { now: () => TS });
  const err = log.stream('stderr');
  err.write(Buffer.from('done\nprompt> '));
  expect(read(file)).toEqual([`${TS} stderr F done`]); // the unfinished line waits for its newline
  err.end();
  log.close();
  expect(read(file)).toEqual([`${TS} stderr F done`, `${TS} stderr P prompt> `]);
  const parsed = parseLogLine(Buffer.from(`${TS} stderr P prompt> \n`))!;
  expect(parsed).toMatchObject({ stream: 'stderr', partial: true });
  expect(parsed.content.toString()).toBe('prompt> ');
});

test('the default clock writes RFC3339Nano UTC timestamps, trailing zeros dropped', () => {
  expect(formatRfc3339Nano(1_714_558_830_123_456_789n)).toBe('2024-05-01T10:20:30.123456789Z');
  expect(formatRfc3339Nano(1_714_558_830_120_000_000n)).toBe('2024-05-01T10:20:30.12Z');
  expect(formatRfc3339Nano(1_714_558_830_000_000_000n)).toBe('2024-05-01T10:20:30Z');
  const file = path.join(tmp, 'c.log');
  const log = new ContainerLog(file);
  const before = Date.now();
  log.stream('stdout').write(Buffer.from('x\n'));
  log.close();
  const [line] = read(file);
  expect(line).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z stdout F x$/);
  const ms = parseLogLine(Buffer.from(`${line}\n`))!.timeMs;
  expect(Math.abs(ms - before)).toBeLessThan(5000);
});
