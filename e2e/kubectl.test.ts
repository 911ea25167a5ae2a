/**
 * Wire compatibility judged by real kubectl binaries against the lab (three real processes):
 * current kubectl over WebSocket, current kubectl forced onto SPDY, and kubectl v1.20, which only
 * speaks SPDY. Every command's output and exit code are asserted. On each runtime
 * (e2e/support/runtimes.ts): the cri-shim, and a real containerd.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pty from 'node-pty';
import { startLab, type Lab } from '../lab/lab.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { waitForPodPort, waitForPort } from './support/processes.js';
import { E2E_RUNTIMES, podYaml, STTY_SIZE_SOON } from './support/runtimes.js';

describe.each(E2E_RUNTIMES)('runtime %s', (runtime) => {
  let dir = '';
  let lab: Lab;
  const WEB_PORT = 20000 + Math.floor(Math.random() * 20000);
  const CLOSED_PORT = WEB_PORT + 1;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubectl-e2e-'));
    lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, runtime, log: () => {} });
    const admin = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home-setup'));
    const manifests = [
      podYaml('ticker', ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done']),
      // busybox httpd: in the image on containerd, on the host's /usr for the cri-shim.
      podYaml('web', [
        'sh',
        '-c',
        `mkdir -p /tmp/www && echo 'hello from pod' > /tmp/www/index.html && exec busybox httpd -f -p ${WEB_PORT} -h /tmp/www`,
      ]),
    ].join('---\n');
    const applied = await admin.run(['apply', '-f', '-'], manifests);
    expect(applied.stderr).toBe('');
    const ready = await admin.run([
      'wait',
      '--for=condition=Ready',
      'pod/ticker',
      'pod/web',
      '--timeout=60s',
    ]);
    expect(ready.stderr).toBe('');
    // Every pod has a network namespace of its own: a containerd pod is reached at its address,
    // a cri-shim pod (loopback only) is probed from inside.
    if (runtime === 'cri-shim') {
      await waitForPodPort(lab.kubeconfigPath, 'web', WEB_PORT);
    } else {
      const ip = await admin.run(['get', 'pod', 'web', '-o', 'jsonpath={.status.podIP}']);
      await waitForPort(WEB_PORT, 15_000, ip.stdout.toString());
    }
  }, 120_000);

  afterAll(async () => {
    await lab?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  describe.each(KUBECTL_CLIENTS.map((c, i) => [c.name, c, i] as const))('%s', (_name, client, index) => {
    let k: Kubectl;
    beforeAll(() => {
      k = new Kubectl(client, lab.kubeconfigPath, path.join(dir, `home-${index}`));
    });

    it('exec demo -- ls /root', async () => {
      const res = await k.run(['exec', 'demo', '--', 'ls', '/root']);
      expect({ code: res.code, out: res.stdout.toString(), err: res.stderr }).toEqual({
        code: 0,
        out: 'README.txt\nhello.sh\nnotes\n',
        err: '',
      });
    });

    it('propagates exit code 3', async () => {
      const res = await k.run(['exec', 'demo', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
      expect(res.code).toBe(3);
      expect(res.stdout.toString()).toBe('out\n');
      expect(res.stderr).toContain('err\n');
      expect(res.stderr).toContain('command terminated with exit code 3');
    });

    it('exec -i carries 16 MiB of stdin (sha256)', async () => {
      const data = randomBytes(16 * 1024 * 1024);
      const res = await k.run(['exec', '-i', 'demo', '--', 'sha256sum'], data);
      expect(res.code).toBe(0);
      expect(res.stdout.toString()).toBe(`${sha256(data)}  -\n`);
    });

    it('exec -it gives the command a terminal of the client size', async () => {
      // containerd starts the command before it applies the client's first size (the cri-shim
      // waits for it): busybox's `stty size` fails on a 0x0 terminal, so ask until it answers (bounded).
      const term = pty.spawn(k.bin, ['exec', '-it', 'demo', '--', 'sh', '-c', `${STTY_SIZE_SOON}; tty`], {
        cols: 132,
        rows: 40,
        env: k.env() as Record<string, string>,
      });
      let out = '';
      term.onData((d) => (out += d));
      const [exit] = (await new Promise((resolve) => term.onExit((e) => resolve([e])))) as [
        { exitCode: number },
      ];
      expect(exit.exitCode).toBe(0);
      expect(out).toMatch(/^40 132\r?$/m);
      expect(out).toMatch(/^\/dev\/pts\/\d+\r?$/m);
    });

    it('attach shows the main process output', async () => {
      const child = k.start(['attach', 'ticker']);
      child.stdin!.end();
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      while (!/tick \d+\n[^]*tick \d+\n/.test(out)) {
        const [, code] = await Promise.race([
          once(child.stdout!, 'data'),
          once(child, 'exit').then((e) => [null, e]),
        ]);
        if (code) throw new Error(`kubectl attach exited early: ${out}`);
      }
      child.kill();
    });

    it('cp copies a file into the pod and back', async () => {
      const local = path.join(dir, `cp-in-${index}`);
      const back = path.join(dir, `cp-out-${index}`);
      const data = randomBytes(256 * 1024);
      fs.writeFileSync(local, data);
      const up = await k.run(['cp', local, `demo:/tmp/cp-${index}`]);
      expect(up.code).toBe(0);
      const down = await k.run(['cp', `demo:/tmp/cp-${index}`, back]);
      expect(down.code).toBe(0);
      expect(sha256(fs.readFileSync(back))).toBe(sha256(data));
    });

    it('port-forward: two connections in a row, one after an error', async () => {
      /** Starts `kubectl port-forward` and resolves the local port of each remote one. */
      const forward = async (...remotes: number[]) => {
        // -v=7 makes kubectl say how it dialled (the WebSocket tunnel, or SPDY).
        const child = k.start(['port-forward', '-v=7', 'pod/web', ...remotes.map((r) => `:${r}`)]);
        let out = '';
        let err = '';
        child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
        const local = (remote: number) =>
          new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remote}`).exec(out);
        while (!remotes.every(local)) {
          if (child.exitCode !== null) throw new Error(`port-forward exited: ${out} ${err}`);
          await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
        }
        return { child, stderr: () => err, ports: remotes.map((r) => Number(local(r)![1])) };
      };
      const get = async (port: number) => (await fetch(`http://127.0.0.1:${port}/`)).text();

      const first = await forward(WEB_PORT, CLOSED_PORT);
      const [webPort, closedPort] = first.ports as [number, number];
      try {
        expect(await get(webPort)).toBe('hello from pod\n');
        if (client.version === 'v1.35' && !client.forceSpdy) {
          // kubectl 1.31+ tunnels SPDY through a WebSocket (SPDY/3.1+portforward.k8s.io), no fallback.
          expect(first.stderr()).toContain('negotiated protocol: portforward.k8s.io');
          expect(first.stderr()).toContain('tunneling_connection');
          expect(first.stderr()).not.toContain('fallback to secondary dialer');
        }
        expect(await get(webPort)).toBe('hello from pod\n');
        // Nothing listens on CLOSED_PORT in the pod: that connection fails and is closed.
        const exited = once(first.child, 'exit');
        const bad = net.connect(closedPort, '127.0.0.1');
        bad.on('error', () => {});
        bad.write('GET / HTTP/1.0\r\n\r\n');
        // A reset or a close, never data (events.once would reject on the reset's 'error').
        const gotData = await new Promise<boolean>((resolve) => {
          bad.once('data', () => resolve(true));
          bad.once('close', () => resolve(false));
        });
        expect(gotData).toBe(false);
        if (client.version === 'v1.20') {
          // Old kubectl reports nothing fatal and carries on with the same connection.
          expect(await get(webPort)).toBe('hello from pod\n');
          expect(first.child.exitCode).toBeNull();
        } else {
          // Since kubernetes#117493 kubectl drops the whole connection on a forwarding error and
          // exits, as it does against a real cluster; the error names the cause.
          await exited;
          expect(first.stderr()).toMatch(/an error occurred forwarding \d+ -> \d+: .*connection refused/);
          expect(first.stderr()).toContain('lost connection to pod');
          // The chain itself survived the error: a new port-forward works at once.
          const again = await forward(WEB_PORT);
          try {
            expect(await get(again.ports[0]!)).toBe('hello from pod\n');
          } finally {
            again.child.kill();
          }
        }
      } finally {
        first.child.kill();
      }
    });

    it('logs and logs -f', async () => {
      const logs = await k.run(['logs', 'ticker', '--tail=3']);
      expect(logs.code).toBe(0);
      expect(logs.stdout.toString()).toMatch(/^(tick \d+\n){3}$/);
      const child = k.start(['logs', '-f', 'ticker', '--tail=1']);
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      // A line the container writes after the request started arrives: -f really follows.
      while ((out.match(/tick \d+\n/g) ?? []).length < 3) {
        if (child.exitCode !== null) throw new Error(`logs -f exited: ${out}`);
        await Promise.race([once(child.stdout!, 'data'), once(child, 'exit')]);
      }
      const ticks = out.match(/tick (\d+)/g)!.map((t) => Number(t.split(' ')[1]));
      expect(ticks[2]).toBeGreaterThan(ticks[0]!);
      child.kill();
    });

    it('get pods, apply -f and delete', async () => {
      const name = `applied-${index}`;
      const applied = await k.run(['apply', '-f', '-'], podYaml(name, ['sleep', '3600']));
      expect({ code: applied.code, out: applied.stdout.toString() }).toEqual({
        code: 0,
        out: `pod/${name} created\n`,
      });
      const get = await k.run(['get', 'pods']);
      expect(get.code).toBe(0);
      expect(get.stdout.toString()).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\n/);
      expect(get.stdout.toString()).toMatch(/^demo\s+1\/1\s+Running\s+0\s+\S+$/m);
      expect(get.stdout.toString()).toMatch(new RegExp(`^${name}\\s`, 'm'));
      const del = await k.run(['delete', 'pod', name]);
      expect(del.code).toBe(0);
      expect(del.stdout.toString()).toMatch(new RegExp(`^pod "${name}" deleted`));
      const after = await k.run(['get', 'pod', name]);
      expect(after.code).toBe(1);
      expect(after.stderr).toContain(`Error from server (NotFound): pods "${name}" not found`);
    });
  });

  // Issue 13: describe node read no Lease ("Failed to get lease") and divided by a missing
  // allocatable (-9223372036854775808%).
  it('describe node shows the node Lease and sane requests', async () => {
    const k = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home-describe'));
    const r = await k.run(['describe', 'node', 'node-1']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const out = r.stdout.toString();
    expect(out).toMatch(/Lease:\n\s+HolderIdentity:\s+node-1\n\s+AcquireTime:\s+\S.*\n\s+RenewTime:\s+\S/);
    expect(out).not.toContain('Failed to get lease');
    expect(out).not.toContain('-9223372036854775808');
    expect(out).toMatch(/default\s+demo\s+0 \(0%\)\s+0 \(0%\)\s+0 \(0%\)\s+0 \(0%\)/);
  });
});
