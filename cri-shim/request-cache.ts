/**
 * Pending streaming requests, keyed by single-use random tokens: what an Exec/Attach call hands
 * back as `<streamingUrl>/exec/<token>`.
 *
 * Mirrors kubelet `pkg/cri/streaming/request_cache.go`: tokens are random and URL-safe, used at
 * most once, valid for one minute, and at most 1000 may be outstanding — beyond that, Insert
 * fails with RESOURCE_EXHAUSTED (upstream answers HTTP 429 with Retry-After when it translates
 * that error). Expired entries are dropped lazily, oldest first, on every insert and consume.
 * Tokens are 16 random bytes (upstream uses 8).
 */
import { randomBytes } from 'node:crypto';
import { CriError } from './errors.js';

export const TOKEN_TTL_MS = 60_000;
export const MAX_IN_FLIGHT = 1000;

export interface ExecRequestEntry {
  kind: 'exec';
  /** The Audit-Id the kubelet sent with the CRI call (gRPC metadata `audit-id`). */
  auditID?: string;
  containerId: string;
  cmd: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}
export interface AttachRequestEntry {
  kind: 'attach';
  /** The Audit-Id the kubelet sent with the CRI call (gRPC metadata `audit-id`). */
  auditID?: string;
  containerId: string;
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}
export interface PortForwardRequestEntry {
  kind: 'portforward';
  /** The Audit-Id the kubelet sent with the CRI call (gRPC metadata `audit-id`). */
  auditID?: string;
  sandboxId: string;
  /** Ports of the CRI request; the streaming request's `?port=` query takes precedence. */
  ports: number[];
}
export type StreamingRequest = ExecRequestEntry | AttachRequestEntry | PortForwardRequestEntry;

export class RequestCache {
  // A Map iterates in insertion order, and every entry lives equally long: the first entry is the
  // oldest, so expiry walks from the front.
  private readonly entries = new Map<string, { req: StreamingRequest; expires: number }>();

  constructor(
    private readonly ttlMs = TOKEN_TTL_MS,
    private readonly maxInFlight = MAX_IN_FLIGHT,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    this.gc();
    return this.entries.size;
  }

  /** Stores a request and returns its token; RESOURCE_EXHAUSTED when too many are outstanding. */
  insert(req: StreamingRequest): string {
    this.gc();
    if (this.entries.size >= this.maxInFlight) {
      throw CriError.exhausted(`maximum number of in-flight requests exceeded (${this.maxInFlight})`);
    }
    let token: string;
    do token = randomBytes(16).toString('base64url');
    while (this.entries.has(token));
    this.entries.set(token, { req, expires: this.now() + this.ttlMs });
    return token;
  }

  /** The request for a token, removing it; undefined when unknown, used or expired. */
  consume(token: string): StreamingRequest | undefined {
    this.gc();
    const e = this.entries.get(token);
    if (!e) return undefined;
    this.entries.delete(token);
    return e.req;
  }

  private gc(): void {
    const now = this.now();
    for (const [token, e] of this.entries) {
      if (e.expires > now) break;
      this.entries.delete(token);
    }
  }
}
