/**
 * `kexec attach` against a fake apiserver on loopback: the attach query (as exec's, without a
 * command), kubectl's notices, TTY reconciliation with the container's `tty`, both protocols.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { PROMPT_HINT, RECORDING_NOTICE } from './attach.js';
import { kexec } from './cli.js';
import { startFakeApiserver, type FakeApiserver } from './test-support/fake-apiserver.js';
import { run, Sink, writeKubeconfig } from './test-support/io.js';

const TOKEN = 'tok';
let api: FakeApiserver;
let dir = '';
let kc = '';
const NOTICES = `${RECORDING_NOTICE}\n${PROMPT_HINT}\n`;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-attach-'));
  api = await startFakeApiserver({ token: TOKEN, accept: { websocket: true, spdy: true } });
  api.pods.set('demo', { name: 'demo' });
  api.pods.set('shell', { name: 'shell', containers: [{ name: 'sh', tty: true, stdin: true }] });
  api.pods.set('done', { name: 'done', phase: 'Succeeded' });
  kc = writeKubeconfig(dir, 'kubeconfig', api.url, TOKEN);
});

afterAll(async () => {
  await api.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => (api.seen.length = 0));

const lastUpgrade = () => api.seen.filter((s) => s.upgrade !== undefined).at(-1)!;

describe('kexec attach', () => {
  it('GETs the pod, then attaches with stdout and stderr; prints kubectl’s notices on stderr', async () => {
    const r = await run(['attach', '--kubeconfig', kc, 'demo']);
    expect(r).toEqual({ code: 0, stdout: 'attach: attached\n', stderr: NOTICES });
    expect(api.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET /api/v1/namespaces/default/pods/demo',
      'GET /api/v1/namespaces/default/pods/demo/attach?container=demo&stdout=true&stderr=true',
    ]);
  });

  it('-i sends stdin; -q prints only the session', async () => {
    const r = await run(['attach', '--kubeconfig', kc, '-i', '-q', 'pod/demo'], { input: 'typed\n' });
    expect(r).toEqual({ code: 0, stdout: 'attach: attached\nstdin: typed\n', stderr: '' });
    expect(lastUpgrade().url).toBe(
      '/api/v1/namespaces/default/pods/demo/attach?container=demo&stdin=true&stdout=true&stderr=true',
    );
  });

  it('-t on a container without a TTY: kubectl’s notice, and no tty in the query', async () => {
    const r = await run(['attach', '--kubeconfig', kc, '-it', 'demo'], { input: '' });
    expect(r.stderr).toBe(`error: Unable to use a TTY - container demo did not allocate one\n${NOTICES}`);
    expect(lastUpgrade().url).not.toContain('tty=');
  });

  it('a container with a TTY and a terminal: tty=true, no stderr, raw mode, the resume hint', async () => {
    const stdin = Object.assign(new PassThrough(), {
      isTTY: true,
      isRaw: false,
      setRawMode(mode: boolean) {
        this.isRaw = mode;
        return this;
      },
    });
    const stdout = Object.assign(new Sink(), { isTTY: true, columns: 80, rows: 24 });
    const stderr = new Sink();
    const done = kexec(['attach', '--kubeconfig', kc, '-i', 'shell'], { stdin, stdout, stderr, env: {} });
    await stdout.waitFor(/attach: attached\n/);
    stdin.end('ls\n');
    expect(await done).toBe(0);
    expect(lastUpgrade().url).toBe(
      '/api/v1/namespaces/default/pods/shell/attach?container=sh&stdin=true&stdout=true&tty=true',
    );
    expect(stdout.data).toBe(
      "attach: attached\nstdin: ls\nSession ended, resume using 'kexec attach shell -c sh -n default -i -t' command\n",
    );
    expect(stderr.data).toBe(NOTICES);
    expect(stdin.isRaw).toBe(false);
  });

  it('goes over SPDY with --protocol spdy (same code path as exec)', async () => {
    const r = await run(['attach', '--kubeconfig', kc, '--protocol', 'spdy', '-q', 'demo']);
    expect(r).toEqual({ code: 0, stdout: 'attach: attached\n', stderr: '' });
    expect(lastUpgrade()).toMatchObject({
      method: 'POST',
      upgrade: 'SPDY/3.1',
      url: '/api/v1/namespaces/default/pods/demo/attach?container=demo&stdout=true&stderr=true',
    });
  });

  it('refuses a completed pod and a missing container, as kubectl words it', async () => {
    expect((await run(['attach', '--kubeconfig', kc, 'done'])).stderr).toBe(
      'error: cannot attach a container in a completed pod; current phase is Succeeded\n',
    );
    expect((await run(['attach', '--kubeconfig', kc, '-c', 'nope', 'demo'])).stderr).toBe(
      'error: cannot attach to the container: container nope not found in pod demo\n',
    );
    expect((await run(['attach', '--kubeconfig', kc])).stderr).toBe(
      "error: at least 1 argument is required for attach\nSee 'kexec attach -h' for help and examples\n",
    );
  });
});
