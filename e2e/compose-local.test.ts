/**
 * docker-compose.yml without Docker: every service started from the compose file's own command
 * as a local process (lab/compose.ts), in dependency order, with the KEXEC_LAB_* variables mapping
 * the shared volume to a temp dir and the compose network to loopback. The apiserver serves https
 * from the CA that setup made in the shared volume. Needs `npm run build`.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../lab/etcd.js';
import { loadCompose, startComposeService, startOrder } from '../lab/compose.js';
import type { Service } from '../lab/supervisor.js';

let dir = '';
const running: Service[] = [];
const logs: string[] = [];

afterAll(async () => {
  for (const s of running.reverse()) await s.stop();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

it('runs the compose demo: setup, apiserver, node, pod, then `kexec demo -- ls /root`', async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'compose-'));
  const port = await freePort();
  const compose = loadCompose(undefined, {
    KEXEC_LAB_DIR: dir,
    KEXEC_LAB_BIND_ADDRESS: '127.0.0.1',
    KEXEC_LAB_APISERVER_PORT: String(port),
    KEXEC_LAB_APISERVER_URL: `https://127.0.0.1:${port}`,
    KEXEC_LAB_NODE_ADDRESS: '127.0.0.1',
    KEXEC_LAB_KUBELET_PORT: '0',
  });
  const exits: Record<string, number | null> = {};
  for (const name of startOrder(compose)) {
    const svc = compose.services[name];
    const proc = startComposeService(svc, { log: (l) => logs.push(l) });
    if (svc.restart) {
      // long-running: apiserver, node
      running.push(proc);
      await proc.ready;
    } else {
      const e = await proc.exited;
      exits[name] = e.code;
      if (e.code !== 0) break;
    }
  }
  expect(exits).toEqual({ setup: 0, pod: 0, demo: 0 });
  expect(logs).toEqual(expect.arrayContaining(['[demo] README.txt', '[demo] hello.sh', '[demo] notes']));
  expect(fs.readdirSync(path.join(dir, 'pki')).sort()).toEqual([
    'apiserver-kubelet-client.crt',
    'apiserver-kubelet-client.key',
    'apiserver.crt',
    'apiserver.key',
    'ca.crt',
    'ca.key',
    'cri-shim-node-1.crt',
    'cri-shim-node-1.key',
    'kubelet-node-1.crt',
    'kubelet-node-1.key',
  ]);
  expect(logs.some((l) => l.startsWith('[apiserver] READY ') && l.includes('"url":"https://'))).toBe(true);
  // Both hops a client's credentials cross are https: the node's kubelet too.
  expect(logs.some((l) => l.startsWith('[node] READY ') && l.includes('"kubeletUrl":"https://'))).toBe(true);
}, 120_000);
