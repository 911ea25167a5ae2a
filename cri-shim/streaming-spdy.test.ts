/**
 * Exec and attach over SPDY/3.1 on the streaming server, driven by the shared SPDY client (what
 * kubectl with KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, or the apiserver, speaks), and the
 * `spdyOnly` mode that refuses WebSockets as real CRI runtimes do.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { runSpdyClient } from '../shared/remotecommand/spdy-client.js';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import { bwrapWorks } from './isolation.js';
import { openWs, startFixture, type ShimFixture } from './test-support/shim-fixture.js';
import { wsExec, wsRefusal } from '../shared/test-support/ws-exec.js';

const MODE = bwrapWorks() ? 'bwrap' : 'none';

function sink(): { w: Writable; text: () => string; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    write: (c: Buffer, _e, cb) => {
      chunks.push(c);
      cb();
    },
  });
  return { w, text: () => Buffer.concat(chunks).toString(), bytes: () => Buffer.concat(chunks) };
}

let fx: ShimFixture;
let containerId: string;

beforeAll(async () => {
  fx = await startFixture(MODE);
  containerId = await fx.start({ name: 'main', command: ['sleep', '1000'] });
});
afterAll(() => fx?.close());

// The client must open the streams the CRI request asked for (else the server times out waiting):
// stderr only where the test passes a stderr sink.
const execUrl = async (cmd: string[], flags: { stdin?: boolean; stderr?: boolean } = {}) =>
  (await fx.rt.exec({ container_id: containerId, cmd, stdout: true, ...flags })).url;

test('exec over SPDY: stdout, stderr and exit code 3 on the error stream (v4 Status)', async () => {
  const out = sink();
  const err = sink();
  const r = await runSpdyClient({
    url: await execUrl(['sh', '-c', 'echo out; echo err >&2; exit 3'], { stderr: true }),
    stdout: out.w,
    stderr: err.w,
  });
  expect(r.protocol).toBe('v4.channel.k8s.io');
  expect(out.text()).toBe('out\n');
  expect(err.text()).toBe('err\n');
  expect(r.exitCode).toBe(3);
  expect(r.status).toMatchObject({
    status: 'Failure',
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: '3' }] },
  });
});

test('exec over SPDY: stdin is echoed and its FIN ends the command', async () => {
  const out = sink();
  const r = await runSpdyClient({
    url: await execUrl(['cat'], { stdin: true }),
    stdin: Readable.from([Buffer.from('line one\n'), Buffer.from('line two\n')]),
    stdout: out.w,
  });
  expect(out.text()).toBe('line one\nline two\n');
  expect(r.exitCode).toBe(0);
  expect(r.status.status).toBe('Success');
});

test('exec over SPDY: 4 MiB through stdin and back arrive intact', async () => {
  const data = randomBytes(4 * 1024 * 1024);
  const chunks: Buffer[] = [];
  for (let i = 0; i < data.length; i += 100_000) chunks.push(data.subarray(i, i + 100_000));
  const out = sink();
  const r = await runSpdyClient({
    url: await execUrl(['cat'], { stdin: true }),
    stdin: Readable.from(chunks),
    stdout: out.w,
  });
  expect(r.exitCode).toBe(0);
  expect(out.bytes().length).toBe(data.length);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  expect(sha(out.bytes())).toBe(sha(data));
});

test('exec over SPDY: a command that does not exist is an InternalError Status', async () => {
  const r = await runSpdyClient({ url: await execUrl(['no-such-command']), stdout: sink().w });
  expect(r.status).toMatchObject({ status: 'Failure', reason: 'InternalError' });
});

test('a SPDY upgrade with no version we speak is refused (403) without spending the token', async () => {
  const url = await execUrl(['echo', 'still valid']);
  await expect(
    runSpdyClient({ url, protocols: ['v9.channel.k8s.io'], stdout: sink().w }),
  ).rejects.toMatchObject({ httpCode: 403 });
  const out = sink();
  const r = await runSpdyClient({ url, stdout: out.w });
  expect(out.text()).toBe('still valid\n');
  expect(r.exitCode).toBe(0);
  // Now it is spent: 404, over either transport.
  const again = await runSpdyClient({ url, stdout: sink().w }).catch((e: unknown) => e);
  expect(again).toBeInstanceOf(UpgradeRefusedError);
  expect((again as UpgradeRefusedError).httpCode).toBe(404);
});

test('attach over SPDY sees the main process output and feeds its stdin', async () => {
  const id = await fx.start({ name: 'echoer', command: ['cat'], stdin: true });
  const { url } = await fx.rt.attach({ container_id: id, stdin: true, stdout: true, stderr: true });
  const out = sink();
  const input = new Readable({ read() {} });
  const run = runSpdyClient({ url, stdin: input, stdout: out.w, stderr: sink().w });
  input.push('over spdy\n');
  const deadline = Date.now() + 10_000;
  while (!out.text().includes('over spdy\n') && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 20));
  expect(out.text()).toBe('over spdy\n');
  await fx.rt.stopContainer({ container_id: id, timeout: 0 });
  const r = await run;
  expect(r.exitCode).toBe(137);
});

describe('spdyOnly', () => {
  let only: ShimFixture;
  let id: string;
  beforeAll(async () => {
    only = await startFixture(MODE, { spdyOnly: true });
    id = await only.start({ name: 'main', command: ['sleep', '1000'] });
  });
  afterAll(() => only?.close());

  test('refuses a WebSocket upgrade with a 400 Status, keeping the token for SPDY', async () => {
    const { url } = await only.rt.exec({ container_id: id, cmd: ['echo', 'spdy only'], stdout: true });
    const refusal = await wsRefusal(url);
    expect(refusal.code).toBe(400);
    expect(JSON.parse(refusal.body)).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      message: expect.stringMatching(/only speaks SPDY\/3\.1/) as unknown,
    });
    const out = sink();
    expect((await runSpdyClient({ url, stdout: out.w })).exitCode).toBe(0);
    expect(out.text()).toBe('spdy only\n');
  });

  test('an attach WebSocket is refused too', async () => {
    const { url } = await only.rt.attach({ container_id: id, stdout: true });
    await expect(openWs(url)).rejects.toThrow(/refused: 400/);
    // The default server still speaks both.
    const ws = await wsExec(await execUrl(['echo', 'ws']));
    expect(ws.stdout).toBe('ws\n');
  });
});

test('a WebSocket offering no channel protocol we speak is refused without spending the token', async () => {
  const url = await execUrl(['echo', 'kept']);
  await expect(wsExec(url, { protocols: ['v9.channel.k8s.io'] })).rejects.toMatchObject({
    refusal: { code: 400 },
  });
  expect((await wsExec(url)).stdout).toBe('kept\n');
});
