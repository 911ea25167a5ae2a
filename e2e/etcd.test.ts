/**
 * The apiserver on etcd (`startLab({etcd: true})`, `npm start -- --etcd`): SIGKILL the apiserver,
 * start it again with the very argv and environment it had, and nothing needs restoring — the
 * Node the kubelet registered and the demo pod are still there, with their uids, kexec and real
 * kubectl exec into the pod again, and a watch resumes from a resourceVersion handed out before
 * the restart (the way client-go's reflector resumes), seeing what changed after it and no 410.
 *
 * Compare e2e/faults.test.ts, where the in-memory apiserver loses everything on a restart.
 * Needs `npm run build` and `etcd` (Debian package etcd-server).
 */
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { startLab, type Lab } from '../lab/lab.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { launchSpecOf } from './support/faults.js';
import { request } from './support/https.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { runKexec } from './support/processes.js';

interface WatchLine {
  type: string;
  object: {
    kind?: string;
    code?: number;
    metadata?: { name?: string; resourceVersion?: string; labels?: Record<string, string> };
  };
}

/** An HTTP watch on the lab's pods, events collected as they come; `ended` when the server goes. */
function watchPods(lab: Lab, resourceVersion: string) {
  const events: WatchLine[] = [];
  const url = new URL('/api/v1/namespaces/default/pods', lab.apiserverUrl);
  url.searchParams.set('watch', 'true');
  url.searchParams.set('resourceVersion', resourceVersion);
  url.searchParams.set('timeoutSeconds', '60');
  const req = https.get(url, {
    headers: { Authorization: `Bearer ${lab.adminToken}` },
    ca: fs.readFileSync(lab.caFile!),
  });
  const ended = new Promise<number>((resolve) => {
    req.on('error', () => resolve(0));
    req.on('response', (res) => {
      res.on('error', () => {});
      readline
        .createInterface({ input: res })
        .on('line', (l) => events.push(JSON.parse(l) as WatchLine))
        // The apiserver SIGKILLed mid-response: the end of this watch, as for any client.
        .on('error', () => {});
      res.on('close', () => resolve(res.statusCode ?? 0));
    });
  });
  return { events, ended, stop: () => req.destroy() };
}

describe('the apiserver on etcd, SIGKILLed and started again', () => {
  let dir: string;
  let lab: Lab;
  const logs: string[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcd-e2e-'));
    lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, etcd: true, log: (l) => logs.push(l) });
  }, 90_000);

  afterAll(async () => {
    await lab?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = async (p: string) => {
    const res = await request(new URL(p, lab.apiserverUrl), {
      headers: { Authorization: `Bearer ${lab.adminToken}` },
      ca: fs.readFileSync(lab.caFile!),
    });
    return {
      status: res.status,
      body:
        res.status === 200
          ? (res.json() as WatchLine['object'] & { metadata: { uid?: string; resourceVersion?: string } })
          : undefined,
    };
  };

  it('keeps the Node and the pod, serves exec again, and resumes a watch from before the restart', async () => {
    try {
      await killRestartAndCheck();
    } catch (err) {
      // The services' last words explain most failures here.
      if (err instanceof Error) err.message += `\nlast logs:\n${logs.slice(-40).join('\n')}`;
      throw err;
    }
  }, 90_000);

  /** GET etcd's /version trusting the etcd CA, with the client certificate NAME in DIR/pki (if any). */
  function etcdGet(cert?: string): Promise<number> {
    const pki = path.join(lab.dir, 'pki');
    return new Promise((resolve, reject) => {
      https
        .get(`${lab.etcdUrl!}/version`, {
          ca: fs.readFileSync(path.join(pki, 'etcd', 'ca.crt')),
          ...(cert
            ? {
                cert: fs.readFileSync(path.join(pki, `${cert}.crt`)),
                key: fs.readFileSync(path.join(pki, `${cert}.key`)),
              }
            : {}),
        })
        .on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
        .on('error', reject);
    });
  }

  it("opens etcd to the apiserver's etcd client certificate only (an etcd CA of its own, as kubeadm)", async () => {
    expect(await etcdGet('apiserver-etcd-client')).toBe(200);
    // No certificate, or one from the lab CA (the apiserver's kubelet-client one): the handshake fails.
    await expect(etcdGet()).rejects.toThrow();
    await expect(etcdGet('apiserver-kubelet-client')).rejects.toThrow();
    // Plain http on the client port gets nothing either.
    await expect(fetch(lab.etcdUrl!.replace('https:', 'http:') + '/version')).rejects.toThrow();
  });

  async function killRestartAndCheck(): Promise<void> {
    expect(lab.etcdUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const nodeBefore = (await get('/api/v1/nodes/node-1')).body!;
    const podBefore = (await get('/api/v1/namespaces/default/pods/demo')).body!;
    const listBefore = (await get('/api/v1/namespaces/default/pods')).body!;
    const rvBefore = listBefore.metadata.resourceVersion!;

    // A watch open across the kill, from the list's resourceVersion.
    const watch1 = watchPods(lab, rvBefore);

    const pid = lab.pids.apiserver!;
    const spec = launchSpecOf(pid);
    expect(spec.argv).toContain('--etcd-servers');
    process.kill(pid, 'SIGKILL');
    await watch1.ended;
    const lastSeen = watch1.events.at(-1)?.object.metadata?.resourceVersion ?? rvBefore;
    expect(Number(lastSeen)).toBeGreaterThanOrEqual(Number(rvBefore));

    // The lab's supervisor starts it again (Restart=on-failure) on the same port.
    const answers = async () =>
      (await get('/api/v1/nodes/node-1').catch(() => ({ status: 0 }))).status === 200;
    const backBy = Date.now() + 20_000;
    while (!(await answers()) && Date.now() < backBy) await new Promise((r) => setTimeout(r, 200));

    // No restoring by hand: what the kubelet registered and the pod are there, the same objects.
    const nodeAfter = await get('/api/v1/nodes/node-1');
    expect(nodeAfter.status).toBe(200);
    expect(nodeAfter.body!.metadata.uid).toBe(nodeBefore.metadata.uid);
    const podAfter = await get('/api/v1/namespaces/default/pods/demo');
    expect(podAfter.status).toBe(200);
    expect(podAfter.body!.metadata.uid).toBe(podBefore.metadata.uid);

    // A change after the restart, then the watch resumed from where it was: it sees the change,
    // no 410 and no re-sent initial state.
    const kubectl = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
    const labelled = await kubectl.run(['label', 'pod', 'demo', 'after-restart=yes']);
    expect(labelled.stderr).toBe('');
    expect(labelled.code).toBe(0);
    const watch2 = watchPods(lab, lastSeen);
    const sawLabel = () =>
      watch2.events.some(
        (e) => e.type === 'MODIFIED' && e.object.metadata?.labels?.['after-restart'] === 'yes',
      );
    expect(await holdsWithin(sawLabel, 10_000)).toBe(true);
    watch2.stop();
    expect(watch2.events.filter((e) => e.type === 'ERROR')).toEqual([]);
    expect(watch2.events.filter((e) => e.type === 'ADDED')).toEqual([]);
    for (const e of watch2.events)
      expect(Number(e.object.metadata!.resourceVersion)).toBeGreaterThan(Number(lastSeen));

    // Real kubectl, resourceVersion from before the restart: the same history through a raw watch.
    const raw = await kubectl.run([
      'get',
      '--raw',
      `/api/v1/namespaces/default/pods?watch=true&resourceVersion=${rvBefore}&timeoutSeconds=2`,
    ]);
    expect(raw.code).toBe(0);
    const rawEvents = raw.stdout
      .toString()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as WatchLine);
    expect(rawEvents.some((e) => e.object.metadata?.labels?.['after-restart'] === 'yes')).toBe(true);
    expect(rawEvents.filter((e) => e.type === 'ERROR')).toEqual([]);

    // kexec and kubectl exec into the pod again.
    let res = await runKexec(['--kubeconfig', lab.kubeconfigPath, 'demo', '--', 'ls', '/root']);
    const deadline = Date.now() + 20_000;
    while (res.code !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 250));
      res = await runKexec(['--kubeconfig', lab.kubeconfigPath, 'demo', '--', 'ls', '/root']);
    }
    if (res.code !== 0)
      throw new Error(`kexec failed: ${res.stderr}\nlast logs:\n${logs.slice(-30).join('\n')}`);
    expect(res.stdout.toString()).toContain('hello.sh');
    const exec = await kubectl.run(['exec', 'demo', '--', 'ls', '/root']);
    expect(exec.stderr).toBe('');
    expect(exec.stdout.toString()).toContain('hello.sh');
    const nodes = await kubectl.run(['get', 'nodes', '-o', 'name']);
    expect(nodes.stdout.toString().trim()).toBe('node/node-1');
    const pods = await kubectl.run(['get', 'pods', 'demo', '-o', 'jsonpath={.status.phase}']);
    expect(pods.stdout.toString()).toBe('Running');
  }
});
