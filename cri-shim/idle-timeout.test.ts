/**
 * `--streaming-connection-idle-timeout` (issue 6): idle streaming sessions end with an
 * InternalError Status and their process killed; output, or the client's WebSocket pings (what
 * kubectl sends), keep a session open. The 300 ms timeout is waited out for real: the waiting is
 * the behaviour under test.
 */
import { InvalidArgumentError } from 'commander';
import { once } from 'node:events';
import { Writable } from 'node:stream';
import WebSocket from 'ws';
import { runSpdyClient } from '../shared/remotecommand/spdy-client.js';
import {
  DEFAULT_STREAMING_IDLE_TIMEOUT_MS,
  formatDuration,
  idleTimeoutArgument,
  parseGoDuration,
} from './idle-timeout.js';
import { bwrapWorks } from './isolation.js';
import { openWs, startFixture, type ShimFixture } from './test-support/shim-fixture.js';
import { waitFor } from '../shared/test-support/poll.js';
import { wsExec } from '../shared/test-support/ws-exec.js';
import { alive } from '../shared/test-support/procfs.js';

const MODE = bwrapWorks() ? 'bwrap' : 'none';
const IDLE_MS = 300;

describe('the flag value: a Go duration', () => {
  test('parses 4h, 30s, 500ms, 1h30m, 1.5s and 0', () => {
    expect(parseGoDuration('4h')).toBe(4 * 3_600_000);
    expect(parseGoDuration('4h')).toBe(DEFAULT_STREAMING_IDLE_TIMEOUT_MS);
    expect(parseGoDuration('30s')).toBe(30_000);
    expect(parseGoDuration('500ms')).toBe(500);
    expect(parseGoDuration('1h30m')).toBe(90 * 60_000);
    expect(parseGoDuration('1.5s')).toBe(1500);
    expect(parseGoDuration('0')).toBe(0);
    expect(parseGoDuration('0s')).toBe(0);
  });

  test('rejects garbage with a clear error', () => {
    expect(() => parseGoDuration('soon')).toThrow(
      'invalid duration "soon": expected a Go duration such as 4h, 1h30m, 30s, 500ms or 0',
    );
    expect(() => parseGoDuration('30')).toThrow('invalid duration "30": missing unit');
    expect(() => parseGoDuration('-5s')).toThrow('invalid duration "-5s": must not be negative');
    expect(() => parseGoDuration('4hours')).toThrow(/invalid duration "4hours"/);
    expect(() => parseGoDuration('')).toThrow(/invalid duration ""/);
    // What commander gets: an InvalidArgumentError, printed as "option '…' argument '…' is invalid. …".
    expect(() => idleTimeoutArgument('soon')).toThrow(InvalidArgumentError);
    expect(idleTimeoutArgument('30s')).toBe(30_000);
  });

  test('prints durations as Go does', () => {
    expect(formatDuration(DEFAULT_STREAMING_IDLE_TIMEOUT_MS)).toBe('4h0m0s');
    expect(formatDuration(30_000)).toBe('30s');
    expect(formatDuration(300)).toBe('300ms');
  });
});

describe('with a 300 ms idle timeout', () => {
  let fx: ShimFixture;
  let containerId: string;
  const logs: string[] = [];

  beforeAll(async () => {
    fx = await startFixture(MODE, {
      streamingConnectionIdleTimeoutMs: IDLE_MS,
      log: (l) => logs.push(l),
    });
    containerId = await fx.start({ name: 'main', command: ['sleep', '1000'] });
  });
  afterAll(() => fx?.close());

  const execUrl = async (cmd: string[]) =>
    (await fx.rt.exec({ container_id: containerId, cmd, stdout: true })).url;

  /** The pid the shim logged for the exec of `cmd`. */
  const pidOf = (cmd: string[]): number => {
    const line = logs.find((l) => l.includes(': pid ') && l.endsWith(JSON.stringify(cmd)));
    if (!line) throw new Error(`no exec logged for ${JSON.stringify(cmd)}`);
    return Number(/: pid (\d+) /.exec(line)![1]);
  };

  test('an idle exec over WebSocket ends with an InternalError Status and its process is killed', async () => {
    const cmd = ['sleep', '100'];
    const started = Date.now();
    const r = await wsExec(await execUrl(cmd), { timeoutMs: 10_000 });
    const took = Date.now() - started;
    expect(r.status).toMatchObject({
      status: 'Failure',
      reason: 'InternalError',
      message: expect.stringContaining('streaming connection idle timeout: no traffic for 300ms') as unknown,
    });
    expect(took).toBeGreaterThanOrEqual(IDLE_MS);
    expect(took).toBeLessThan(5000);
    const pid = pidOf(cmd);
    await waitFor(`exec pid ${pid} to be killed`, () => !alive(pid), 5000);
  });

  test('an idle exec over SPDY ends the same way', async () => {
    const cmd = ['sleep', '101'];
    const r = await runSpdyClient({
      url: await execUrl(cmd),
      stdout: new Writable({ write: (_c, _e, cb) => cb() }),
    });
    expect(r.status).toMatchObject({
      status: 'Failure',
      reason: 'InternalError',
      message: expect.stringMatching(/idle timeout/) as unknown,
    });
    const pid = pidOf(cmd);
    await waitFor(`exec pid ${pid} to be killed`, () => !alive(pid), 5000);
  });

  test('output every 100 ms for 1 s keeps the session open: it exits 0', async () => {
    const r = await wsExec(
      await execUrl(['sh', '-c', 'for i in 1 2 3 4 5 6 7 8 9 10; do echo $i; sleep 0.1; done']),
      { timeoutMs: 10_000 },
    );
    expect(r.stdout).toBe('1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n');
    expect(r.status).toMatchObject({ status: 'Success' });
  });

  test("a client's WebSocket pings every 100 ms keep an idle session open for 1 s", async () => {
    const cmd = ['sleep', '102'];
    const s = await openWs(await execUrl(cmd));
    let pongs = 0;
    s.ws.on('pong', () => pongs++);
    const pinger = setInterval(() => s.ws.ping(), 100);
    let endedEarly = false;
    void s.closed.then(() => (endedEarly = true));
    try {
      await new Promise((r) => setTimeout(r, 1000)); // more than three idle timeouts
    } finally {
      clearInterval(pinger);
    }
    expect(endedEarly).toBe(false);
    expect(s.ws.readyState).toBe(s.ws.OPEN);
    expect(pongs).toBeGreaterThanOrEqual(5); // the shim answered them
    const pid = pidOf(cmd);
    expect(alive(pid)).toBe(true);
    // The client closes normally: no Status (nothing timed out), and the process goes with it.
    s.ws.close(1000);
    const end = await s.closed;
    expect(end.status).toBeUndefined();
    await waitFor(`exec pid ${pid} to be killed`, () => !alive(pid), 5000);
  });

  test('an idle port-forward connection is closed (1001 "idle timeout")', async () => {
    // Accepted and left silent, inside the pod where port-forward dials.
    const target = await fx.podServer('silent');
    try {
      const { url } = await fx.rt.portForward({ pod_sandbox_id: fx.sandboxId, port: [target.port] });
      const ws = new WebSocket(`${url.replace(/^http/, 'ws')}?port=${target.port}`, ['v4.channel.k8s.io']);
      const started = Date.now();
      const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
      expect(code).toBe(1001);
      expect(reason.toString()).toBe('idle timeout');
      expect(Date.now() - started).toBeGreaterThanOrEqual(IDLE_MS);
    } finally {
      await target.close();
    }
  });
});
