/**
 * A tiny in-memory apiserver for the kubelet-sim's unit tests: just the calls a kubelet makes
 * (nodes, nodes/status, pods list / watch by `spec.nodeName`, pods/status, delete). It records
 * the bearer tokens it saw; it does not check them. `watch: false` makes it refuse to watch (400),
 * to exercise the kubelet's relist fallback.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type net from 'node:net';
import { randomUUID } from 'node:crypto';
import type { Node, Pod, WatchEvent } from '../../shared/api/core-v1.js';
import type { Lease } from '../apiserver-client.js';
import { closeServer, listen } from '../../shared/test-support/loopback.js';
import { failureStatus } from '../../shared/status.js';

type Obj = Pod | Node | Lease;

export class FakeApiServer {
  readonly nodes = new Map<string, Node>();
  /** Leases by `namespace/name` (coordination.k8s.io/v1). */
  readonly leases = new Map<string, Lease>();
  readonly pods = new Map<string, Pod>(); // ns/name
  readonly tokens: string[] = [];
  readonly requests: string[] = [];
  private rv = 1;
  private readonly history: { rv: number; ev: WatchEvent<Pod> }[] = [];
  private readonly watchers = new Set<(ev: WatchEvent<Pod>) => void>();
  private readonly server: http.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(private readonly opts: { watch?: boolean } = {}) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<this> {
    this.port = await listen(this.server);
    return this;
  }

  close(): Promise<void> {
    return closeServer(this.server, this.sockets);
  }

  /** Creates a pod as a user would (uid, resourceVersion, creationTimestamp set). */
  createPod(pod: Pod): Pod {
    const p = structuredClone(pod);
    p.metadata.namespace ??= 'default';
    p.metadata.uid = randomUUID();
    p.metadata.creationTimestamp = new Date().toISOString();
    p.status = { phase: 'Pending' };
    this.store(p, 'ADDED');
    return p;
  }

  getPod(ns: string, name: string): Pod | undefined {
    return this.pods.get(`${ns}/${name}`);
  }

  deletePod(ns: string, name: string): void {
    const p = this.pods.get(`${ns}/${name}`);
    if (!p) return;
    this.pods.delete(`${ns}/${name}`);
    p.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: 'DELETED', object: p });
  }

  private store(p: Pod, type: 'ADDED' | 'MODIFIED'): void {
    p.metadata.resourceVersion = String(++this.rv);
    this.pods.set(`${p.metadata.namespace}/${p.metadata.name}`, p);
    this.emit({ type, object: structuredClone(p) });
  }

  /** Every version of the pod stored so far, oldest first (each status write is one). */
  podVersions(ns: string, name: string): Pod[] {
    return this.history
      .map((h) => h.ev.object)
      .filter((p) => p.metadata.namespace === ns && p.metadata.name === name);
  }

  private emit(ev: WatchEvent<Pod>): void {
    this.history.push({ rv: this.rv, ev });
    for (const w of this.watchers) w(ev);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const auth = req.headers.authorization ?? '';
    this.tokens.push(auth.replace(/^Bearer /, ''));
    this.requests.push(`${req.method} ${req.url}`);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = chunks.length ? (JSON.parse(Buffer.concat(chunks).toString()) as Obj) : undefined;
      try {
        this.route(req, res, body);
      } catch (err) {
        send(res, 500, failureStatus(500, String(err)));
      }
    });
  }

  private route(req: IncomingMessage, res: ServerResponse, body: Obj | undefined): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const p = url.pathname;
    const m = req.method;
    let g: RegExpExecArray | null;
    if (m === 'POST' && p === '/api/v1/nodes') {
      const n = body as Node;
      const name = n.metadata.name!;
      if (this.nodes.has(name))
        return send(res, 409, failureStatus(409, `nodes "${name}" already exists`, 'AlreadyExists'));
      n.metadata.uid = randomUUID();
      n.metadata.resourceVersion = String(++this.rv);
      delete n.status; // like pods: status only through the subresource
      this.nodes.set(name, n);
      return send(res, 201, n);
    }
    if ((g = /^\/api\/v1\/nodes\/([^/]+)(\/status)?$/.exec(p))) {
      const n = this.nodes.get(g[1]!);
      if (!n) return send(res, 404, failureStatus(404, `nodes "${g[1]}" not found`));
      if (m === 'GET' && !g[2]) return send(res, 200, n);
      if (m === 'PUT' && g[2]) {
        n.status = (body as Node).status;
        n.metadata.resourceVersion = String(++this.rv);
        return send(res, 200, n);
      }
    }
    if ((g = /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/([^/]+)\/leases(?:\/([^/]+))?$/.exec(p))) {
      const key = `${g[1]}/${g[2] ?? (body as Lease | undefined)?.metadata?.name ?? ''}`;
      const lease = this.leases.get(key);
      if (m === 'GET' || m === 'PUT') {
        if (!lease)
          return send(res, 404, failureStatus(404, `leases.coordination.k8s.io "${g[2]}" not found`));
        if (m === 'GET') return send(res, 200, lease);
      }
      if (m === 'POST' && lease) {
        return send(res, 409, failureStatus(409, `leases "${g[2]}" already exists`, 'AlreadyExists'));
      }
      const next = body as Lease;
      next.metadata.resourceVersion = String(++this.rv);
      this.leases.set(key, next);
      return send(res, m === 'POST' ? 201 : 200, next);
    }
    if (m === 'GET' && p === '/api/v1/pods') {
      const sel = url.searchParams.get('fieldSelector') ?? '';
      const node = /^spec\.nodeName=(.*)$/.exec(sel)?.[1];
      const match = (pod: Pod): boolean => node === undefined || pod.spec.nodeName === node;
      if (url.searchParams.get('watch') === 'true') {
        if (this.opts.watch === false) return send(res, 400, failureStatus(400, 'watch is not supported'));
        return this.watch(res, Number(url.searchParams.get('resourceVersion') ?? this.rv), match, url);
      }
      const items = [...this.pods.values()].filter(match);
      return send(res, 200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
    }
    if ((g = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)(\/status)?$/.exec(p))) {
      const key = `${g[1]}/${g[2]}`;
      const pod = this.pods.get(key);
      if (!pod) return send(res, 404, failureStatus(404, `pods "${g[2]}" not found`));
      if (m === 'GET' && !g[3]) return send(res, 200, pod);
      if (m === 'PUT' && g[3]) {
        const upd = body as Pod;
        if (upd.metadata.uid && upd.metadata.uid !== pod.metadata.uid) {
          return send(res, 409, failureStatus(409, 'uid mismatch', 'Conflict'));
        }
        pod.status = upd.status;
        this.store(pod, 'MODIFIED');
        return send(res, 200, pod);
      }
      if (m === 'DELETE' && !g[3]) {
        this.deletePod(g[1]!, g[2]!);
        return send(res, 200, pod);
      }
    }
    send(res, 404, failureStatus(404, `no route for ${m} ${p}`));
  }

  private watch(res: ServerResponse, since: number, match: (p: Pod) => boolean, url: URL): void {
    res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' });
    const write = (ev: WatchEvent<Pod>): void => {
      if (match(ev.object)) res.write(JSON.stringify(ev) + '\n');
    };
    for (const h of this.history) if (h.rv > since) write(h.ev);
    this.watchers.add(write);
    const timer = setTimeout(() => res.end(), Number(url.searchParams.get('timeoutSeconds') ?? 30) * 1000);
    res.on('close', () => {
      clearTimeout(timer);
      this.watchers.delete(write);
    });
  }
}

function send(res: ServerResponse, code: number, body: unknown): void {
  const s = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(s) });
  res.end(s);
}
