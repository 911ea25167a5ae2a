/**
 * The lab launcher with the real services (from dist/: `npm run build` first), in-process through
 * startLab: READY lines, the lab CA, credentials, kubeconfig, the demo pod, the exec chain through
 * kexec, a clean stop; and a plain-http lab (`insecureHttp`) whose apiserver is killed and comes back.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable, PassThrough } from 'node:stream';
import YAML from 'yaml';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { kexec } from '../kexec/cli.js';
import { apiJson, loadClientConfig } from '../kexec/client.js';
import type { Pod } from '../shared/api/core-v1.js';
import { pathHint } from './kexec-bin.js';
import { startLab, tryCommands, type Lab } from './lab.js';
import { alive } from '../shared/test-support/procfs.js';

class Sink extends Writable {
  data = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.data += chunk.toString();
    cb();
  }
}

async function kexecLs(kubeconfig: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await kexec(['--kubeconfig', kubeconfig, 'demo', '--', 'ls', '/root'], {
    stdin: new PassThrough(),
    stdout,
    stderr,
    runChannelClient,
  });
  return { code, stdout: stdout.data, stderr: stderr.data };
}

function kubeconfigCluster(file: string): Record<string, unknown> {
  const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as {
    clusters: { cluster: Record<string, unknown> }[];
  };
  return doc.clusters[0]!.cluster;
}

async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 20));
  return !alive(pid);
}

let dir = '';
let lab: Lab | undefined;
const logs: string[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-'));
  lab = await startLab({ dir: path.join(dir, 'state'), port: 0, log: (l) => logs.push(l) });
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('startLab', () => {
  it('starts three separate service processes and prefixes their output', () => {
    const pids = lab!.pids;
    expect(Object.keys(pids).sort()).toEqual(['apiserver', 'cri-shim', 'kubelet-sim']);
    expect(new Set(Object.values(pids)).size).toBe(3);
    for (const pid of Object.values(pids)) expect(alive(pid)).toBe(true);
    expect(logs.some((l) => l.startsWith('[apiserver] READY '))).toBe(true);
    expect(logs.some((l) => l.startsWith('[kubelet-sim] READY '))).toBe(true);
    expect(
      logs.some((l) => l.startsWith('[cri-shim] READY ') && l.includes('"streamingUrl":"https://')),
    ).toBe(true);
  });

  it('serves https from the lab CA, which the kubeconfig carries', () => {
    expect(lab!.apiserverUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(lab!.caFile).toBe(path.join(dir, 'state', 'pki', 'ca.crt'));
    expect(kubeconfigCluster(lab!.kubeconfigPath)).toEqual({
      server: lab!.apiserverUrl,
      'certificate-authority-data': fs.readFileSync(lab!.caFile!).toString('base64'),
    });
    expect(logs).toContain(
      `[lab] lab CA ${lab!.caFile}; apiserver serving certificate ${path.join(dir, 'state', 'pki', 'apiserver.crt')}`,
    );
    const kubectl = tryCommands(lab!.kubeconfigPath, lab!.apiserverUrl, dir).at(-1);
    expect(kubectl).toBe('KUBECONFIG=state/kubeconfig kubectl exec demo -- ls /root');
  });

  it('writes a kubeconfig with the real apiserver port and the admin token; the demo pod runs', async () => {
    expect(lab!.apiserverUrl).not.toMatch(/:0$/);
    expect(fs.statSync(lab!.kubeconfigPath).mode & 0o777).toBe(0o600);
    const cfg = await loadClientConfig({ kubeconfig: lab!.kubeconfigPath });
    expect(cfg.server.origin).toBe(lab!.apiserverUrl);
    const pod = await apiJson<Pod>(cfg, 'GET', '/api/v1/namespaces/default/pods/demo', {
      resource: 'pods',
    });
    expect(pod.spec?.nodeName).toBe('node-1');
    expect(pod.spec?.containers?.map((c) => c.name)).toEqual(['demo']);
    expect(pod.status?.phase).toBe('Running');
  });

  it('kexec runs a command in the demo pod through the three hops', async () => {
    const { code, stdout, stderr } = await kexecLs(lab!.kubeconfigPath);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/README\.txt/);
  });

  // Issue 13: a kexec that starts at once, without npx (and without --kubeconfig).
  it('writes DIR/bin/kexec, which runs this checkout’s kexec with the lab’s kubeconfig', () => {
    expect(lab!.kexecBinDir).toBe(path.join(dir, 'state', 'bin'));
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${lab!.kexecBinDir}:${process.env.PATH ?? ''}` };
    delete env.KUBECONFIG;
    const r = spawnSync('kexec', ['demo', '--', 'ls', '/root'], { env, cwd: dir, encoding: 'utf8' });
    expect({ code: r.status, stderr: r.stderr }).toEqual({ code: 0, stderr: '' });
    expect(r.stdout).toMatch(/README\.txt/);
    expect(tryCommands(lab!.kubeconfigPath, lab!.apiserverUrl, dir)[0]).toBe('kexec demo -- ls /root');
    expect(pathHint(lab!.kexecBinDir, dir)).toMatch(/^export PATH="\$PWD\/state\/bin:\$PATH"/);
  });

  it('stops every process, and a second stop is harmless', async () => {
    const pids = Object.values(lab!.pids);
    await lab!.stop();
    await lab!.stop();
    for (const pid of pids) expect(await gone(pid)).toBe(true);
  });
});

describe('an --insecure-http lab', () => {
  let plain: Lab | undefined;
  beforeAll(async () => {
    plain = await startLab({ dir: path.join(dir, 'plain'), port: 0, insecureHttp: true, log: () => {} });
  }, 90_000);
  afterAll(() => plain?.stop());

  it('serves plain http, makes no CA, and kexec still runs through the three hops', async () => {
    expect(plain!.apiserverUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(plain!.caFile).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'plain', 'pki'))).toBe(false);
    expect(kubeconfigCluster(plain!.kubeconfigPath)).toEqual({
      server: plain!.apiserverUrl,
      'insecure-skip-tls-verify': true,
    });
    const { code, stdout, stderr } = await kexecLs(plain!.kubeconfigPath);
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    expect(stdout).toMatch(/README\.txt/);
    expect(tryCommands(plain!.kubeconfigPath, plain!.apiserverUrl).at(-1)).toMatch(
      /# needs https \(start without --insecure-http\)/,
    );
  });

  it('brings a killed apiserver back: its objects (kept in memory) are made again and kexec works', async () => {
    const killed = plain!.pids.apiserver;
    process.kill(killed, 'SIGKILL');
    expect(await gone(killed)).toBe(true);
    let last = { code: -1, stdout: '', stderr: '' };
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline) {
      last = await kexecLs(plain!.kubeconfigPath);
      if (last.code === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(last).toMatchObject({ code: 0, stderr: '' });
    const stillUp = await Promise.race([plain!.failed, new Promise((r) => setTimeout(() => r('up'), 10))]);
    expect(stillUp).toBe('up');
    await plain!.stop();
    for (const pid of Object.values(plain!.pids)) expect(await gone(pid)).toBe(true);
  }, 60_000);
});
