/**
 * Streaming-token exhaustion, end to end. The cri-shim hands out at most 1,000 outstanding one-time
 * streaming tokens (upstream request_cache.go: maxInFlight 1000, cacheTTL 1 minute); CRI Exec beyond
 * that is RESOURCE_EXHAUSTED, which the kubelet answers with 429 TooManyRequests and Retry-After
 * (upstream pkg/kubelet/cri/streaming/errors.go WriteError, from server.go getExec). Here the cache
 * is filled through the real CRI gRPC socket, then real execs go through apiserver → kubelet-sim →
 * cri-shim (the lab's three processes, from dist/), and using tokens frees the slots again. Tokens
 * are single use: a streaming URL used once is 404 the second time.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { connectRuntime, GrpcStatus, isGrpcError, type RuntimeServiceClient } from '../shared/cri/client.js';
import { runChannelClient } from '../shared/remotecommand/websocket-client.js';
import { UpgradeRefusedError } from '../shared/httpstream/upgrade-refusal.js';
import { startLab, type Lab } from '../lab/lab.js';
import { request } from './support/https.js';
import { runKexec } from './support/processes.js';

/** cri-shim/request-cache.ts MAX_IN_FLIGHT, upstream's maxInFlight. */
const MAX_IN_FLIGHT = 1000;

let dir = '';
let lab: Lab;
let ca = '';
let runtime: RuntimeServiceClient;
let containerId = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tokens-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, log: () => {} });
  ca = fs.readFileSync(lab.caFile!, 'utf8');
  runtime = connectRuntime(lab.nodes[0]!.criEndpoint);
  await runtime.waitForReady(5000);
  const { containers } = await runtime.listContainers({
    filter: { label_selector: { 'io.kubernetes.pod.name': 'demo' } },
  });
  containerId = containers[0]!.id;
}, 90_000);

afterAll(async () => {
  runtime?.close();
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

const kexec = (...args: string[]) => ['--kubeconfig', lab.kubeconfigPath, ...args];

/** CRI Exec straight on the runtime's socket, as the kubelet calls it: a one-time streaming URL. */
async function criExec(): Promise<string> {
  const { url } = await runtime.exec({ container_id: containerId, cmd: ['echo', 'token'], stdout: true });
  return url;
}

/** Runs a streaming URL from CRI Exec as the kubelet's proxy would, over WebSocket v5. */
async function useStreamingUrl(url: string): Promise<{ out: string; exitCode: number }> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c: Buffer) => (text += c.toString()));
  const res = await runChannelClient({ url, stdout: out, tls: { ca } });
  return { out: text, exitCode: res.exitCode };
}

/** An exec upgrade through the apiserver that is spliced (SPDY): the kubelet's answer, as is. */
function spdyExecThroughChain() {
  return request(`${lab.apiserverUrl}/api/v1/namespaces/default/pods/demo/exec?command=true&stdout=true`, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${lab.adminToken}`,
      Connection: 'Upgrade',
      Upgrade: 'SPDY/3.1',
      'X-Stream-Protocol-Version': 'v4.channel.k8s.io',
    },
    ca,
  });
}

describe('streaming-token exhaustion through the chain', () => {
  const urls: string[] = [];

  it('single use: a streaming URL from CRI Exec runs once, then is 404', async () => {
    const url = await criExec();
    expect(url).toMatch(/^https:\/\/[^/]+\/exec\/[\w-]+$/);
    expect(await useStreamingUrl(url)).toEqual({ out: 'token\n', exitCode: 0 });
    const again = await useStreamingUrl(url).then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(again).toBeInstanceOf(UpgradeRefusedError);
    expect((again as UpgradeRefusedError).httpCode).toBe(404);
    expect((again as UpgradeRefusedError).status).toMatchObject({ reason: 'NotFound' });
  });

  it(`fills the runtime's cache with ${MAX_IN_FLIGHT} CRI Exec calls; the next is RESOURCE_EXHAUSTED`, async () => {
    // Bounded: ten rounds of 100 concurrent calls, then one more.
    for (let round = 0; round < MAX_IN_FLIGHT / 100; round++) {
      urls.push(...(await Promise.all(Array.from({ length: 100 }, criExec))));
    }
    expect(new Set(urls).size).toBe(MAX_IN_FLIGHT);
    const err = await criExec().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isGrpcError(err, GrpcStatus.RESOURCE_EXHAUSTED)).toBe(true);
  }, 60_000);

  it('answers a spliced exec through the apiserver with 429 TooManyRequests and Retry-After', async () => {
    const res = await spdyExecThroughChain();
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBe('60');
    expect(res.json()).toMatchObject({
      kind: 'Status',
      status: 'Failure',
      code: 429,
      reason: 'TooManyRequests',
      details: { retryAfterSeconds: 60 },
    });
  });

  it('ends a translated (WebSocket v5) exec with the TooManyRequests Status, as kexec shows it', async () => {
    const res = await runKexec(kexec('demo', '--', 'true'));
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('Error from server (TooManyRequests)');
    expect(res.stderr).toContain('maximum number of in-flight requests exceeded');
  });

  it('serves exec again once tokens are used, and a used one stays used', async () => {
    // Using a token frees its slot: the token itself works, once.
    const used = urls.shift()!;
    expect(await useStreamingUrl(used)).toEqual({ out: 'token\n', exitCode: 0 });
    const ok = await runKexec(kexec('demo', '--', 'echo', 'back'));
    expect({ code: ok.code, out: ok.stdout.toString(), err: ok.stderr }).toEqual({
      code: 0,
      out: 'back\n',
      err: '',
    });
    // The chain spent its own token: a free slot again, so one more works too, over SPDY.
    expect((await runKexec(kexec('--protocol', 'spdy', 'demo', '--', 'true'))).code).toBe(0);
    await expect(useStreamingUrl(used)).rejects.toMatchObject({ httpCode: 404 });
  }, 30_000);
});
