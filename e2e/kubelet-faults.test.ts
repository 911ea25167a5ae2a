/**
 * A malicious kubelet, for real: the lab's kubelet-sim in each `--fault` mode
 * (kubelet-sim/fault-injection.ts), the real apiserver in front of it, and real kubectl (v1.35 over
 * WebSocket, so through the apiserver's StreamTranslator; v1.35 forced onto SPDY and v1.20, spliced
 * by the UpgradeAwareHandler) running `exec` against it. Every exec must fail with a clear error
 * and a non-zero exit; nothing may follow the redirect (a loopback listener counts connections);
 * and on a raw keep-alive connection to the apiserver, a second request written after the refusal
 * must never reach the kubelet (CVE-2018-1002105) — the kubelet-sim logs how many requests each
 * fault connection carried, and answers any extra one, so a splice would show on both ends.
 *
 * One lab: it starts with `kubeletFault` (the first mode, through the lab's own option), and only
 * the kubelet-sim is switched to each later mode at run time (`/debug/flags/fault`). Needs `npm run build`.
 */
import { parseLogRecord } from '../shared/logging.js';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import https from 'node:https';
import tls from 'node:tls';
import { startLab, type Lab } from '../lab/lab.js';
import { closeServer, listen } from '../shared/test-support/loopback.js';
import { holdsWithin } from '../shared/test-support/poll.js';
import { Kubectl, KUBECTL_CLIENTS } from './support/kubectl.js';

let dir = '';
let lab: Lab;
let ca: Buffer;
const logs: string[] = [];

/** The redirect target: a loopback listener that must never be dialled. */
let target: net.Server;
let targetUrl = '';
let targetConnections = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubelet-faults-'));
  target = net.createServer((socket) => {
    targetConnections++;
    socket.destroy();
  });
  targetUrl = `http://127.0.0.1:${await listen(target)}/`;
  lab = await startLab({
    dir: path.join(dir, 'lab'),
    port: 0,
    kubeletFault: `redirect=${targetUrl}`,
    log: (l) => logs.push(l),
  });
  ca = fs.readFileSync(lab.caFile!);
}, 90_000);

afterAll(async () => {
  await lab?.stop();
  if (target) await closeServer(target);
  fs.rmSync(dir, { recursive: true, force: true });
});

/**
 * The kubelet-sim's own log messages: from the lab (klog text after `[kubelet-sim]`) or from the
 * restarted process, which writes the JSON records the lab gave it `--logging-format json` for.
 */
const KUBELET_LINE = /^\[kubelet-sim\] (?:[IWE]\d{4} [\d:.]+ +\d+ kubelet-sim\] (.*)|(\{.*))$/s;
const kubeletLines = () =>
  logs
    .map((l) => KUBELET_LINE.exec(l))
    .map((m) => m && (m[1] ?? parseLogRecord(m[2]!)?.msg))
    .filter((l): l is string => typeof l === 'string');
const answered = () => kubeletLines().filter((l) => / answered (GET|POST) \//.test(l));

/**
 * Switches the lab's kubelet-sim to another fault drill at run time, as the dashboard does:
 * `PUT /debug/flags/fault` through the apiserver's node proxy, as the admin. (Restarting the
 * kubelet-sim with another `--fault` no longer works: the lab's supervisor brings its own back.)
 */
async function switchFault(value: string): Promise<string> {
  const url = new URL(`/api/v1/nodes/node-1/proxy/debug/flags/fault`, lab.apiserverUrl);
  const call = (method: string, body?: string) =>
    new Promise<{ code: number; text: string }>((resolve, reject) => {
      const req = https.request(
        url,
        { method, ca, headers: { Authorization: `Bearer ${lab.adminToken}`, 'Content-Type': 'text/plain' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  const put = await call('PUT', value);
  expect(put.code).toBe(200);
  const now = await call('GET');
  expect(now.code).toBe(200);
  return now.text.trim();
}

/** Waits (bounded) for the kubelet-sim to log the end of the fault connection `answeredLine` names. */
async function kubeletConnectionClosed(m: Mode, answeredLine: string): Promise<string | undefined> {
  const id = /\[#(\d+)\]/.exec(answeredLine)![1]!;
  const line = () => kubeletLines().find((l) => l.startsWith(`fault ${m.mode} [#${id}]: connection closed`));
  await holdsWithin(() => line() !== undefined, 5000);
  return line();
}

interface Mode {
  mode: string;
  /** The `--fault` value. */
  flag: () => string;
  /** What the kubelet-sim logs when it answers (after `fault MODE [#n]: answered POST /exec/default/demo/demo `). */
  answer: RegExp;
  /** kubectl's error when the apiserver splices (SPDY) and when it translates (WebSocket v5). */
  spliced: RegExp;
  translated: RegExp;
  /** The apiserver's answer to a raw SPDY upgrade: HTTP code and the Status it carries. */
  raw: { code: number; reason?: string; message: RegExp };
  /** How the kubelet-sim reports the connection's end when nothing more reached it. */
  closedClean: RegExp;
}

const ONE_REQUEST = /connection closed after 1 request\(s\)$/;

const MODES: Mode[] = [
  {
    mode: 'redirect',
    flag: () => `redirect=${targetUrl}`,
    answer: /with 302 Found, Location: http:\/\/127\.0\.0\.1:\d+\/exec\/default\/demo\/demo\?/,
    spliced: /^Error from server.*invalid upgrade response: status code 302$/m,
    translated: /^error: unable to upgrade connection: HTTP 302$/m,
    raw: { code: 502, message: /^invalid upgrade response: status code 302$/ },
    closedClean: ONE_REQUEST,
  },
  {
    mode: 'ok-200',
    flag: () => 'ok-200',
    answer: /with 200 OK instead of 101 Switching Protocols$/,
    spliced: /^Error from server.*invalid upgrade response: status code 200$/m,
    translated: /^error: .*200 OK, no upgrade$/m,
    raw: { code: 502, message: /^invalid upgrade response: status code 200$/ },
    closedClean: ONE_REQUEST,
  },
  {
    mode: 'refuse-400',
    flag: () => 'refuse-400',
    answer: /with 400, connection kept open$/,
    spliced: /^Error from server \(BadRequest\): upgrade refused by kubelet-sim --fault refuse-400$/m,
    translated: /^error: upgrade refused by kubelet-sim --fault refuse-400$/m,
    raw: { code: 400, reason: 'BadRequest', message: /^upgrade refused by kubelet-sim --fault refuse-400$/ },
    closedClean: ONE_REQUEST,
  },
  {
    mode: 'refuse-500',
    flag: () => 'refuse-500',
    answer: /with 500, connection kept open$/,
    spliced: /^Error from server \(InternalError\): upgrade refused by kubelet-sim --fault refuse-500$/m,
    translated: /^error: upgrade refused by kubelet-sim --fault refuse-500$/m,
    raw: {
      code: 500,
      reason: 'InternalError',
      message: /^upgrade refused by kubelet-sim --fault refuse-500$/,
    },
    closedClean: ONE_REQUEST,
  },
  {
    mode: 'wrong-protocol',
    flag: () => 'wrong-protocol',
    answer: /with 101 Switching Protocols to h2c$/,
    spliced: /^Error from server.*backend tried to switch protocol "h2c" when "SPDY\/3\.1" was requested$/m,
    translated: /^error: error translating stream: server switched to "h2c", not SPDY\/3\.1$/m,
    raw: { code: 502, message: /^backend tried to switch protocol "h2c" when "SPDY\/3\.1" was requested$/ },
    closedClean: /connection closed, 0 byte\(s\) received after the 101$/,
  },
  {
    mode: 'garbage',
    flag: () => 'garbage',
    answer: /with \d+ bytes that are not HTTP, then closed$/,
    spliced: /^Error from server.*error reading backend response: Parse Error/m,
    translated: /^error: error translating stream: Parse Error/m,
    raw: { code: 502, message: /^error reading backend response: Parse Error/ },
    closedClean: ONE_REQUEST,
  },
];

describe.each(MODES.map((m, i) => [m.mode, m, i] as const))('kubelet-sim --fault %s', (_name, m, index) => {
  beforeAll(async () => {
    // The lab started in the first mode (LabOptions.kubeletFault); later ones switch at run time.
    if (index > 0) {
      expect(await switchFault(m.flag())).toBe(m.flag());
    } else {
      const argv = fs.readFileSync(`/proc/${lab.pids['kubelet-sim']}/cmdline`, 'utf8').split('\0');
      expect(argv.slice(argv.indexOf('--fault'), argv.indexOf('--fault') + 2)).toEqual(['--fault', m.flag()]);
    }
  }, 30_000);

  it.each(KUBECTL_CLIENTS.map((c, i) => [c.name, c, i] as const))(
    'kubectl exec fails with a clear error: %s',
    async (_n, client, ci) => {
      const k = new Kubectl(client, lab.kubeconfigPath, path.join(dir, `home-${ci}`));
      const before = answered().length;
      const res = await k.run(['exec', 'demo', '--', 'ls', '/root']);
      expect(res.code).toBe(1);
      expect(res.stdout.toString()).toBe('');
      const translated = client.version !== 'v1.20' && !client.forceSpdy; // WebSocket first: the StreamTranslator
      expect(res.stderr).toMatch(translated ? m.translated : m.spliced);
      // The failure is the fault's: the kubelet-sim answered exactly this exec, and only once.
      expect(await holdsWithin(() => answered().length > before, 5000)).toBe(true);
      const mine = answered().slice(before);
      expect(mine).toHaveLength(1);
      expect(mine[0]).toMatch(
        new RegExp(`^fault ${m.mode} \\[#\\d+\\]: answered POST /exec/default/demo/demo `),
      );
      expect(mine[0]).toMatch(m.answer);
      // …and the apiserver's connection to it closed, having carried that one request only.
      expect(await kubeletConnectionClosed(m, mine[0]!)).toMatch(m.closedClean);
      expect(targetConnections).toBe(0);
    },
  );

  it('a raw SPDY upgrade gets a Status, the connection is closed, and a second request never reaches the kubelet', async () => {
    const before = answered().length;
    const api = new URL(lab.apiserverUrl);
    const socket = tls.connect({ host: api.hostname, port: Number(api.port), ca, servername: 'localhost' });
    let got = Buffer.alloc(0);
    let closed = false;
    socket.on('data', (c: Buffer) => (got = Buffer.concat([got, c])));
    socket.on('close', () => (closed = true));
    socket.on('error', () => {});
    socket.write(
      'POST /api/v1/namespaces/default/pods/demo/exec?command=ls&container=demo&stdout=true HTTP/1.1\r\n' +
        `Host: ${api.host}\r\nAuthorization: Bearer ${lab.adminToken}\r\n` +
        'Connection: Upgrade, Keep-Alive\r\nUpgrade: SPDY/3.1\r\n' +
        'X-Stream-Protocol-Version: v4.channel.k8s.io\r\nContent-Length: 0\r\n\r\n',
    );
    // The whole first answer: its head, then Content-Length bytes of body.
    const complete = () => {
      const text = got.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      const length = /^content-length: *(\d+)\r$/im.exec(text.slice(0, end));
      return end >= 0 && !!length && got.length >= end + 4 + Number(length[1]);
    };
    expect(await holdsWithin(() => complete() || closed, 10_000)).toBe(true);
    expect(complete()).toBe(true);
    const first = got.toString('latin1');
    const head = first.slice(0, first.indexOf('\r\n\r\n'));
    expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${m.raw.code} `));
    expect(head).toMatch(/^content-type: application\/json\r?$/im);
    const status = JSON.parse(first.slice(first.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
    expect(status).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code: m.raw.code });
    expect(status.reason).toBe(m.raw.reason);
    expect(status.message).toMatch(m.raw.message);

    // The attack: go on talking on the same connection, in the kubelet's own language.
    if (!closed) {
      socket.write(
        'POST /exec/default/demo/demo?command=touch&command=/tmp/pwned&output=1 HTTP/1.1\r\n' +
          'Host: kubelet\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n',
      );
    }
    // The apiserver closes the client connection after a failed upgrade, whatever follows; had it
    // spliced, the kubelet-sim would log the second request and answer it (a second status line).
    const closedInTime = await holdsWithin(() => closed, 5000);
    expect(kubeletLines().filter((l) => l.includes('SECOND REQUEST'))).toEqual([]);
    expect(got.toString('latin1').match(/^HTTP\/1\.[01] \d{3} /gm)).toHaveLength(1);
    expect(closedInTime).toBe(true);

    // The kubelet end: exactly one faulty answer for this exec, and its connection closed having
    // carried that one request and nothing else.
    expect(await holdsWithin(() => answered().length > before, 5000)).toBe(true);
    const mine = answered().slice(before);
    expect(mine).toHaveLength(1);
    expect(await kubeletConnectionClosed(m, mine[0]!)).toMatch(m.closedClean);
    expect(kubeletLines().filter((l) => l.includes('SECOND REQUEST'))).toEqual([]);
    expect(targetConnections).toBe(0);
  });
});

describe('the rest of the lab under a faulty kubelet', () => {
  it('keeps the Node, the pod and its logs', async () => {
    const k = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home-rest'));
    const nodes = await k.run([
      'get',
      'nodes',
      'node-1',
      '-o',
      'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
    ]);
    expect({ code: nodes.code, out: nodes.stdout.toString() }).toEqual({ code: 0, out: 'True' });
    const pods = await k.run(['get', 'pod', 'demo', '-o', 'jsonpath={.status.phase}']);
    expect({ code: pods.code, out: pods.stdout.toString() }).toEqual({ code: 0, out: 'Running' });
    const podLogs = await k.run(['logs', 'demo']);
    expect({ code: podLogs.code, err: podLogs.stderr }).toEqual({ code: 0, err: '' });
    expect(kubeletLines().filter((l) => l.includes('SECOND REQUEST'))).toEqual([]);
    expect(targetConnections).toBe(0);
  });
});
