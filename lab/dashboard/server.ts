/**
 * The lab's live dashboard: an express app on loopback that shows nodes, pods, the streams each
 * hop carries (bytes and rate), recent requests by Audit-Id with the sequence of one request's
 * steps across the hops, and two switches: each kubelet-sim's fault drill and the apiserver's
 * `--max-connection-bytes-per-sec`. The page (public/) is plain HTML, CSS and JS, no build step;
 * it is updated by Server-Sent Events.
 *
 * Who may look: loopback only (bound to 127.0.0.1, and the Host header must name it, against DNS
 * rebinding), and authenticated — by the admin's token (`Authorization: Bearer`), or by the
 * one-time login link the lab prints, which is exchanged for an HttpOnly, SameSite=Strict session
 * cookie and cannot be used twice. A change (PUT) also needs a JSON body, which a cross-site form
 * cannot send. Every switch goes through the apiserver with the admin's token, so it is
 * authorised there (nonResourceURLs `/debug/*`, `nodes/proxy`) and logged in its audit log.
 *
 * Upstream has no dashboard in the control plane; the Kubernetes Dashboard is an add-on that reads
 * the API. This one also reads the hops' `/debug/` endpoints and the audit log.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { ClientConfig } from '../../kexec/client.js';
import { packageRoot } from '../../shared/package-root.js';
import type { LabLogView } from '../log-view.js';
import { ClusterReader, type ClusterState } from './cluster-state.js';
import { LineFollower, RequestIndex } from './request-index.js';

export interface DashboardOptions {
  /** The admin's client configuration (the kubeconfig the lab wrote). */
  client: ClientConfig;
  adminToken: string;
  auditLogPath: string;
  logs: LabLogView;
  /** 0 picks a free port. */
  port?: number;
  /** How often the cluster is read for the live view. Default 1000 ms. */
  refreshMs?: number;
}

export interface Dashboard {
  url: string;
  /** Opens the page once: the token in it is exchanged for a session cookie. */
  newLoginLink(): string;
  close(): Promise<void>;
}

const COOKIE = 'kexec_dashboard';
const MAX_SSE_CLIENTS = 16;

export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const reader = new ClusterReader(opts.client);
  const requests = new RequestIndex();
  const unlisten = opts.logs.onRecord((service, r) => requests.addRecord(service, r));
  const audit = new LineFollower(opts.auditLogPath, (l) => requests.addAuditLine(l));
  audit.start();

  const loginTokens = new Set<string>();
  const sessions = new Set<string>();
  let host = '';

  const app = express();
  app.disable('x-powered-by');
  app.use((req, res, next) => {
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    );
    if (req.headers.host !== host && req.headers.host !== host.replace('127.0.0.1', 'localhost')) {
      return void res.status(421).type('text/plain').send('wrong Host: open the URL the lab printed\n');
    }
    next();
  });

  app.get('/login', (req, res) => {
    const token = typeof req.query.token === 'string' ? req.query.token : '';
    if (!loginTokens.delete(token)) {
      return void res
        .status(401)
        .type('text/plain')
        .send('this login link is unknown or was already used; the lab prints a new one at start\n');
    }
    const session = randomBytes(24).toString('base64url');
    sessions.add(session);
    res.setHeader('Set-Cookie', `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`);
    res.redirect(303, '/');
  });

  const authenticated = (req: Request, res: Response, next: NextFunction): void => {
    if (sessionOf(req, sessions) || bearerIs(req, opts.adminToken)) return next();
    if (req.path === '/' || req.path.endsWith('.html')) {
      res
        .status(401)
        .type('text/html')
        .send(
          '<!doctype html><title>kexec lab</title><p>Open the dashboard with the login link the lab printed ' +
            '(<code>npm start</code>), or send the admin token as <code>Authorization: Bearer</code>.</p>',
        );
      return;
    }
    res.status(401).json({ message: 'Unauthorized: log in with the link the lab printed' });
  };
  app.use(authenticated);
  app.use(express.static(path.join(packageRoot(), 'lab', 'dashboard', 'public'), { index: 'index.html' }));

  let latest: ClusterState | undefined;
  const refresh = async (): Promise<ClusterState> => (latest = await reader.read());

  app.get('/api/state', async (_req, res) => void res.json(await refresh()));
  app.get('/api/requests', (_req, res) => void res.json(requests.list().slice(0, 100)));
  app.get('/api/requests/:id', (req, res) => {
    const found = requests.steps(req.params.id);
    if (!found) return void res.status(404).json({ message: `no request with Audit-Id ${req.params.id}` });
    res.json(found);
  });

  const json = express.json({ limit: '4kb' });
  const flag =
    (to: (body: Record<string, unknown>) => { path: string; value: string }) =>
    async (req: Request, res: Response): Promise<void> => {
      if (!req.is('application/json')) return void res.status(415).json({ message: 'send JSON' });
      const body = (req.body ?? {}) as Record<string, unknown>;
      try {
        const { path: p, value } = to(body);
        const set = await reader.putFlag(p, value);
        res.json({ value: set });
        void refresh().then(push, () => {});
      } catch (err) {
        res.status(400).json({ message: err instanceof Error ? err.message : String(err) });
      }
    };
  app.put(
    '/api/flags/fault',
    json,
    flag((b) => {
      const node = typeof b.node === 'string' ? b.node : '';
      if (!/^[a-z0-9.-]{1,253}$/.test(node)) throw new Error('node: expected a node name');
      return { path: `/api/v1/nodes/${node}/proxy/debug/flags/fault`, value: String(b.value ?? '') };
    }),
  );
  app.put(
    '/api/flags/max-connection-bytes-per-sec',
    json,
    flag((b) => ({ path: '/debug/flags/max-connection-bytes-per-sec', value: String(b.value ?? '') })),
  );

  // Server-Sent Events: the state every refresh, and the requests list; a few readers at most.
  const streams = new Set<Response>();
  app.get('/api/events', (req, res) => {
    if (streams.size >= MAX_SSE_CLIENTS) return void res.status(503).json({ message: 'too many viewers' });
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    res.write('retry: 2000\n\n');
    streams.add(res);
    if (latest) send(res, latest);
    req.on('close', () => streams.delete(res));
  });
  const send = (res: Response, state: ClusterState): void => {
    res.write(`event: state\ndata: ${JSON.stringify(state)}\n\n`);
    res.write(`event: requests\ndata: ${JSON.stringify(requests.list().slice(0, 100))}\n\n`);
  };
  const push = (state: ClusterState): void => {
    for (const s of streams) send(s, state);
  };

  const refreshMs = opts.refreshMs ?? 1000;
  let refreshing = false;
  const timer = setInterval(() => {
    if (refreshing || streams.size === 0) return;
    refreshing = true;
    refresh()
      .then(push, () => {})
      .finally(() => (refreshing = false));
  }, refreshMs);
  timer.unref();

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(opts.port ?? 0, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  const url = `http://${host}/`;
  return {
    url,
    newLoginLink() {
      const token = randomBytes(24).toString('base64url');
      loginTokens.add(token);
      return `${url}login?token=${token}`;
    },
    async close() {
      clearInterval(timer);
      audit.stop();
      unlisten();
      for (const s of streams) s.end();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function sessionOf(req: Request, sessions: Set<string>): boolean {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE && v && sessions.has(v)) return true;
  }
  return false;
}

function bearerIs(req: Request, token: string): boolean {
  const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return false;
  const a = Buffer.from(m[1]!);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}
