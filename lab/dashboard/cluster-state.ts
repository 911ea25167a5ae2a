/**
 * What the dashboard shows of the running lab, read the way an admin would: nodes and pods from
 * the API, the live streams from each hop's `/debug/sessions` (the apiserver's own, each
 * kubelet-sim's through the node proxy), the fault drill of each kubelet-sim
 * (`/debug/flags/fault`) and the apiserver's byte-rate limit
 * (`/debug/flags/max-connection-bytes-per-sec`). Every request carries the admin's token.
 *
 * Rates are worked out here: bytes per second of each stream between two snapshots.
 */
import http from 'node:http';
import https from 'node:https';
import type { ClientConfig } from '../../kexec/client.js';
import { apiRequest, apiUrl } from '../../kexec/client.js';
import type { StreamSnapshot } from '../../shared/metrics/stream-sessions.js';
import { DASHBOARD_USER_AGENT } from './request-index.js';

export interface SessionView extends StreamSnapshot {
  /** Bytes per second up and down since the previous snapshot. */
  rateUp: number;
  rateDown: number;
}

export interface NodeView {
  name: string;
  ready: boolean;
  address?: string;
  kubeletPort?: number;
  runtime?: string;
  /** The kubelet-sim's fault drill (`none` when off), or the error reading it. */
  fault: string;
}

export interface PodView {
  namespace: string;
  name: string;
  node?: string;
  phase: string;
  podIP?: string;
  containers: string[];
}

export interface ClusterState {
  at: string;
  nodes: NodeView[];
  pods: PodView[];
  sessions: SessionView[];
  maxConnectionBytesPerSec: string;
  errors: string[];
}

interface NodeObject {
  metadata: { name: string };
  status?: {
    conditions?: { type: string; status: string }[];
    addresses?: { type: string; address: string }[];
    daemonEndpoints?: { kubeletEndpoint?: { Port?: number } };
    nodeInfo?: { containerRuntimeVersion?: string };
  };
}

interface PodObject {
  metadata: { name: string; namespace?: string };
  spec?: { nodeName?: string; containers?: { name: string }[] };
  status?: { phase?: string; podIP?: string };
}

export class ClusterReader {
  private previous = new Map<string, { at: number; up: number; down: number }>();

  private readonly cfg: ClientConfig;

  constructor(cfg: ClientConfig) {
    // Named, so that the request list can leave the dashboard's own reads out.
    this.cfg = { ...cfg, headers: { ...cfg.headers, 'User-Agent': DASHBOARD_USER_AGENT } };
  }

  async read(): Promise<ClusterState> {
    const errors: string[] = [];
    const soft = <T>(what: string, p: Promise<T>, fallback: T): Promise<T> =>
      p.catch((err: unknown) => {
        errors.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
        return fallback;
      });
    const [nodeList, podList, apiSessions, maxBytes] = await Promise.all([
      soft('nodes', this.json<{ items: NodeObject[] }>('/api/v1/nodes'), { items: [] }),
      soft('pods', this.json<{ items: PodObject[] }>('/api/v1/pods'), { items: [] }),
      soft('apiserver sessions', this.json<StreamSnapshot[]>('/debug/sessions'), []),
      soft(
        'max-connection-bytes-per-sec',
        this.text('GET', '/debug/flags/max-connection-bytes-per-sec'),
        '?',
      ),
    ]);
    const perNode = await Promise.all(
      nodeList.items.map(async (n) => {
        const base = `/api/v1/nodes/${encodeURIComponent(n.metadata.name)}/proxy`;
        const [sessions, fault] = await Promise.all([
          soft(`${n.metadata.name} sessions`, this.json<StreamSnapshot[]>(`${base}/debug/sessions`), []),
          soft(`${n.metadata.name} fault`, this.text('GET', `${base}/debug/flags/fault`), '?'),
        ]);
        return {
          node: nodeView(n, fault.trim()),
          sessions: sessions.map((s) => ({ ...s, hop: `kubelet-sim ${n.metadata.name}` })),
        };
      }),
    );
    const now = Date.now();
    const sessions = [...apiSessions, ...perNode.flatMap((p) => p.sessions)].map((s) =>
      this.withRate(s, now),
    );
    this.previous = new Map(sessions.map((s) => [key(s), { at: now, up: s.bytesUp, down: s.bytesDown }]));
    return {
      at: new Date(now).toISOString(),
      nodes: perNode.map((p) => p.node),
      pods: podList.items.map(podView),
      sessions,
      maxConnectionBytesPerSec: maxBytes.trim(),
      errors,
    };
  }

  /** `PUT` a plain-text flag value; resolves with the value the service answers back. */
  async putFlag(path: string, value: string): Promise<string> {
    return (await this.text('PUT', path, value)).trim();
  }

  private withRate(s: StreamSnapshot, now: number): SessionView {
    const before = this.previous.get(key(s));
    const secs = before ? (now - before.at) / 1000 : 0;
    const rate = (n: number, was: number | undefined) =>
      secs > 0 && was !== undefined ? Math.max(0, Math.round((n - was) / secs)) : 0;
    return { ...s, rateUp: rate(s.bytesUp, before?.up), rateDown: rate(s.bytesDown, before?.down) };
  }

  private async json<T>(path: string): Promise<T> {
    const res = await apiRequest(this.cfg, 'GET', apiUrl(this.cfg, path), undefined, 5000);
    if (res.code !== 200) throw new Error(`${res.code} ${statusMessage(res.body)}`);
    return JSON.parse(res.body) as T;
  }

  /** A request with a plain-text body (apiRequest sends JSON, flags take the bare value). */
  private text(method: string, path: string, body?: string): Promise<string> {
    const url = apiUrl(this.cfg, path);
    const payload = body === undefined ? undefined : Buffer.from(body);
    const headers: Record<string, string> = { ...this.cfg.headers, Accept: 'text/plain, application/json' };
    if (payload) {
      headers['Content-Type'] = 'text/plain';
      headers['Content-Length'] = String(payload.length);
    }
    const mod = url.protocol === 'https:' ? https : http;
    return new Promise((resolve, reject) => {
      const req = mod.request(
        url,
        { method, headers, ...(url.protocol === 'https:' ? this.cfg.tls : {}) },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            if (res.statusCode === 200) resolve(text);
            else reject(new Error(`${res.statusCode} ${statusMessage(text)}`));
          });
          res.on('error', reject);
        },
      );
      req.setTimeout(5000, () => req.destroy(new Error('timeout after 5000 ms')));
      req.on('error', reject);
      req.end(payload);
    });
  }
}

function key(s: StreamSnapshot): string {
  return `${s.hop}#${s.id}`;
}

/** A Status body's message, or the text itself. */
function statusMessage(body: string): string {
  try {
    const s = JSON.parse(body) as { message?: string };
    if (typeof s.message === 'string') return s.message;
  } catch {
    // not JSON
  }
  return body.slice(0, 200);
}

function nodeView(n: NodeObject, fault: string): NodeView {
  const st = n.status ?? {};
  return {
    name: n.metadata.name,
    ready: (st.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    address: st.addresses?.find((a) => a.type === 'InternalIP')?.address,
    kubeletPort: st.daemonEndpoints?.kubeletEndpoint?.Port,
    runtime: st.nodeInfo?.containerRuntimeVersion,
    fault,
  };
}

function podView(p: PodObject): PodView {
  return {
    namespace: p.metadata.namespace ?? 'default',
    name: p.metadata.name,
    node: p.spec?.nodeName,
    phase: p.status?.phase ?? 'Pending',
    podIP: p.status?.podIP,
    containers: (p.spec?.containers ?? []).map((c) => c.name),
  };
}
