import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { superviseService } from './restart-policy.js';
import { running } from '../shared/test-support/procfs.js';
import { startService } from './supervisor.js';

const script = path.join(packageRoot(), 'lab', 'test-support', 'fake-service.mjs');

describe('startService', () => {
  it('waits for the READY line and prefixes the output', async () => {
    const lines: string[] = [];
    const svc = startService({ name: 'fake', script, args: ['ready'], log: (l) => lines.push(l) });
    await expect(svc.ready).resolves.toEqual({ service: 'fake', url: 'http://127.0.0.1:1' });
    expect(await svc.stop()).toEqual({ code: 0, signal: null });
    expect(lines).toEqual(
      expect.arrayContaining(['[fake] starting in mode ready', '[fake] not the ready line', '[fake] bye']),
    );
    expect(running(svc.pid)).toBe(false);
  });

  it('rejects ready when the service exits first', async () => {
    const svc = startService({ name: 'fake', script, args: ['early-exit'], log: () => {} });
    await expect(svc.ready).rejects.toThrow('fake exited (code 3) before it was ready');
    expect(await svc.exited).toEqual({ code: 3, signal: null });
  });

  it('kills a service (and its process group) that ignores SIGTERM', async () => {
    const svc = startService({ name: 'fake', script, args: ['stubborn'], log: () => {} });
    const info = await svc.ready;
    const grandchild = Number(info.grandchild);
    expect(running(grandchild)).toBe(true);
    expect(await svc.stop(300)).toEqual({ code: null, signal: 'SIGKILL' });
    // the grandchild was in the same group: gone too (allow the kernel a moment to reap)
    for (let i = 0; i < 50 && running(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
    expect(running(grandchild)).toBe(false);
  });

  it('reports an exit that nobody asked for', async () => {
    const svc = startService({ name: 'fake', script, args: ['crash-later'], log: () => {} });
    await svc.ready;
    expect(await svc.exited).toEqual({ code: 2, signal: null });
    expect(svc.stopping).toBe(false);
  });
});

describe('superviseService (Restart=on-failure)', () => {
  it('starts a crashing service again with back-off, then gives up on a crash loop', async () => {
    const lines: string[] = [];
    const svc = superviseService({
      name: 'fake',
      script,
      args: ['crash-later'],
      log: (l) => lines.push(l),
      policy: { initialDelayMs: 10, maxDelayMs: 40, burst: 3, intervalMs: 60_000 },
    });
    await svc.ready;
    const failure = await svc.failed;
    expect(failure).toEqual({ service: 'fake', reason: 'crash-loop', code: 2, signal: null });
    expect(svc.restarts).toBe(2);
    expect(lines.filter((l) => l.includes('restarting it in'))).toEqual([
      '[lab] fake exited unexpectedly (code 2): restarting it in 10 ms',
      '[lab] fake exited unexpectedly (code 2): restarting it in 20 ms',
    ]);
    expect(lines).toContain('[lab] fake exited (code 2) 3 times within 60 s: a crash loop, it stays down');
  });

  it('does not restart what it was asked to stop', async () => {
    const svc = superviseService({ name: 'fake', script, args: ['ready'], log: () => {} });
    await svc.ready;
    expect(await svc.stop()).toEqual({ code: 0, signal: null });
    await new Promise((r) => setTimeout(r, 300));
    expect(svc.restarts).toBe(0);
    expect(running(svc.current.pid)).toBe(false);
  });
});
