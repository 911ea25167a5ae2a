/**
 * The CRI log reader: parsing, tailLines (also on a file much larger than its read blocks),
 * timestamps, since, limitBytes, follow until the container stops, abort.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { formatLogLine, parseLogLine } from './log-format.js';
import { copyCriLog, findTailLineStart, readCriLog, type CriLogOptions } from './logs.js';

let tmp: string;
let file: string;
beforeEach(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cri-logs-'));
  file = path.join(tmp, '0.log');
});
afterEach(() => fs.rmSync(tmp, { recursive: true, force: true }));

const line = (ts: string, stream: 'stdout' | 'stderr', tag: 'F' | 'P', content: string): string =>
  formatLogLine(ts, stream, tag, Buffer.from(content)).toString();

async function collect(opts: CriLogOptions = {}, f = file): Promise<{ all: string; stderr: string }> {
  let all = '';
  let stderr = '';
  for await (const c of readCriLog(f, opts)) {
    all += c.data.toString();
    if (c.stream === 'stderr') stderr += c.data.toString();
  }
  return { all, stderr };
}

const SAMPLE =
  line('2024-05-01T10:00:00.1Z', 'stdout', 'F', 'one') +
  line('2024-05-01T10:00:01Z', 'stderr', 'F', 'two') +
  line('2024-05-01T10:00:02.000000003Z', 'stdout', 'P', 'thr') +
  line('2024-05-01T10:00:02.000000004Z', 'stdout', 'F', 'ee') +
  'this line is not in the CRI format\n' +
  line('2024-05-01T10:00:03+02:00', 'stdout', 'F', 'four');

test('parseLogLine: fields, partial lines lose their newline, junk is rejected', () => {
  const m = parseLogLine(Buffer.from('2016-10-06T00:17:09.669794202Z stdout P log content 1\n'))!;
  expect(m).toMatchObject({ timestamp: '2016-10-06T00:17:09.669794202Z', stream: 'stdout', partial: true });
  expect(m.content.toString()).toBe('log content 1');
  expect(m.timeMs).toBeCloseTo(Date.UTC(2016, 9, 6, 0, 17, 9, 669) + 0.794202, 3);
  const f = parseLogLine(Buffer.from('2016-10-06T00:17:09Z stderr F:x a  b\n'))!;
  expect(f).toMatchObject({ stream: 'stderr', partial: false });
  expect(f.content.toString()).toBe('a  b\n');
  for (const bad of ['x stdout F a\n', '2016-10-06T00:17:09Z stdin F a\n', '2016-10-06T00:17:09Z stdout\n']) {
    expect(parseLogLine(Buffer.from(bad))).toBeUndefined();
  }
});

test('reads everything: partial lines joined, both streams, junk skipped', async () => {
  fs.writeFileSync(file, SAMPLE);
  const r = await collect();
  expect(r.all).toBe('one\ntwo\nthree\nfour\n');
  expect(r.stderr).toBe('two\n');
});

test('timestamps: fixed nine digits, once per logical line', async () => {
  fs.writeFileSync(file, SAMPLE);
  expect((await collect({ timestamps: true })).all).toBe(
    '2024-05-01T10:00:00.100000000Z one\n' +
      '2024-05-01T10:00:01.000000000Z two\n' +
      '2024-05-01T10:00:02.000000003Z three\n' +
      '2024-05-01T10:00:03.000000000+02:00 four\n',
  );
});

test('tailLines counts file lines from the end; 0 gives nothing; more than there are gives all', async () => {
  fs.writeFileSync(file, SAMPLE);
  expect((await collect({ tailLines: 1 })).all).toBe('four\n');
  expect((await collect({ tailLines: 3 })).all).toBe('ee\nfour\n'); // the junk line counts as a line
  expect((await collect({ tailLines: 0 })).all).toBe('');
  expect((await collect({ tailLines: 100 })).all).toBe('one\ntwo\nthree\nfour\n');
  // A last line without its newline is a line too.
  fs.writeFileSync(
    file,
    line('2024-05-01T10:00:00Z', 'stdout', 'F', 'a') + '2024-05-01T10:00:00Z stdout F b',
  );
  expect((await collect({ tailLines: 1 })).all).toBe('b\n');
});

test('tailLines on a large file reads only blocks from the end', async () => {
  const n = 50_000;
  const fd = fs.openSync(file, 'w');
  let batch = '';
  for (let i = 0; i < n; i++) {
    batch += line('2024-05-01T10:00:00Z', 'stdout', 'F', `line-${i}`);
    if (batch.length > 1 << 20) {
      fs.writeSync(fd, batch);
      batch = '';
    }
  }
  fs.writeSync(fd, batch);
  fs.closeSync(fd);
  const fh = await fs.promises.open(file, 'r');
  const reads: number[] = [];
  const origRead = fh.read.bind(fh);
  (fh as unknown as { read: typeof fh.read }).read = ((...args: Parameters<typeof fh.read>) => {
    reads.push(1);
    return origRead(...args);
  }) as typeof fh.read;
  const start = await findTailLineStart(fh, 3);
  await fh.close();
  expect(reads.length).toBeLessThanOrEqual(3); // the last byte, then one 4 KiB block
  expect(fs.statSync(file).size - start).toBe(
    3 * line('2024-05-01T10:00:00Z', 'stdout', 'F', 'line-49999').length,
  );
  expect((await collect({ tailLines: 3 })).all).toBe('line-49997\nline-49998\nline-49999\n');
});

test('since skips older lines; limitBytes cuts the output', async () => {
  fs.writeFileSync(file, SAMPLE);
  // "four" is stamped 10:00:03+02:00, i.e. 08:00:03Z: older than the bound.
  expect((await collect({ sinceTime: new Date('2024-05-01T10:00:01Z') })).all).toBe('two\nthree\n');
  expect((await collect({ sinceSeconds: 60 })).all).toBe(''); // all of it is older than a minute
  expect((await collect({ limitBytes: 6 })).all).toBe('one\ntw');
  expect((await collect({ limitBytes: 6, timestamps: true })).all).toBe('2024-0');
});

test('follow: new lines arrive as they are written, and it ends once the container stopped and the file is drained', async () => {
  fs.writeFileSync(file, line('2024-05-01T10:00:00Z', 'stdout', 'F', 'first'));
  let running = true;
  const out = new PassThrough();
  const received: string[] = [];
  const waiting: Array<[string, () => void]> = [];
  out.on('data', (c: Buffer) => {
    received.push(c.toString());
    for (const [want, resolve] of waiting) if (received.join('').includes(want)) resolve();
  });
  const seen = (want: string): Promise<void> =>
    new Promise((resolve) => (received.join('').includes(want) ? resolve() : waiting.push([want, resolve])));
  const done = copyCriLog(file, { follow: true, isRunning: () => running, pollIntervalMs: 200 }, out);
  await seen('first\n');
  fs.appendFileSync(file, line('2024-05-01T10:00:01Z', 'stderr', 'F', 'second'));
  await seen('second\n');
  // The last words of the container are written, then it stops: the reader still gets them.
  fs.appendFileSync(file, line('2024-05-01T10:00:02Z', 'stdout', 'F', 'last'));
  running = false;
  await done;
  expect(received.join('')).toBe('first\nsecond\nlast\n');
});

test('follow: aborting stops it; tailLines picks the starting point', async () => {
  fs.writeFileSync(file, SAMPLE);
  const ac = new AbortController();
  const chunks: string[] = [];
  const reading = (async () => {
    for await (const c of readCriLog(file, { follow: true, tailLines: 1, signal: ac.signal })) {
      chunks.push(c.data.toString());
      ac.abort();
    }
  })();
  await reading;
  expect(chunks).toEqual(['four\n']);
});

test('a missing file is a NOT_FOUND CriLogError', async () => {
  await expect(collect({}, path.join(tmp, 'nope.log'))).rejects.toMatchObject({ code: 'NOT_FOUND' });
});
