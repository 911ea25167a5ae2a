/**
 * Exec and containers with `tty`: a real pseudo-terminal inside the container's isolation, sized
 * from the client's first resize message, resized later, and killed with its whole session when
 * the client goes away. Runs per isolation mode that works here (bwrap binds the terminal's own
 * /dev/pts node into the container).
 */
import fs from 'node:fs';
import { Writable } from 'node:stream';
import { runSpdyClient } from '../shared/remotecommand/spdy-client.js';
import { bwrapWorks, type IsolationMode } from './isolation.js';
import { openWs, startFixture, type ShimFixture } from './test-support/shim-fixture.js';
import { waitFor } from '../shared/test-support/poll.js';
import { alive, processesWithArgv, sessionMembers } from '../shared/test-support/procfs.js';

const MODES: IsolationMode[] = bwrapWorks() ? ['bwrap', 'none'] : ['none'];

describe.each(MODES)('terminals with isolation %s', (mode) => {
  let fx: ShimFixture;
  let containerId: string;

  beforeAll(async () => {
    fx = await startFixture(mode);
    containerId = await fx.start({ name: 'main', command: ['sleep', '1000'] });
  });
  afterAll(() => fx?.close());

  const ttyExec = async (cmd: string[], stdin = false) =>
    (await fx.rt.exec({ container_id: containerId, cmd, stdout: true, stdin, tty: true })).url;

  test('`stty size` reports the initial resize (40x132) from the first instruction', async () => {
    const s = await openWs(await ttyExec(['stty', 'size']));
    s.resize(132, 40);
    const { status } = await s.closed;
    expect(s.stdout()).toBe('40 132\r\n');
    expect(status?.status).toBe('Success');
  });

  test('over SPDY too: the resize stream sizes the terminal', async () => {
    let out = '';
    const r = await runSpdyClient({
      url: await ttyExec(['stty', 'size']),
      stdout: new Writable({
        write: (c: Buffer, _e, cb) => {
          out += c.toString();
          cb();
        },
      }),
      tty: true,
      resize: (send) => {
        send({ width: 132, height: 40 });
        return () => {};
      },
    });
    expect(r.exitCode).toBe(0);
    expect(out).toBe('40 132\r\n');
  });

  test('a later resize changes the size the process sees', async () => {
    const s = await openWs(await ttyExec(['sh', '-c', 'stty size; read x; stty size'], true));
    s.resize(132, 40);
    await s.waitFor(/40 132\r\n/);
    s.resize(100, 30);
    s.stdin('\r');
    await s.waitFor(/30 100\r\n/);
    expect((await s.closed).status?.status).toBe('Success');
  });

  // Issue 13: TERM was unset in tty sessions (full-screen programs refused to start). containerd
  // sets TERM=xterm for a tty exec; without a terminal the container's env is left alone.
  test('a tty exec has TERM=xterm, a plain one no TERM', async () => {
    const s = await openWs(await ttyExec(['sh', '-c', 'echo "TERM=$TERM"']));
    s.resize(80, 24);
    await s.closed;
    expect(s.stdout()).toBe('TERM=xterm\r\n');
    const url = (
      await fx.rt.exec({
        container_id: containerId,
        cmd: ['sh', '-c', 'echo "TERM=${TERM-unset}"'],
        stdout: true,
      })
    ).url;
    const plain = await openWs(url);
    await plain.closed;
    expect(plain.stdout()).toBe('TERM=unset\n');
  });

  test('`tty` names a /dev/pts terminal inside the container', async () => {
    const s = await openWs(await ttyExec(['tty']));
    s.resize(80, 24);
    await s.closed;
    expect(s.stdout()).toMatch(/^\/dev\/pts\/\d+\r\n$/);
  });

  test('typed input is echoed by the terminal; ^D (stdin CLOSE) ends cat', async () => {
    const s = await openWs(await ttyExec(['cat'], true));
    s.resize(80, 24);
    s.stdin('hello\r');
    // Once from the terminal's echo, once from cat.
    await s.waitFor(/hello\r\nhello\r\n/);
    s.closeStdin();
    expect((await s.closed).status).toEqual({ metadata: {}, status: 'Success' });
  });

  test('exit codes survive the terminal', async () => {
    const s = await openWs(await ttyExec(['sh', '-c', 'exit 3']));
    s.resize(80, 24);
    expect((await s.closed).status).toMatchObject({ reason: 'NonZeroExitCode' });
  });

  test('closing the client kills the terminal process and everything it started', async () => {
    const c = fx.shim.runtime.containers.get(containerId)!;
    const before = new Set(c.execs);
    // A job-control shell would put `sleep` in a group of its own, and the command leads its own
    // session inside the sandbox: what must die is every process it started.
    const mark = String(70000 + Math.floor(Math.random() * 10000));
    const sleeps = () => processesWithArgv(['sleep', mark]);
    const s = await openWs(await ttyExec(['sh', '-c', `sleep ${mark} & sleep ${mark} & wait`], true));
    s.resize(80, 24);
    await waitFor('the exec to start', () => [...c.execs].some((p) => !before.has(p)), 5000);
    const pid = [...c.execs].find((p) => !before.has(p))!.pid!;
    await waitFor('the sleeps to start', () => sleeps().length === 2, 5000);
    s.ws.terminate();
    await waitFor('the processes to die', () => !alive(pid) && sleeps().length === 0, 5000);
    await waitFor('exec forgotten', () => !c.execs.size || [...c.execs].every((p) => before.has(p)), 5000);
  });

  test('a tty container runs its main process on a terminal; attach sees it and types into it', async () => {
    const id = await fx.start({
      name: 'shell',
      command: ['sh', '-c', 'tty; while read line; do echo "got $line"; stty size; done'],
      stdin: true,
      tty: true,
    });
    const { url } = await fx.rt.attach({ container_id: id, stdin: true, stdout: true, tty: true });
    const s = await openWs(url);
    s.resize(120, 33);
    s.stdin('abc\r');
    await s.waitFor(/got abc\r\n33 120\r\n/);
    const main = fx.shim.runtime.containers.get(id)!.main!;
    await fx.rt.stopContainer({ container_id: id, timeout: 0 });
    expect((await s.closed).status).toMatchObject({ reason: 'NonZeroExitCode' });
    expect(sessionMembers(main.pid!)).toEqual([]);
    const { status } = await fx.rt.containerStatus({ container_id: id });
    // The log has the terminal's output as stdout lines, `tty` first.
    expect(fs.readFileSync(status!.log_path, 'utf8')).toMatch(/ stdout F \/dev\/pts\/\d+\r?\n/);
  });
});
