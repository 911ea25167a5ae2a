/**
 * A small `fetch`-like request for tests against the lab's https apiserver. Node 20's global fetch
 * takes no CA per call (only NODE_EXTRA_CA_CERTS for the whole process), so this goes through
 * `https.request` with `ca`: the lab CA, as a kubeconfig's certificate-authority-data gives it.
 */
import http from 'node:http';
import https from 'node:https';

export interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string;
  /** PEM CA bundle to trust (https only). */
  ca?: string | Buffer;
  /** A client certificate and its key (https only), e.g. the apiserver's for a kubelet. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  json(): unknown;
}

export function request(url: string | URL, opts: RequestOptions = {}): Promise<Reply> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: opts.method ?? 'GET',
        headers: opts.headers,
        ...(u.protocol === 'https:' && opts.ca ? { ca: opts.ca } : {}),
        ...(u.protocol === 'https:' && opts.cert ? { cert: opts.cert, key: opts.key } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}
