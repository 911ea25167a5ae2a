/**
 * The compose healthcheck (healthcheck-main.ts, from dist/: `npm run build` first) against a real
 * https server with a certificate from the lab CA: healthy only on a 2xx over verified TLS.
 */
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import type net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { packageRoot } from '../shared/package-root.js';
import { ensureLabPki } from './pki.js';

const script = path.join(packageRoot(), 'dist', 'lab', 'healthcheck-main.js');
let dir = '';
let server: https.Server | undefined;
let base = '';
let caFile = '';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'healthcheck-'));
  const pki = await ensureLabPki(dir);
  caFile = pki.caFile;
  server = https.createServer(
    { cert: fs.readFileSync(pki.apiserverCertFile), key: fs.readFileSync(pki.apiserverKeyFile) },
    (req, res) => {
      res.writeHead(req.url === '/readyz' ? 200 : 500);
      res.end(req.url === '/readyz' ? 'ok' : 'not ready');
    },
  );
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  base = `https://localhost:${(server.address() as net.AddressInfo).port}`;
}, 30_000);

afterAll(async () => {
  if (server) await new Promise((r) => server!.close(r));
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Runs the probe (asynchronously: the server answers from this process). */
function check(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [script, ...args], { timeout: 20_000 }, (err, _out, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr }),
    );
  });
}

it('is healthy on a 2xx from a server the given CA verifies', async () => {
  expect(await check(['--cacert', caFile, `${base}/readyz`])).toEqual({ code: 0, stderr: '' });
});

it('is unhealthy on a 5xx, an unverified certificate, or nobody listening', async () => {
  const bad = await check(['--cacert', caFile, `${base}/broken`]);
  expect(bad.code).toBe(1);
  expect(bad.stderr).toContain('HTTP 500');
  const untrusted = await check([`${base}/readyz`]);
  expect(untrusted.code).toBe(1);
  expect(untrusted.stderr).toMatch(/certificate/i);
  const port = spawnSync(process.execPath, [
    '-e',
    "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})",
  ])
    .stdout.toString()
    .trim();
  const refused = await check(['--cacert', caFile, `https://127.0.0.1:${port}/readyz`]);
  expect(refused.code).toBe(1);
  expect(refused.stderr).toContain('ECONNREFUSED');
});
