/**
 * Test helpers for the apiserver: an in-process server on a loopback port, tokens for any user,
 * and small HTTP clients (JSON requests, watches read line by line).
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { ADMIN_GROUP, APISERVER_AUDIENCE, mintToken } from '../../shared/auth/tokens.js';
import { exitStatus } from '../../shared/remotecommand/exit-status.js';
import type { RemoteCommandSession } from '../../shared/remotecommand/session.js';
import { acceptChannelSession } from '../../shared/remotecommand/websocket-server.js';
import { acceptSpdySession } from '../../shared/remotecommand/spdy-server.js';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../server.js';

export const KEY = randomBytes(32);

export function tokenFor(
  name: string,
  groups: string[] = [],
  opts: { audience?: string; expiresInSec?: number; key?: Buffer } = {},
): string {
  return mintToken(
    opts.key ?? KEY,
    { name, groups },
    { audience: opts.audience ?? APISERVER_AUDIENCE, expiresInSec: opts.expiresInSec },
  );
}

export const ADMIN = tokenFor('admin', [ADMIN_GROUP]);

/** An apiserver on a free loopback port; the scheduler is off unless asked for (it writes to pods). */
export async function testServer(opts: Partial<ApiServerOptions> = {}): Promise<ApiServer> {
  return startApiServer({ port: 0, signingKey: KEY, log: () => {}, scheduler: false, ...opts });
}

export interface Reply {
  code: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  /** Bearer token; null sends none. Default: the admin's. */
  token?: string | null;
  contentType?: string;
  raw?: string;
}

export async function api(
  server: ApiServer,
  method: string,
  path: string,
  opts: RequestOptions = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  const token = opts.token === undefined ? ADMIN : opts.token;
  if (token !== null) headers.Authorization = `Bearer ${token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) body = JSON.stringify(opts.body);
  if (body !== undefined) headers['Content-Type'] = opts.contentType ?? 'application/json';
  const res = await fetch(server.url + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { code: res.status, headers: res.headers, body: parsed, text };
}

export function pod(
  name: string,
  extra: { nodeName?: string; containers?: string[]; labels?: Record<string, string> } = {},
) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, ...(extra.labels ? { labels: extra.labels } : {}) },
    spec: {
      ...(extra.nodeName ? { nodeName: extra.nodeName } : {}),
      containers: (extra.containers ?? ['main']).map((c) => ({ name: c, image: 'busybox' })),
    },
  };
}

export function node(name: string, address: string, port: number) {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: {
      addresses: [
        { type: 'InternalIP', address },
        { type: 'Hostname', address: name },
      ],
      daemonEndpoints: { kubeletEndpoint: { Port: port } },
    },
  };
}

export interface WatchStream {
  code: number;
  /** Resolves with the next parsed line; rejects if the stream ends first. */
  next(): Promise<{ type: string; object: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Resolves when the server ends the response. */
  ended: Promise<void>;
  close(): void;
}

/** Opens a watch and reads its newline-delimited events. */
export async function watch(server: ApiServer, path: string, token: string = ADMIN): Promise<WatchStream> {
  const req = http.get(server.url + path, { headers: { Authorization: `Bearer ${token}` } });
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const lines: string[] = [];
  const waiters: { resolve: (v: string) => void; reject: (e: Error) => void }[] = [];
  let buf = '';
  let over = false;
  const ended = new Promise<void>((resolve) => {
    res.on('close', () => {
      over = true;
      for (const w of waiters.splice(0)) w.reject(new Error(`watch ended; unread: ${JSON.stringify(buf)}`));
      resolve();
    });
  });
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w.resolve(line);
      else lines.push(line);
    }
  });
  res.on('error', () => {});
  return {
    code: res.statusCode ?? 0,
    next: async () => {
      const line =
        lines.shift() ??
        (over
          ? Promise.reject(new Error('watch ended'))
          : new Promise<string>((resolve, reject) => waiters.push({ resolve, reject })));
      return JSON.parse(await line);
    },
    ended,
    close: () => req.destroy(),
  };
}

/**
 * A fake kubelet's program for an upgrade it receives: SPDY for a POST (the StreamTranslator,
 * SPDY clients), a WebSocket channel session otherwise. It echoes stdin until it has seen
 * "kubelet", then exits 3 (it cannot wait for stdin's end: before v5 a client cannot close it).
 */
export async function serveEchoUntilKubelet(
  req: http.IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<RemoteCommandSession | undefined> {
  const streams = { stdin: true, stdout: true, stderr: true, tty: false };
  const session =
    req.method === 'POST'
      ? await acceptSpdySession(req, socket, head, streams)
      : acceptChannelSession(req, socket, head, streams);
  if (!session) return undefined;
  let text = '';
  session.stdin!.on('data', (c: Buffer) => {
    text += c.toString();
    session.stdout!.write(c);
    if (text.endsWith('kubelet')) void session.finish(exitStatus(3));
  });
  return session;
}
