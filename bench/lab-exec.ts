/**
 * The benches' exec: one WebSocket (v5) exec in the lab's demo pod as the lab admin, output
 * discarded; resolves with the command's exit code.
 */
import { PassThrough } from 'node:stream';
import type { Lab } from '../lab/lab.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';

export async function execInDemo(lab: Lab, tls: { ca: Buffer }, cmd: string[]): Promise<number> {
  const u = new URL('/api/v1/namespaces/default/pods/demo/exec', lab.apiserverUrl);
  for (const c of cmd) u.searchParams.append('command', c);
  u.searchParams.set('container', 'demo');
  u.searchParams.set('stdout', 'true');
  u.searchParams.set('stderr', 'true');
  const r = await runChannelClient({
    url: u.href,
    headers: { Authorization: `Bearer ${lab.adminToken}` },
    tls,
    stdout: new PassThrough().resume(),
    stderr: new PassThrough().resume(),
    handshakeTimeoutMs: 30_000,
  });
  return r.exitCode;
}
