/**
 * Attach: fan-out of the main process's output to several clients, a slow client disconnected
 * without holding up the container or the others, and `stdinOnce`. Unit tests drive serveAttach
 * with a fake container and sessions; the end-to-end ones go through the real shim over WebSocket.
 */
import { EventEmitter } from 'node:events';
import { PassThrough, Readable, Writable } from 'node:stream';
import type { RemoteCommandSession } from '../shared/remotecommand/session.js';
import type { Status } from '../shared/status.js';
import { serveAttach } from './attach-session.js';
import type { AttachRequestEntry } from './request-cache.js';
import type { Container, ContainerRuntime } from './runtime.js';
import { openWs, startFixture, type ShimFixture } from './test-support/shim-fixture.js';
import { waitFor } from '../shared/test-support/poll.js';

// ---- unit: serveAttach with fakes ----

class FakeSession extends EventEmitter {
  readonly stdin: Readable | null;
  readonly stdout: Writable;
  readonly stderr = null;
  readonly protocol = { name: 'v5.channel.k8s.io', version: 5 as const, base64: false };
  readonly streams = { stdin: true, stdout: true, stderr: false, tty: false };
  received: Buffer[] = [];
  status: Status | undefined;
  isClosed = false;
  /** A stalled client: its writes never complete. */
  constructor(opts: { stalled?: boolean; stdin?: boolean } = {}) {
    super();
    this.stdin = opts.stdin ? new PassThrough() : null;
    this.stdout = new Writable({
      highWaterMark: 16 * 1024,
      write: (c: Buffer, _e, cb) => {
        this.received.push(c);
        if (!opts.stalled) cb();
      },
    });
  }
  finish(status: Status): Promise<void> {
    this.status = status;
    return this.close();
  }
  close(): Promise<void> {
    if (!this.isClosed) {
      this.isClosed = true;
      this.emit('close');
    }
    return Promise.resolve();
  }
}

function fakeContainer(opts: { stdinOnce?: boolean } = {}) {
  const stdin = new PassThrough();
  const container = {
    id: 'c'.repeat(64),
    stdin: true,
    stdinOnce: !!opts.stdinOnce,
    stdinOnceSpent: false,
    tty: false,
    main: { pid: 1, stdin },
    events: new EventEmitter(),
  } as unknown as Container;
  const runtime = { runningContainer: () => container } as unknown as ContainerRuntime;
  return { container, runtime, stdin };
}

const req: AttachRequestEntry = {
  kind: 'attach',
  containerId: 'c'.repeat(64),
  stdin: true,
  stdout: true,
  stderr: false,
  tty: false,
};

test('a stalled client is disconnected at the limit; the others and the container go on', async () => {
  const { container, runtime } = fakeContainer();
  const slow = new FakeSession({ stalled: true });
  const fast = new FakeSession();
  const logs: string[] = [];
  const slowDone = serveAttach(runtime, req, slow as unknown as RemoteCommandSession, (l) => logs.push(l), {
    outputLimit: 64 * 1024,
  });
  const fastDone = serveAttach(runtime, req, fast as unknown as RemoteCommandSession, () => {});
  const chunk = Buffer.alloc(8 * 1024, 'x');
  // 1 MiB of output: emitting never blocks, whatever the clients do.
  for (let i = 0; i < 128; i++) container.events.emit('output', 'stdout', chunk);
  await slowDone;
  expect(slow.status).toMatchObject({ status: 'Failure', reason: 'InternalError' });
  expect(slow.status?.message).toMatch(/fell more than 65536 bytes behind/);
  // What it holds is bounded by the limit (plus the chunk that was in flight).
  expect(slow.stdout.writableLength).toBeLessThanOrEqual(64 * 1024);
  expect(container.events.listenerCount('output')).toBe(1); // only the fast client's
  expect(Buffer.concat(fast.received).length).toBe(128 * chunk.length);
  container.events.emit('exit', 0);
  await fastDone;
  expect(fast.status).toEqual({ metadata: {}, status: 'Success' });
  expect(container.events.listenerCount('output')).toBe(0);
  expect(logs.join('\n')).toMatch(/disconnected/);
});

test('several clients feed stdin; stdinOnce closes it when the first one detaches', async () => {
  const { container, runtime, stdin } = fakeContainer({ stdinOnce: true });
  const got: string[] = [];
  stdin.on('data', (c: Buffer) => got.push(c.toString()));
  const a = new FakeSession({ stdin: true });
  const b = new FakeSession({ stdin: true });
  void serveAttach(runtime, req, a as unknown as RemoteCommandSession, () => {});
  void serveAttach(runtime, req, b as unknown as RemoteCommandSession, () => {});
  (a.stdin as PassThrough).write('from a\n');
  (b.stdin as PassThrough).write('from b\n');
  await waitFor('both inputs', () => got.join('') === 'from a\nfrom b\n', 2000);
  expect(stdin.writableEnded).toBe(false);
  await a.close(); // a detaches: stdinOnce ends the container's stdin
  expect(stdin.writableEnded).toBe(true);
  expect(container.stdinOnceSpent).toBe(true);
  // A later client's stdin goes nowhere (and nothing throws writing after end).
  const c = new FakeSession({ stdin: true });
  void serveAttach(runtime, req, c as unknown as RemoteCommandSession, () => {});
  (c.stdin as PassThrough).write('too late\n');
  await new Promise((r) => setTimeout(r, 20));
  expect(got.join('')).toBe('from a\nfrom b\n');
  container.events.emit('exit', 0);
});

test('without stdinOnce the stdin stays open across attach sessions', async () => {
  const { runtime, stdin } = fakeContainer();
  const a = new FakeSession({ stdin: true });
  void serveAttach(runtime, req, a as unknown as RemoteCommandSession, () => {});
  (a.stdin as PassThrough).end('bye\n');
  await a.close();
  expect(stdin.writableEnded).toBe(false);
});

// ---- end to end over the real shim ----

describe('attach end to end', () => {
  let fx: ShimFixture;
  beforeAll(async () => {
    fx = await startFixture('none');
  });
  afterAll(() => fx?.close());

  const attachUrl = async (id: string, stdin: boolean) =>
    (await fx.rt.attach({ container_id: id, stdin, stdout: true, stderr: true })).url;

  test('two attached clients both see the output; either can type', async () => {
    const id = await fx.start({ name: 'cat', command: ['cat'], stdin: true });
    const a = await openWs(await attachUrl(id, true));
    const b = await openWs(await attachUrl(id, true));
    a.stdin('one\n');
    await Promise.all([a.waitFor(/^one\n$/), b.waitFor(/^one\n$/)]);
    b.stdin('two\n');
    await Promise.all([a.waitFor(/^one\ntwo\n$/), b.waitFor(/^one\ntwo\n$/)]);
    await fx.rt.stopContainer({ container_id: id, timeout: 0 });
    expect((await a.closed).status).toMatchObject({ reason: 'NonZeroExitCode' });
    expect((await b.closed).status).toMatchObject({ reason: 'NonZeroExitCode' });
  });

  test('stdinOnce: the first client detaching closes the main process stdin (cat then exits 0)', async () => {
    const id = await fx.start({ name: 'once', command: ['cat'], stdin: true, stdin_once: true });
    const watcher = await openWs(await attachUrl(id, false));
    const typist = await openWs(await attachUrl(id, true));
    typist.stdin('only once\n');
    await watcher.waitFor(/only once\n/);
    typist.closeStdin(); // v5 CLOSE on stdin: the client is done with it
    expect((await watcher.closed).status).toEqual({ metadata: {}, status: 'Success' });
    const { status } = await fx.rt.containerStatus({ container_id: id });
    expect(status).toMatchObject({ state: 'CONTAINER_EXITED', exit_code: 0 });
  });
});
