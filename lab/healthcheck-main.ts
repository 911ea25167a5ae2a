/**
 * A container healthcheck (docker-compose.yml): one GET of a health endpoint, exit 0 on a 2xx.
 *
 *   node dist/lab/healthcheck-main.js --cacert /lab/pki/ca.crt https://localhost:6443/readyz
 *
 * Plays kubernetes `pkg/probe/http/http.go` (the kubelet's httpGet probe) for Docker, whose
 * healthchecks run commands. Differences: success is a 2xx only (upstream takes [200, 400); the
 * apiserver's /readyz and the kubelet's /healthz answer 200 when healthy, and a redirect is not
 * followed), and https is verified against `--cacert` (the lab CA), never skipped. Exits 1 with one
 * line on stderr otherwise; bounded by `--timeout`.
 */
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Command, InvalidArgumentError } from 'commander';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

/** GETs `url`; resolves with the status code, rejects on a connection or TLS error or timeout. */
export function probe(url: URL, opts: { ca?: string; timeoutMs: number }): Promise<number> {
  return new Promise((resolve, reject) => {
    const get = url.protocol === 'https:' ? https.get : http.get;
    const req = get(url, { ca: opts.ca, timeout: opts.timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)));
    req.on('error', reject);
  });
}

async function main(): Promise<number> {
  const o = new Command('healthcheck')
    .description('GET a health endpoint; exit 0 on a 2xx answer')
    .argument('<url>', 'http(s) URL of the endpoint')
    .option('--cacert <file>', 'CA that verifies an https endpoint (PEM)')
    .option('--timeout <seconds>', 'give up after this long', seconds, 3)
    .parse();
  const opts = o.opts<{ cacert?: string; timeout: number }>();
  const url = new URL(o.args[0]!);
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new Error(`not an http(s) URL: ${url.href}`);
  const ca = opts.cacert ? fs.readFileSync(opts.cacert, 'utf8') : undefined;
  const status = await probe(url, { ca, timeoutMs: opts.timeout * 1000 });
  if (status >= 200 && status < 300) return 0;
  process.stderr.write(`[healthcheck] ${url.href}: HTTP ${status}\n`);
  return 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[healthcheck] ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
