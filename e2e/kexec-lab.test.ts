/**
 * kexec against the real lab (apiserver → kubelet-sim → cri-shim, from dist/: `npm run build`
 * first), through lab/lab.ts startLab with its default https apiserver and lab CA (so the
 * kubeconfig's certificate-authority is read by kexec's own loader).
 *
 * Port-forward: to pod `hostnet`, a `hostNetwork: true` pod, which shares the host's network
 * namespace as upstream (cri-shim/port-forward.ts), so a TCP server on the host's 127.0.0.1 is a
 * server in that pod.
 */
import { jest } from '@jest/globals';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { closedPort, upperCaseEcho } from '../shared/test-support/loopback.js';
import { startLab, type Lab } from '../lab/lab.js';
import { demoPod, ensurePod, waitForPodRunning } from '../lab/pods.js';
import { loadClientConfig } from '../kexec/client.js';
import { start } from '../kexec/test-support/io.js';

jest.setTimeout(60_000);

let lab: Lab | undefined;
let dir = '';
let backend: Awaited<ReturnType<typeof upperCaseEcho>>;
let backendPort = 0;
let refusedPort = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-lab-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  const cfg = await loadClientConfig({ kubeconfig: lab.kubeconfigPath });
  const pod = demoPod({ name: 'hostnet' });
  const spec = { ...pod.spec, hostNetwork: true };
  await ensurePod(cfg, { ...pod, spec });
  await waitForPodRunning(cfg, 'default', 'hostnet');
  backend = await upperCaseEcho();
  backendPort = backend.port;
  refusedPort = await closedPort();
});

afterAll(async () => {
  await lab?.stop();
  await backend.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function exchange(port: number, text: string): Promise<string> {
  const s = net.connect({ host: '127.0.0.1', port });
  await once(s, 'connect');
  let got = '';
  s.on('data', (c: Buffer) => {
    got += c.toString();
    if (got.length >= text.length) s.end();
  });
  s.on('error', () => {});
  const closed = once(s, 'close');
  s.write(text);
  await closed;
  return got;
}

describe.each(['websocket', 'spdy'] as const)('kexec port-forward through the lab (%s)', (protocol) => {
  it('forwards, then reports a refused connection and exits 1, as kubectl ≥ 1.28 (kubernetes#117493)', async () => {
    const ac = new AbortController();
    const pf = start(
      [
        '--kubeconfig',
        lab!.kubeconfigPath,
        'port-forward',
        '--protocol',
        protocol,
        'hostnet',
        `:${backendPort}`,
        `:${refusedPort}`,
      ],
      { signal: ac.signal },
    );
    const ready = await Promise.race([
      pf.stdout.waitFor(new RegExp(`127\\.0\\.0\\.1:(\\d+) -> ${refusedPort}\n`)),
      pf.done.then(() => undefined),
    ]);
    expect({ ready: !!ready, stderr: pf.stderr.data }).toEqual({ ready: true, stderr: '' });
    const [, good] = await pf.stdout.waitFor(new RegExp(`127\\.0\\.0\\.1:(\\d+) -> ${backendPort}\n`));
    const [, bad] = ready!;

    expect(await exchange(Number(good), 'first')).toBe('FIRST');
    expect(await exchange(Number(bad), 'nobody')).toBe('');
    await pf.stderr.waitFor(/lost connection to pod\n/);
    expect(pf.stderr.data).toMatch(
      new RegExp(
        `^error: an error occurred forwarding ${bad} -> ${refusedPort}: error forwarding port ${refusedPort} to pod [0-9a-f]+, uid : dial tcp4 127\\.0\\.0\\.1:${refusedPort}: connect: connection refused\nerror: lost connection to pod\n$`,
      ),
    );
    expect(await pf.done).toBe(1);
    ac.abort();
  });
});
