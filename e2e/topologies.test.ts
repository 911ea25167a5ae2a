/**
 * The two topologies of the exec path (issue 4), each a real lab:
 * - like kube-apiserver 1.30+ with containerd: the runtime speaks SPDY only, and the apiserver's
 *   StreamTranslator ends v5 WebSocket clients and speaks SPDY to the kubelet;
 * - the translator gate off: a v5 WebSocket is spliced untouched all the way to the runtime.
 * The cri-shim logs which transport reached it, so each test shows the path it took.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { startLab, type Lab, type LabOptions } from '../lab/lab.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { runKexec } from './support/processes.js';

interface Running {
  lab: Lab;
  logs: string[];
}

const dirs: string[] = [];
const labs: Lab[] = [];
afterAll(async () => {
  for (const l of labs) await l.stop();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function lab(opts: LabOptions): Promise<Running> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'topology-'));
  dirs.push(dir);
  const logs: string[] = [];
  const l = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: (line) => logs.push(line), ...opts });
  labs.push(l);
  return { lab: l, logs };
}

/** The cri-shim's session lines that appeared while `fn` ran. */
async function sessionsDuring(r: Running, fn: () => Promise<void>): Promise<string[]> {
  const from = r.logs.length;
  await fn();
  return r.logs.slice(from).filter((l) => /^\[cri-shim\].* exec in \w+ over /.test(l));
}

const ls =
  (r: Running, ...flags: string[]) =>
  async () => {
    const res = await runKexec(['--kubeconfig', r.lab.kubeconfigPath, ...flags, 'demo', '--', 'ls', '/root']);
    expect({ code: res.code, out: res.stdout.toString(), err: res.stderr }).toEqual({
      code: 0,
      out: 'README.txt\nhello.sh\nnotes\n',
      err: '',
    });
  };

describe('SPDY-only runtime behind the StreamTranslator (kube-apiserver 1.30+ with containerd)', () => {
  let r: Running;
  beforeAll(async () => {
    r = await lab({ spdyOnlyRuntime: true });
  }, 90_000);

  it('serves a v5 WebSocket client: the runtime sees SPDY', async () => {
    const seen = await sessionsDuring(r, ls(r));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/over SPDY\/3\.1 \(v4\.channel\.k8s\.io\)( |$)/);
  });

  it.each(KUBECTL_CLIENTS.map((c) => [c.name, c] as const))('serves %s', async (_n, client) => {
    const k = new Kubectl(client, r.lab.kubeconfigPath, path.join(r.lab.dir, `home-${client.name.length}`));
    const seen = await sessionsDuring(r, async () => {
      const res = await k.run(['exec', 'demo', '--', 'sh', '-c', 'echo hi; exit 3']);
      expect({ code: res.code, out: res.stdout.toString() }).toEqual({ code: 3, out: 'hi\n' });
    });
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/over SPDY\/3\.1/);
  });

  it('refuses a WebSocket it cannot translate (v4 is spliced) with the runtime Status', async () => {
    const err = await runChannelClient({
      url: `${r.lab.apiserverUrl}/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true`,
      headers: { Authorization: `Bearer ${r.lab.adminToken}` },
      tls: { ca: fs.readFileSync(r.lab.caFile!) },
      protocols: ['v4.channel.k8s.io'],
      stdout: new PassThrough(),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UpgradeRefusedError);
    expect((err as UpgradeRefusedError).httpCode).toBe(400);
    expect((err as UpgradeRefusedError).status.message).toMatch(/only speaks SPDY/);
  });
});

describe('StreamTranslator off: WebSocket spliced end to end', () => {
  let r: Running;
  beforeAll(async () => {
    r = await lab({ streamTranslation: false });
  }, 90_000);

  it('carries a v5 WebSocket to the runtime untouched', async () => {
    const seen = await sessionsDuring(r, ls(r));
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatch(/over WebSocket \(v5\.channel\.k8s\.io\)( |$)/);
  });

  it('still carries SPDY (kubectl v1.20)', async () => {
    const old = KUBECTL_CLIENTS.find((c) => c.version === 'v1.20')!;
    const k = new Kubectl(old, r.lab.kubeconfigPath, path.join(r.lab.dir, 'home-old'));
    const seen = await sessionsDuring(r, async () => {
      const res = await k.run(['exec', 'demo', '--', 'ls', '/root']);
      expect(res.code).toBe(0);
    });
    expect(seen[0]).toMatch(/over SPDY\/3\.1 \(v4\.channel\.k8s\.io\)( |$)/);
  });
});
