/**
 * The teaching lab's windows on one exec, against the real lab (three processes): the Audit-Id
 * that joins the hops (the 101, every hop's log lines, the audit log's stages) and the `/metrics`
 * counters of each hop, which must move by exactly the requests and bytes this test makes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KUBELET_CLIENT_CERT } from '../lab/pki.js';
import { startLab, type Lab } from '../lab/lab.js';
import { request } from './support/https.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { runKexec } from './support/processes.js';
import { rawExec } from './support/raw-exec.js';
import { waitFor } from '../shared/test-support/poll.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';

let dir = '';
let lab: Lab;
let ca = '';
let kubeletClient: { cert: Buffer; key: Buffer };
let streamingUrl = '';
const logs: string[] = [];
const records: { service: string; auditID?: unknown; msg: string }[] = [];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'teaching-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: (l) => logs.push(l) });
  lab.logs.onRecord((service, r) => records.push({ service, auditID: r.auditID, msg: r.msg }));
  ca = fs.readFileSync(lab.caFile!, 'utf8');
  // The kubelet trusts the apiserver's client certificate, as kubeadm's apiserver-kubelet-client.
  kubeletClient = {
    cert: fs.readFileSync(path.join(lab.dir, 'pki', `${KUBELET_CLIENT_CERT}.crt`)),
    key: fs.readFileSync(path.join(lab.dir, 'pki', `${KUBELET_CLIENT_CERT}.key`)),
  };
  const ready = logs.find((l) => l.startsWith('[cri-shim] READY '))!;
  streamingUrl = (JSON.parse(ready.slice('[cri-shim] READY '.length)) as { streamingUrl: string })
    .streamingUrl;
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const EXEC = '/api/v1/namespaces/default/pods/demo/exec?container=demo&stdout=true';
const execPath = (...cmd: string[]) => EXEC + cmd.map((c) => `&command=${encodeURIComponent(c)}`).join('');

interface AuditLine {
  auditID: string;
  stage: string;
  responseStatus?: { code: number };
}

function auditEvents(id: string): AuditLine[] {
  const lines = fs.readFileSync(lab.auditLogPath, 'utf8').split('\n').filter(Boolean);
  return lines.map((l) => JSON.parse(l) as AuditLine).filter((e) => e.auditID === id);
}

/** A request's audit events, once its ResponseComplete is written (the log is appended as it goes). */
async function completedAudit(id: string): Promise<AuditLine[]> {
  const done = () => auditEvents(id).some((e) => e.stage === 'ResponseComplete');
  expect(await holdsWithin(done, 10_000, 100)).toBe(true);
  return auditEvents(id);
}

describe('one Audit-Id across the hops', () => {
  it.each([
    ['spliced to the runtime (v4.channel.k8s.io)', 'v4.channel.k8s.io'],
    ['translated by the apiserver (v5.channel.k8s.io)', 'v5.channel.k8s.io'],
  ])('%s: in the 101, in every hop’s log lines, in the audit log', async (_name, protocol) => {
    const r = await rawExec(lab.apiserverUrl, lab.adminToken, ca, execPath('echo', 'hop'), protocol);
    expect(r.status).toBe(101);
    expect(r.stdout).toBe('hop\n');
    const id = r.headers['audit-id']!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);

    // The apiserver's line is written when the stream closes; poll for all three hops.
    const hops = () => new Set(records.filter((x) => x.auditID === id).map((x) => x.service));
    expect(await holdsWithin(() => hops().size === 3, 10_000)).toBe(true);
    expect([...hops()].sort()).toEqual(['apiserver', 'cri-shim', 'kubelet-sim']);
    const runtimeLines = records
      .filter((x) => x.auditID === id && x.service === 'cri-shim')
      .map((x) => x.msg);
    expect(runtimeLines).toEqual(expect.arrayContaining(['CRI Exec', expect.stringMatching(/ended: 0$/)]));

    const events = await completedAudit(id);
    expect(events.map((e) => [e.stage, e.responseStatus?.code])).toEqual([
      ['RequestReceived', undefined],
      ['ResponseStarted', 101],
      ['ResponseComplete', 101],
    ]);
  });

  it('a refused upgrade carries its Audit-Id too, and the audit log says 401', async () => {
    const r = await rawExec(lab.apiserverUrl, 'not-a-token', ca, execPath('true'), 'v5.channel.k8s.io');
    expect(r.status).toBe(401);
    const id = r.headers['audit-id']!;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const events = await completedAudit(id);
    expect(events.at(-1)).toMatchObject({ stage: 'ResponseComplete', responseStatus: { code: 401 } });
  });
});

/** The sum of a metric's series whose labels include `labels`, from Prometheus text. */
function metric(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

async function scrape(): Promise<{ apiserver: string; kubelet: string; runtime: string }> {
  const get = async (
    url: string,
    auth: { token?: string; cert?: Buffer; key?: Buffer } = {},
  ): Promise<string> => {
    const headers: Record<string, string> = auth.token ? { Authorization: `Bearer ${auth.token}` } : {};
    const r = await request(url, { ca, headers, cert: auth.cert, key: auth.key });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    return r.text;
  };
  return {
    apiserver: await get(`${lab.apiserverUrl}/metrics`, { token: lab.adminToken }),
    kubelet: await get(`${lab.kubeletUrl}/metrics`, kubeletClient),
    runtime: await get(`${streamingUrl}/metrics`),
  };
}

describe('/metrics', () => {
  it('is behind authentication and authorisation on the apiserver', async () => {
    const anonymous = await request(`${lab.apiserverUrl}/metrics`, { ca });
    expect(anonymous.status).toBe(401);
    const kubelet = await request(`${lab.kubeletUrl}/metrics`, { ca });
    expect(kubelet.status).toBe(401);
  });

  it('counts exactly the execs and the stream bytes of this test, at every hop', async () => {
    const before = await scrape();
    const runs = [];
    for (const n of [1000, 20000, 300000]) {
      const r = await rawExec(
        lab.apiserverUrl,
        lab.adminToken,
        ca,
        execPath('head', '-c', String(n), '/dev/zero'),
        'v4.channel.k8s.io',
      );
      expect(r.status).toBe(101);
      runs.push(r);
    }
    const up = runs.reduce((a, r) => a + r.up, 0);
    const down = runs.reduce((a, r) => a + r.down, 0);
    expect(down).toBeGreaterThan(321000);
    // Counters move when the streams close; wait until the last one has.
    const settled = async () => {
      const now = await scrape();
      return metric(now.apiserver, 'apiserver_longrunning_requests', { subresource: 'exec' }) === 0
        ? now
        : undefined;
    };
    const after = await waitFor('the exec streams to close', settled, 10_000, 50);
    const delta = (
      hop: 'apiserver' | 'kubelet' | 'runtime',
      name: string,
      labels: Record<string, string> = {},
    ) => metric(after[hop], name, labels) - metric(before[hop], name, labels);

    const execs = { verb: 'CONNECT', resource: 'pods', subresource: 'exec', code: '101' };
    expect(delta('apiserver', 'apiserver_request_total', execs)).toBe(3);
    expect(delta('apiserver', 'apiserver_request_duration_seconds_count', { subresource: 'exec' })).toBe(3);
    expect(delta('apiserver', 'kexec_lab_stream_bytes_total', { direction: 'up' })).toBe(up);
    expect(delta('apiserver', 'kexec_lab_stream_bytes_total', { direction: 'down' })).toBe(down);
    // The kubelet splices the very same bytes; the runtime ends the stream.
    expect(delta('kubelet', 'kexec_lab_stream_bytes_total', { direction: 'up' })).toBe(up);
    expect(delta('kubelet', 'kexec_lab_stream_bytes_total', { direction: 'down' })).toBe(down);
    expect(delta('kubelet', 'kubelet_runtime_operations_total', { operation_type: 'exec' })).toBe(3);
    expect(delta('kubelet', 'kubelet_http_requests_total', { path: 'exec' })).toBe(3);
    expect(delta('runtime', 'grpc_server_handled_total', { grpc_method: 'Exec', grpc_code: 'OK' })).toBe(3);
    expect(delta('runtime', 'kexec_lab_streaming_sessions_total', { kind: 'exec' })).toBe(3);
    expect(delta('runtime', 'kexec_lab_stream_bytes_total', { direction: 'down' })).toBe(down);
    expect(metric(after.apiserver, 'kexec_lab_stream_sessions_active')).toBe(0);
  });

  it('kubectl get --raw /metrics reads the apiserver’s', async () => {
    const kubectl = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
    const r = await kubectl.run(['get', '--raw', '/metrics']);
    expect(r.code).toBe(0);
    const text = r.stdout.toString();
    expect(text).toMatch(/^# HELP apiserver_request_total /m);
    expect(text).toMatch(/^# HELP apiserver_stream_translator_requests_total /m);
    expect(text).toMatch(/^apiserver_request_total\{.*verb="LIST".*resource="pods".*\} [1-9]/m);
  });
});

describe('Events', () => {
  it('kubectl get events and kubectl describe pod show a new pod’s life', async () => {
    const kubectl = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'lifecycle', namespace: 'default' },
      spec: { containers: [{ name: 'main', image: 'busybox', command: ['sleep', '3600'] }] },
    };
    const created = await kubectl.run(['apply', '-f', '-'], JSON.stringify(pod));
    expect(created.code).toBe(0);
    const reasons = async () => {
      const r = await kubectl.run(['get', 'events', '--field-selector', 'involvedObject.name=lifecycle']);
      return r.stdout.toString();
    };
    const all = ['Scheduled', 'Pulled', 'Created', 'Started'];
    const table = await waitFor(
      'the pod events',
      async () => {
        const t = await reasons();
        return all.every((x) => t.includes(x)) ? t : undefined;
      },
      30_000,
      50,
    );
    expect(table.split('\n')[0]).toMatch(/^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/);
    expect(table).toMatch(
      /Normal\s+Scheduled\s+pod\/lifecycle\s+Successfully assigned default\/lifecycle to node-1/,
    );
    expect(table).toMatch(/Normal\s+Started\s+pod\/lifecycle\s+Started container main/);

    const describe = await kubectl.run(['describe', 'pod', 'lifecycle']);
    expect(describe.code).toBe(0);
    const text = describe.stdout.toString();
    expect(text).toMatch(/^Events:\n\s+Type\s+Reason\s+Age\s+From\s+Message\n/m);
    expect(text).toMatch(
      /Normal\s+Scheduled\s+\S+\s+default-scheduler\s+Successfully assigned default\/lifecycle/,
    );
    expect(text).toMatch(
      /Normal\s+Created\s+\S+\s+kubelet\s+(spec.containers\{main\}: )?Created container: main/,
    );

    expect((await kubectl.run(['delete', 'pod', 'lifecycle', '--wait=false'])).code).toBe(0);
    await waitFor('a Killing event', async () => (await reasons()).includes('Killing'), 30_000, 50);
  });
});

describe('kexec -v', () => {
  it.each([
    ['websocket', 'v5.channel.k8s.io'],
    ['spdy', 'v4.channel.k8s.io'],
  ])(
    '-v=8 over %s prints each request with its Audit-Id, the 101 headers and the subprotocol',
    async (protocol, chosen) => {
      const r = await runKexec([
        '-v=8',
        '--kubeconfig',
        lab.kubeconfigPath,
        '--protocol',
        protocol,
        'demo',
        '--',
        'true',
      ]);
      expect(r.code).toBe(0);
      const err = r.stderr.toString();
      expect(err).toMatch(
        /round_trippers\.go\] GET https:\/\/127\.0\.0\.1:\d+\/api\/v1\/namespaces\/default\/pods\/demo 200 OK in \d+ milliseconds Audit-Id: [0-9a-f-]{36}$/m,
      );
      expect(err).toMatch(
        /\/pods\/demo\/exec\?[^ ]* 101 Switching Protocols in \d+ milliseconds Audit-Id: [0-9a-f-]{36}$/m,
      );
      expect(err).toContain(`negotiated subprotocol: "${chosen}"`);
      expect(err).not.toContain(lab.adminToken);
    },
  );

  it('a Pending pod named outright is not waited for (kubectl neither), whatever --pod-running-timeout says; --request-timeout must parse', async () => {
    const pending = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'nowhere' },
      spec: { nodeName: 'no-such-node', containers: [{ name: 'c', image: 'busybox' }] },
    };
    const created = await request(`${lab.apiserverUrl}/api/v1/namespaces/default/pods`, {
      method: 'POST',
      ca,
      headers: { Authorization: `Bearer ${lab.adminToken}`, 'Content-Type': 'application/json' },
      body: JSON.stringify(pending),
    });
    expect(created.status).toBe(201);
    const started = Date.now();
    const r = await runKexec([
      '--kubeconfig',
      lab.kubeconfigPath,
      '--pod-running-timeout=10m',
      'nowhere',
      '--',
      'true',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr.toString()).toMatch(/no-such-node/);
    expect(Date.now() - started).toBeLessThan(20_000);
    const bad = await runKexec([
      '--kubeconfig',
      lab.kubeconfigPath,
      '--request-timeout=soon',
      'demo',
      '--',
      'true',
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr.toString()).toMatch(/invalid argument "soon" for "--request-timeout"/);
  });

  it('without -v prints nothing of the kind', async () => {
    const r = await runKexec(['--kubeconfig', lab.kubeconfigPath, 'demo', '--', 'true']);
    expect(r.code).toBe(0);
    expect(r.stderr.toString()).toBe('');
  });
});
