/**
 * The walking chain, end to end: three real service processes (the lab, https from its CA),
 * driven by `kexec` as a child process and by @kubernetes/client-node, both trusting the CA
 * through the kubeconfig. Needs `npm run build` (npm test builds first). The exec and
 * client-node checks run on each runtime (e2e/support/runtimes.ts): the cri-shim and containerd.
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import tls from 'node:tls';
import * as k8s from '@kubernetes/client-node';
import { APISERVER_AUDIENCE, mintToken } from '../shared/auth/tokens.js';
import { closeServer, listen } from '../shared/test-support/loopback.js';
import { startLab, type Lab } from '../lab/lab.js';
import { kubeletTlsArgs } from '../lab/pki.js';
import { request, type Reply } from './support/https.js';
import { holdsWithin, waitFor } from '../shared/test-support/poll.js';
import { pidsWhere } from '../shared/test-support/procfs.js';
import { runKexec, startKexec } from './support/processes.js';
import { E2E_RUNTIMES, labOn } from './support/runtimes.js';

let dir = '';
let lab: Lab;
let kubeconfig = '';
let ca = '';
const logs: string[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'chain-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: (l) => logs.push(l) });
  kubeconfig = lab.kubeconfigPath;
  ca = fs.readFileSync(lab.caFile!, 'utf8');
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const kexec = (...args: string[]) => ['--kubeconfig', kubeconfig, ...args];

async function api(method: string, p: string, body?: unknown, token = lab.adminToken): Promise<Reply> {
  return request(new URL(p, lab.apiserverUrl), {
    method,
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    ca,
  });
}

describe('TLS', () => {
  it('serves https that only the lab CA vouches for', async () => {
    expect(lab.apiserverUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect((await api('GET', '/api/v1/namespaces/default/pods/demo')).status).toBe(200);
    await expect(request(new URL('/healthz', lab.apiserverUrl))).rejects.toMatchObject({
      code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(fs.readFileSync(kubeconfig, 'utf8')).not.toContain('insecure-skip-tls-verify');
  });
});

describe.each(E2E_RUNTIMES)('on the %s runtime', (runtime) => {
  const onLab = labOn(
    runtime,
    () => lab,
    () => dir,
  );
  const kexec = (...args: string[]) => ['--kubeconfig', onLab().kubeconfigPath, ...args];

  describe(`kexec through apiserver → kubelet-sim → ${runtime}`, () => {
    it("lists the container's /root, not the host's, and exits as soon as it is done", async () => {
      const started = Date.now();
      const res = await runKexec(kexec('demo', '--', 'ls', '/root'));
      expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
      // Well under a second normally; a WebSocket close handshake nobody reads ends only at 30 s.
      expect(Date.now() - started).toBeLessThan(10_000);
      const listed = res.stdout.toString().trim().split('\n').sort();
      expect(listed).toEqual(['README.txt', 'hello.sh', 'notes']);
      const hostRoot = fs.existsSync('/root') ? fs.readdirSync('/root').sort() : [];
      expect(listed).not.toEqual(hostRoot);
    });

    it('exits with the remote exit code', async () => {
      const res = await runKexec(kexec('demo', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3'));
      expect(res.code).toBe(3);
      expect(res.stdout.toString()).toBe('out\n');
      expect(res.stderr).toContain('err\n');
      expect(res.stderr).toContain('command terminated with exit code 3');
    });

    it('ends the command at stdin EOF (no hang) and prints its output', async () => {
      const res = await runKexec(kexec('-i', 'demo', '--', 'cat'), 'hi\n');
      expect({ code: res.code, out: res.stdout.toString(), err: res.stderr }).toEqual({
        code: 0,
        out: 'hi\n',
        err: '',
      });
    });

    it('carries 16 MiB of random stdin through cat intact', async () => {
      const data = randomBytes(16 * 1024 * 1024);
      const res = await runKexec(kexec('-i', 'demo', '--', 'cat'), data);
      expect(res.code).toBe(0);
      expect(res.stdout.length).toBe(data.length);
      expect(createHash('sha256').update(res.stdout).digest('hex')).toBe(
        createHash('sha256').update(data).digest('hex'),
      );
    });

    it('reports an unknown pod as kubectl does', async () => {
      const res = await runKexec(kexec('nope', '--', 'ls'));
      expect(res.code).toBe(1);
      expect(res.stderr.trim()).toBe('Error from server (NotFound): pods "nope" not found');
    });

    // The cri-shim kills it; containerd 1.6 runs a streaming exec under a context of its own, not
    // the connection's (cri/server/container_execsync.go): there the command outlives its client.
    it(`${runtime === 'cri-shim' ? 'kills' : 'leaves running'} the remote command when the client is killed mid-command`, async () => {
      const marker = String(40000 + Math.floor(Math.random() * 20000));
      const child = startKexec(kexec('demo', '--', 'sh', '-c', `echo started; exec sleep ${marker}`));
      child.stdin!.end();
      let seen = '';
      while (!seen.includes('started')) {
        const [chunk] = (await once(child.stdout!, 'data')) as [Buffer];
        seen += chunk.toString();
      }
      const sleeping = () => pidsWhere((argv) => argv.join(' ') === `sleep ${marker}`);
      // `started` is printed before the shell execs sleep: the exec may not have happened yet.
      await waitFor('the remote sleep to start', () => sleeping().length === 1, 10_000);
      child.kill('SIGKILL');
      await once(child, 'close');
      if (runtime === 'cri-shim') {
        expect(await holdsWithin(() => sleeping().length === 0, 5000)).toBe(true);
        return;
      }
      expect(await holdsWithin(() => sleeping().length === 0, 2000)).toBe(false);
      for (const pid of sleeping()) process.kill(pid, 'SIGKILL');
    });
  });

  describe('@kubernetes/client-node against the lab', () => {
    function sink(): { stream: Writable; text: () => string } {
      const stream = new PassThrough();
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      return { stream, text: () => Buffer.concat(chunks).toString() };
    }

    async function clientExec(command: string[]): Promise<{ status: k8s.V1Status; out: string }> {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(onLab().kubeconfigPath);
      const out = sink();
      let status: k8s.V1Status | undefined;
      const ws = await new k8s.Exec(kc).exec(
        'default',
        'demo',
        'demo',
        command,
        out.stream,
        null,
        null,
        false,
        (s) => {
          status = s;
        },
      );
      await once(ws, 'close');
      return { status: status!, out: out.text() };
    }

    it('runs Exec and reports Success', async () => {
      const { status, out } = await clientExec(['cat', '/root/README.txt']);
      expect(status.status).toBe('Success');
      expect(out).toContain('kexec');
    });

    it('reads a non-zero exit code from the Status causes', async () => {
      const { status } = await clientExec(['sh', '-c', 'exit 3']);
      expect(status).toMatchObject({ status: 'Failure', reason: 'NonZeroExitCode' });
      expect(status.details?.causes).toEqual([{ reason: 'ExitCode', message: '3' }]);
    });

    it('reads pods through CoreV1Api', async () => {
      const kc = new k8s.KubeConfig();
      kc.loadFromFile(onLab().kubeconfigPath);
      const pod = await kc
        .makeApiClient(k8s.CoreV1Api)
        .readNamespacedPod({ name: 'demo', namespace: 'default' });
      expect(pod.status?.phase).toBe('Running');
    });
  });
});

describe('authentication at the apiserver', () => {
  const key = () => fs.readFileSync(path.join(lab.dir, 'token-signing.key'));

  it.each([
    ['no token', undefined],
    ['an expired token', 'expired'],
    ['a forged token', 'forged'],
    ['a token for another audience', 'kubelet'],
  ])('answers %s with a 401 Status that names nothing', async (_name, kind) => {
    const admin = { name: 'admin', groups: ['system:masters'] };
    const token =
      kind === 'expired'
        ? mintToken(key(), admin, { audience: APISERVER_AUDIENCE, expiresInSec: -3600 })
        : kind === 'forged'
          ? mintToken(randomBytes(32), admin, { audience: APISERVER_AUDIENCE })
          : kind === 'kubelet'
            ? mintToken(key(), admin, { audience: 'kubelet' })
            : undefined;
    const res = await request(new URL('/api/v1/namespaces/default/pods/demo', lab.apiserverUrl), {
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      ca,
    });
    expect(res.status).toBe(401);
    const body = res.json();
    expect(body).toMatchObject({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 });
    expect(JSON.stringify(body)).not.toContain('demo');
  });

  it('refuses kexec with a forged token', async () => {
    const forged = path.join(dir, 'forged-kubeconfig');
    const text = fs
      .readFileSync(kubeconfig, 'utf8')
      .replace(
        lab.adminToken,
        mintToken(
          randomBytes(32),
          { name: 'admin', groups: ['system:masters'] },
          { audience: APISERVER_AUDIENCE },
        ),
      );
    fs.writeFileSync(forged, text, { mode: 0o600 });
    const res = await runKexec(['--kubeconfig', forged, 'demo', '--', 'ls']);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/Unauthorized/);
    expect(res.stdout.length).toBe(0);
  });
});

// The kubelet hop is https with certificates from the lab CA: a malicious kubelet here is a
// compromised node, one that holds a real kubelet certificate for its address (lab/pki.ts).
describe('a malicious kubelet', () => {
  const servers: net.Server[] = [];
  afterAll(async () => {
    for (const s of servers) await closeServer(s);
  });

  /** Node NAME's kubelet serving certificate and key, issued by the lab CA. */
  async function nodeCert(name: string): Promise<{ cert: Buffer; key: Buffer }> {
    const args = await kubeletTlsArgs(lab.dir, name, ['127.0.0.1']);
    const file = (flag: string) => fs.readFileSync(args[args.indexOf(flag) + 1]!);
    return { cert: file('--tls-cert-file'), key: file('--tls-private-key-file') };
  }

  /** Registers node NAME whose kubelet is `server`, and a pod bound to it. */
  async function podOnFakeNode(name: string, server: net.Server): Promise<void> {
    servers.push(server);
    const port = await listen(server);
    const node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name },
      status: {
        addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
        daemonEndpoints: { kubeletEndpoint: { Port: port } },
      },
    };
    expect((await api('POST', '/api/v1/nodes', node)).status).toBe(201);
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `pod-on-${name}`, namespace: 'default' },
      spec: { nodeName: name, containers: [{ name: 'c', image: 'busybox' }] },
    };
    expect((await api('POST', '/api/v1/namespaces/default/pods', pod)).status).toBe(201);
  }

  // SPDY is spliced by the UpgradeAwareHandler; a v5 WebSocket is ended at the apiserver and
  // carried to the kubelet as SPDY by the StreamTranslator. Neither may follow or splice.
  const PATHS = [
    ['spliced (SPDY)', 'spdy', /^Error from server.*invalid upgrade response: status code 302/m],
    ['translated (WebSocket v5)', 'websocket', /^Error from server.*unable to upgrade connection.*302/m],
  ] as const;

  it.each(PATHS)(
    'cannot redirect the apiserver elsewhere, %s (CVE-2020-8559)',
    async (_n, protocol, error) => {
      let targetHits = 0;
      const target = http.createServer((_req, res) => {
        targetHits++;
        res.end('secret');
      });
      servers.push(target);
      const targetPort = await listen(target);
      let kubeletHits = 0;
      const node = `redirector-${protocol}`;
      await podOnFakeNode(
        node,
        https.createServer(await nodeCert(node), (_req, res) => {
          kubeletHits++;
          res.writeHead(302, { Location: `http://127.0.0.1:${targetPort}/exec/kube-system/etcd/etcd` });
          res.end();
        }),
      );
      const res = await runKexec(kexec('--protocol', protocol, `pod-on-${node}`, '--', 'ls'));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(error);
      expect(kubeletHits).toBe(1);
      expect(targetHits).toBe(0);
    },
  );

  it.each(PATHS)(
    "passes a kubelet's refusal on and never splices, %s (CVE-2018-1002105)",
    async (_n, protocol) => {
      const received: string[] = [];
      const node = `refuser-${protocol}`;
      await podOnFakeNode(
        node,
        tls.createServer(await nodeCert(node), (socket) => {
          socket.on('data', (c: Buffer) => {
            received.push(c.toString('latin1'));
            if (received.length > 1) return;
            const body = JSON.stringify({
              kind: 'Status',
              apiVersion: 'v1',
              metadata: {},
              status: 'Failure',
              message: 'kubelet refuses',
              reason: 'BadRequest',
              code: 400,
            });
            socket.write(`HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n`);
            socket.write(`Content-Length: ${body.length}\r\n\r\n${body}`);
          });
          socket.on('error', () => {});
        }),
      );
      const res = await runKexec(kexec('--protocol', protocol, `pod-on-${node}`, '--', 'ls'));
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(/Error from server \(BadRequest\): kubelet refuses/);
      expect(received.join('').match(/^(GET|POST) \/exec\//gm)).toHaveLength(1);
    },
  );
});
