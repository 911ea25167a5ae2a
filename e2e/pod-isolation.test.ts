/**
 * A pod holds against its own root user (issue 10): from inside a real pod of a real lab (bwrap
 * isolation, etcd on, a 200-character lab dir), an attacker with exec rights runs the escapes
 * and reaches of the issue, and each fails — for the reason its protection gives:
 * - remounting a read-only bind writable (no CAP_SYS_ADMIN, seccomp blocks mount);
 * - `open_by_handle_at` with a handle of the lab's admin token ("shocker": no
 *   CAP_DAC_READ_SEARCH, seccomp);
 * - writing a host sysctl (/proc/sys is read-only), reading a masked /proc file;
 * - connecting to the apiserver, kubelet-sim, cri-shim streaming server and etcd (own netns);
 * - port-forward to a port only the host listens on (the dial happens in the pod's netns);
 * - a fork bomb (the pod's pids limit), a memory hog (its memory limit: OOMKilled, 137);
 * - the CRI endpoint: a 0600 unix socket in a private 0700 directory, never TCP.
 * And the pod is one sandbox: `ps` in an exec shows the main process; a daemon started by one
 * exec outlives it and answers a port-forward (the README's step); the default capability set
 * and a pod's securityContext (runAsUser, capabilities.drop) hold in execs; fields the runtime
 * cannot enforce are refused with 422.
 *
 * Every attack runs through real kubectl v1.35 (`kubectl exec`), as a lab user would.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startLab, type Lab } from '../lab/lab.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';
import { waitFor } from '../shared/test-support/poll.js';
import { processesWithArgv, procTable } from '../shared/test-support/procfs.js';

let dir = '';
let lab: Lab;
let k: Kubectl;
const logs: string[] = [];

/** A lab directory of exactly 200 characters (the CRI socket cannot live there: sun_path is 108). */
function longDir(base: string): string {
  const d = path.join(base, 'l'.repeat(200 - base.length - 1));
  expect(d.length).toBe(200);
  return d;
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pod-iso-'));
  lab = await startLab({ dir: longDir(dir), port: 0, etcd: true, log: (l) => logs.push(l) });
  k = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}, 60_000);

/** `kubectl exec demo -- sh -c SCRIPT`: exit code and output. */
async function inPod(
  script: string,
  pod = 'demo',
): Promise<{ code: number | null; out: string; err: string }> {
  const r = await k.run(['exec', pod, '--', 'sh', '-c', script]);
  return { code: r.code, out: r.stdout.toString(), err: r.stderr };
}

async function kubectlOk(args: string[], input?: string): Promise<string> {
  const r = await k.run(args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout.toString();
}

/** `kubectl port-forward pod/NAME :REMOTE`: resolves the local port once kubectl listens. */
async function portForward(
  pod: string,
  remote: number,
): Promise<{ port: number; stop(): void; err(): string }> {
  const child = k.start(['port-forward', `pod/${pod}`, `:${remote}`]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    const m = new RegExp(`Forwarding from 127\\.0\\.0\\.1:(\\d+) -> ${remote}`).exec(out);
    if (m) return { port: Number(m[1]), stop: () => child.kill('SIGKILL'), err: () => err };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`kubectl port-forward did not start: ${out} ${err}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function httpGet(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** ctypes `name_to_handle_at` (host side) and `open_by_handle_at` (the attack) for python3. */
const HANDLE_SCRIPT = `
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
class FH(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("data", ctypes.c_ubyte * 128)]
fh = FH()
if sys.argv[1] == "name":
    fh.bytes = 128
    mid = ctypes.c_int()
    if libc.name_to_handle_at(-100, sys.argv[2].encode(), ctypes.byref(fh), ctypes.byref(mid), 0):
        sys.exit("name_to_handle_at: " + os.strerror(ctypes.get_errno()))
    print(fh.type, bytes(fh.data[: fh.bytes]).hex())
else:
    raw = bytes.fromhex(sys.argv[3])
    fh.type, fh.bytes = int(sys.argv[2]), len(raw)
    ctypes.memmove(fh.data, raw, len(raw))
    mount_fd = os.open("/etc", os.O_RDONLY)
    fd = libc.open_by_handle_at(mount_fd, ctypes.byref(fh), os.O_RDONLY)
    if fd < 0:
        print("ERR " + os.strerror(ctypes.get_errno()))
        sys.exit(1)
    print("READ " + os.read(fd, 4096).decode(errors="replace"))
`;

describe('the CRI endpoint', () => {
  it('is a 0600 unix socket in a private 0700 directory, even with a 200-character lab dir', () => {
    expect(lab.dir.length).toBe(200);
    const endpoint = lab.nodes[0]!.criEndpoint;
    expect(endpoint).toMatch(/^unix:\/\//);
    const sock = endpoint.slice('unix://'.length);
    expect(sock.length).toBeLessThan(108);
    expect(fs.statSync(sock).isSocket()).toBe(true);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(sock)).mode & 0o777).toBe(0o700);
  });
});

describe('one sandbox per pod', () => {
  it('`exec -- ps -ef` lists the main process as PID 1', async () => {
    const r = await k.run(['exec', 'demo', '--', 'ps', '-eo', 'pid,args']);
    expect(r.code).toBe(0);
    expect(r.stdout.toString()).toMatch(/^\s*1 sleep infinity$/m);
  });

  it('a daemon started by one exec outlives it and answers a port-forward', async () => {
    const mark = `daemon-${randomBytes(4).toString('hex')}`;
    // busybox httpd without -f daemonizes: the exec ends at once, the server stays.
    const started = await inPod(
      `mkdir -p /tmp/www && echo ${mark} > /tmp/www/index.html && busybox httpd -p 8081 -h /tmp/www`,
    );
    expect(started.code).toBe(0);
    expect((await inPod('ps -eo args')).out).toMatch(/^busybox httpd -p 8081/m);
    const pf = await portForward('demo', 8081);
    try {
      expect((await httpGet(pf.port)).trim()).toBe(mark);
    } finally {
      pf.stop();
    }
  });
});

describe('privileges', () => {
  it('keeps only the runtime default capabilities, with no_new_privs and the seccomp filter', async () => {
    const r = await inPod('grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" /proc/self/status');
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE NET_RAW
    // SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    expect(r.out).toContain('CapEff:\t00000000a80425fb');
    expect(r.out).toContain('CapBnd:\t00000000a80425fb');
    expect(r.out).toContain('NoNewPrivs:\t1');
    expect(r.out).toContain('Seccomp:\t2');
  });

  it("cannot remount a read-only bind writable and write the host's /usr", async () => {
    const victim = `/usr/kexec-escape-${randomBytes(4).toString('hex')}`;
    const r = await inPod(`mount -o remount,rw /usr && touch ${victim}`);
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/permission denied/i);
    expect(fs.existsSync(victim)).toBe(false);
  });

  it("cannot open the lab's admin token by file handle (open_by_handle_at, the shocker escape)", async () => {
    const token = path.join(lab.dir, 'admin.token');
    // The handle an attacker would brute-force: computed on the host for the test.
    const host = spawnSync('/usr/bin/python3', ['-c', HANDLE_SCRIPT, 'name', token], { encoding: 'utf8' });
    expect(host.status).toBe(0);
    const [type, hex] = host.stdout.trim().split(' ');
    const r = await k.run(['exec', 'demo', '--', 'python3', '-c', HANDLE_SCRIPT, 'open', type!, hex!]);
    expect(r.stdout.toString()).toBe('ERR Operation not permitted\n');
    expect(r.stdout.toString()).not.toContain(lab.adminToken);
  });

  it('cannot write a host sysctl or read a masked /proc file', async () => {
    const before = fs.readFileSync('/proc/sys/vm/swappiness', 'utf8');
    const r = await inPod('v=$(cat /proc/sys/vm/swappiness) && echo $v > /proc/sys/vm/swappiness');
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/read-only file system/i);
    expect(fs.readFileSync('/proc/sys/vm/swappiness', 'utf8')).toBe(before);
    // /proc/keys is masked (runtime default masked paths): nothing to read.
    expect((await inPod('cat /proc/keys 2>/dev/null | wc -c')).out.trim()).toBe('0');
  });

  it("honours runAsUser and capabilities.drop in the pod's execs", async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata:
  name: nobody
spec:
  nodeName: node-1
  containers:
  - name: main
    image: busybox
    securityContext:
      runAsUser: 1000
      runAsGroup: 1000
      capabilities: { drop: [ALL] }
`,
    );
    await kubectlOk(['wait', '--for=condition=Ready', 'pod/nobody', '--timeout=40s']);
    const r = await inPod('id -u; id -g; grep -E "^CapBnd:" /proc/self/status', 'nobody');
    expect(r.out).toBe('1000\n1000\nCapBnd:\t0000000000000000\n');
  });

  it('honours capabilities.add (the filter opens with SYS_ADMIN) and privileged (no filter)', async () => {
    const pod = (name: string, sc: string) => `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  nodeName: node-1
  containers:
  - name: main
    image: busybox
    securityContext: ${sc}
`;
    await kubectlOk(
      ['apply', '-f', '-'],
      [pod('admin', '{ capabilities: { add: [SYS_ADMIN] } }'), pod('priv', '{ privileged: true }')].join(
        '---\n',
      ),
    );
    await kubectlOk(['wait', '--for=condition=Ready', 'pod/admin', 'pod/priv', '--timeout=40s']);
    expect((await inPod('unshare -n true && echo unshared', 'admin')).out).toBe('unshared\n');
    expect((await inPod('grep -E "^Seccomp:" /proc/self/status', 'priv')).out).toBe('Seccomp:\t0\n');
  });

  it('refuses with 422 what the runtime cannot enforce (a Localhost seccomp profile, fsGroup)', async () => {
    const r = await k.run(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata:
  name: refused
spec:
  securityContext: { fsGroup: 2000 }
  containers:
  - name: main
    image: busybox
    securityContext:
      seccompProfile: { type: Localhost, localhostProfile: x.json }
`,
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/is invalid/);
    expect(r.stderr).toContain('spec.securityContext.fsGroup: Forbidden');
    expect(r.stderr).toContain(
      'spec.containers[0].securityContext.seccompProfile.type: Unsupported value: "Localhost"',
    );
  });
});

describe('network', () => {
  /** The host's service ports, with a control that each is live from the host. */
  function hostPorts(): Record<string, number> {
    const streaming = /streaming on https?:\/\/127\.0\.0\.1:(\d+)/.exec(logs.join('\n'));
    expect(streaming).not.toBeNull();
    return {
      apiserver: Number(new URL(lab.apiserverUrl).port),
      kubelet: Number(new URL(lab.kubeletUrl).port),
      'cri-shim streaming': Number(streaming![1]),
      etcd: Number(new URL(lab.etcdUrl!).port),
    };
  }

  it("cannot connect to the host's services (apiserver, kubelet-sim, cri-shim streaming, etcd)", async () => {
    const ports = hostPorts();
    for (const port of Object.values(ports)) {
      await new Promise<void>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.destroy();
          resolve();
        });
        s.on('error', reject);
      });
    }
    const probe = Object.values(ports)
      .map(
        (p) =>
          `python3 -c 'import socket; socket.create_connection(("127.0.0.1", ${p}), 2)' 2>/dev/null && echo "${p} open" || echo "${p} closed"`,
      )
      .join('; ');
    const r = await inPod(probe);
    expect(r.out).toBe(
      Object.values(ports)
        .map((p) => `${p} closed\n`)
        .join(''),
    );
  });

  it('port-forward cannot reach a port only the host listens on', async () => {
    let accepted = 0;
    const server = net.createServer((c) => {
      accepted++;
      c.end('host secret\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const hostPort = (server.address() as net.AddressInfo).port;
    const pf = await portForward('demo', hostPort);
    try {
      const got = await new Promise<string>((resolve) => {
        let data = '';
        const s = net.connect(pf.port, '127.0.0.1');
        s.on('data', (c: Buffer) => (data += c.toString()));
        s.on('close', () => resolve(data));
        s.on('error', () => {});
      });
      expect(got).toBe('');
      expect(accepted).toBe(0);
      const deadline = Date.now() + 5000;
      while (!/connection refused/.test(pf.err()) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 50));
      expect(pf.err()).toMatch(/connection refused/);
    } finally {
      pf.stop();
      server.close();
    }
  });
});

describe('limits', () => {
  it('a fork bomb stops at the pod pids limit', async () => {
    const r = await inPod('i=0; while [ $i -lt 3000 ]; do sleep 30 & i=$((i+1)); done; echo all-started');
    expect(r.out).not.toContain('all-started');
    expect(r.err).toMatch(/Cannot fork|Resource temporarily unavailable/);
    // The pod survives it: an exec still works once the bomb's processes are gone.
    expect((await inPod('echo alive')).out).toBe('alive\n');
  }, 60_000);

  it("an exec costs the pod one pid: the runtime's helper stays out of the pod's cgroup (as runc's exec)", async () => {
    // Without this, a pod at the default pids.max (1024) held only ~510 concurrent execs.
    const marker = String(4000 + Math.floor(Math.random() * 1000));
    const child = k.start(['exec', 'demo', '--', 'sleep', marker]);
    try {
      const pidsCgroup = (pid: number): string =>
        fs
          .readFileSync(`/proc/${pid}/cgroup`, 'utf8')
          .split('\n')
          .find((l) => /:pids:/.test(l)) ?? '';
      const sleeper = await waitFor(
        "the exec's sleep",
        () => processesWithArgv(['sleep', marker])[0],
        20_000,
      );
      const helper = procTable().find((p) => p.pid === sleeper)!.ppid;
      expect(fs.readFileSync(`/proc/${helper}/comm`, 'utf8').trim()).toBe('kexec-nsexec');
      expect(pidsCgroup(sleeper)).toMatch(/pod-/);
      expect(pidsCgroup(helper)).not.toBe(pidsCgroup(sleeper));
    } finally {
      child.kill();
    }
  }, 60_000);

  it('a memory hog is OOM-killed: OOMKilled, exit 137 in the pod status', async () => {
    await kubectlOk(
      ['apply', '-f', '-'],
      `apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  nodeName: node-1
  restartPolicy: Never
  containers:
  - name: main
    image: busybox
    command: [dd, if=/dev/zero, of=/dev/null, bs=256M, count=1]
    resources:
      limits: { memory: 32Mi }
`,
    );
    const deadline = Date.now() + 40_000;
    let terminated: { reason?: string; exitCode?: number } | undefined;
    while (!terminated && Date.now() < deadline) {
      const pod = JSON.parse(await kubectlOk(['get', 'pod', 'hog', '-o', 'json'])) as {
        status?: {
          containerStatuses?: { state?: { terminated?: { reason?: string; exitCode?: number } } }[];
        };
      };
      terminated = pod.status?.containerStatuses?.[0]?.state?.terminated;
      if (!terminated) await new Promise((r) => setTimeout(r, 200));
    }
    expect(terminated).toMatchObject({ reason: 'OOMKilled', exitCode: 137 });
  }, 60_000);
});
