/**
 * `--protocol` for exec and attach against a fake apiserver on loopback: WebSocket (GET), SPDY
 * (POST `Upgrade: SPDY/3.1`), KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, and `auto` falling back to
 * SPDY only when the WebSocket upgrade is refused with an HTTP answer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isUpgradeFailure, resolveStreamProtocol } from './remotecommand-executor.js';
import { startFakeApiserver, type FakeApiserver } from './test-support/fake-apiserver.js';
import { run, writeKubeconfig } from './test-support/io.js';

const TOKEN = 'tok';
let api: FakeApiserver;
let dir = '';
let kc = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-proto-'));
  api = await startFakeApiserver({ token: TOKEN, accept: { websocket: true, spdy: true } });
  api.pods.set('demo', { name: 'demo' });
  kc = writeKubeconfig(dir, 'kubeconfig', api.url, TOKEN);
});

afterAll(async () => {
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  api.seen.length = 0;
  api.accept.websocket = true;
  api.accept.spdy = true;
});

/** The upgrade requests the server saw, as `METHOD upgrade`. */
const upgrades = () => api.seen.filter((s) => s.upgrade !== undefined).map((s) => `${s.method} ${s.upgrade}`);

describe('resolveStreamProtocol', () => {
  it('takes the flag, else the environment, else websocket', () => {
    expect(resolveStreamProtocol('spdy', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'true' })).toBe('spdy');
    expect(resolveStreamProtocol('auto', {})).toBe('auto');
    expect(resolveStreamProtocol(undefined, {})).toBe('auto');
    expect(resolveStreamProtocol(undefined, { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'False' })).toBe('spdy');
    expect(resolveStreamProtocol(undefined, { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'true' })).toBe('auto');
    expect(resolveStreamProtocol('websocket', { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' })).toBe(
      'websocket',
    );
  });

  it('counts only non-101 HTTP answers as upgrade failures', () => {
    expect(isUpgradeFailure(Object.assign(new Error('x'), { httpCode: 400 }))).toBe(true);
    expect(isUpgradeFailure(Object.assign(new Error('x'), { httpCode: 403 }))).toBe(true);
    expect(isUpgradeFailure(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))).toBe(
      false,
    );
    expect(isUpgradeFailure(undefined)).toBe(false);
  });
});

describe('kexec exec --protocol', () => {
  it('uses a WebSocket GET by default, offering v5 only as client-go does', async () => {
    const r = await run(['--kubeconfig', kc, 'demo', '--', 'ls']);
    expect(r).toEqual({ code: 0, stdout: 'exec: ls\n', stderr: '' });
    expect(upgrades()).toEqual(['GET websocket']);
    expect(api.seen.at(-1)!.protocols).toBe('v5.channel.k8s.io');
  });

  it('uses a SPDY POST to the same URL with --protocol spdy, with stdin and the exit code', async () => {
    const r = await run(['--kubeconfig', kc, '--protocol', 'spdy', '-i', 'demo', '--', 'exit', '4'], {
      input: 'hi\n',
    });
    expect(r).toEqual({
      code: 4,
      stdout: 'exec: exit 4\nstdin: hi\n',
      stderr: 'command terminated with exit code 4\n',
    });
    expect(upgrades()).toEqual(['POST SPDY/3.1']);
    expect(api.seen.at(-1)!.url).toBe(
      '/api/v1/namespaces/default/pods/demo/exec?command=exit&command=4&container=demo&stdin=true&stdout=true&stderr=true',
    );
  });

  it('uses SPDY when KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false, unless the flag says otherwise', async () => {
    const env = { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false' };
    expect((await run(['--kubeconfig', kc, 'demo', '--', 'ls'], { env })).code).toBe(0);
    expect(
      (await run(['--kubeconfig', kc, '--protocol', 'websocket', 'demo', '--', 'ls'], { env })).code,
    ).toBe(0);
    expect(upgrades()).toEqual(['POST SPDY/3.1', 'GET websocket']);
  });

  it('auto: falls back to SPDY when the WebSocket upgrade is refused with 400, stdin intact', async () => {
    api.accept.websocket = false;
    const r = await run(['--kubeconfig', kc, '--protocol', 'auto', '-i', 'demo', '--', 'cat'], {
      input: 'all of it\n',
    });
    expect(r).toEqual({ code: 0, stdout: 'exec: cat\nstdin: all of it\n', stderr: '' });
    expect(upgrades()).toEqual(['GET websocket', 'POST SPDY/3.1']);
  });

  it('auto: stays on WebSocket when it works', async () => {
    expect((await run(['--kubeconfig', kc, '--protocol', 'auto', 'demo', '--', 'ls'])).code).toBe(0);
    expect(upgrades()).toEqual(['GET websocket']);
  });

  it('by default falls back to SPDY when the v5 WebSocket is refused, as kubectl does', async () => {
    api.accept.websocket = false;
    const r = await run(['--kubeconfig', kc, '-i', 'demo', '--', 'cat'], { input: 'eof ends it\n' });
    expect(r).toEqual({ code: 0, stdout: 'exec: cat\nstdin: eof ends it\n', stderr: '' });
    expect(upgrades()).toEqual(['GET websocket', 'POST SPDY/3.1']);
  });

  it('--protocol websocket does not fall back: the refusal is reported', async () => {
    api.accept.websocket = false;
    const r = await run(['--kubeconfig', kc, '--protocol', 'websocket', 'demo', '--', 'ls']);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Error from server (BadRequest): unable to upgrade: WebSocket is not served here\n',
    });
    expect(upgrades()).toEqual(['GET websocket']);
  });

  it('auto: when SPDY is refused too, the SPDY refusal is reported', async () => {
    api.accept.websocket = false;
    api.accept.spdy = false;
    const r = await run(['--kubeconfig', kc, '--protocol', 'auto', 'demo', '--', 'ls']);
    expect(r.stderr).toBe('Error from server (BadRequest): unable to upgrade: SPDY is not served here\n');
    expect(upgrades()).toEqual(['GET websocket', 'POST SPDY/3.1']);
  });

  it('refuses an unknown protocol as a usage error', async () => {
    const r = await run(['--kubeconfig', kc, '--protocol', 'http2', 'demo', '--', 'ls']);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(
      'error: invalid argument "http2" for "--protocol": must be one of websocket, spdy, auto\n' +
        "See 'kexec exec -h' for help and examples\n",
    );
  });
});
