/**
 * Where a node's kubelet listens and how the apiserver authenticates to it.
 *
 * Mirrors kubernetes `pkg/kubelet/client/kubelet_client.go` (NodeConnectionInfoGetter: the Node's
 * preferred address and `status.daemonEndpoints.kubeletEndpoint.Port`, default port 10250) and
 * `pkg/util/node` GetPreferredNodeAddress. Upstream always dials https and verifies the kubelet's
 * certificate only with `--kubelet-certificate-authority`; here the scheme is https once the
 * apiserver has any kubelet TLS setting (`--kubelet-certificate-authority`,
 * `--kubelet-client-certificate`), else plain http (tests, `lab --insecure-http`). The
 * apiserver's credential is its client certificate (CN kube-apiserver-kubelet-client, as kubeadm
 * issues it) or, without one, a bearer token minted from the lab's signing key (docs/wiring.md).
 */
import type { IncomingMessage } from 'node:http';
import type { ConnectionOptions } from 'node:tls';
import type { KeyObject } from 'node:crypto';
import { APISERVER_USER, KUBELET_AUDIENCE, mintRS256Token, mintToken } from '../shared/auth/tokens.js';
import type { Node } from '../shared/api/core-v1.js';
import type { Context, Getter } from './registry/rest.js';
import { type Logger } from '../shared/logging.js';

/** `--kubelet-preferred-address-types`: the lab's kubelets advertise InternalIP and Hostname. */
export const PREFERRED_ADDRESS_TYPES = ['InternalIP', 'ExternalIP', 'Hostname'];
export const DEFAULT_KUBELET_PORT = 10250;

export interface ConnectionInfo {
  scheme: 'http' | 'https';
  hostname: string;
  port: number;
}

export class NodeConnectionInfoGetter {
  constructor(
    private readonly nodes: Getter,
    private readonly scheme: ConnectionInfo['scheme'] = 'http',
  ) {}

  /** Throws the node's NotFound when the Node does not exist, as upstream does. */
  async getConnectionInfo(ctx: Context, nodeName: string): Promise<ConnectionInfo> {
    const node = (await this.nodes.get({ ...ctx, namespace: '' }, nodeName)) as Node;
    const addresses = node.status?.addresses ?? [];
    let hostname: string | undefined;
    for (const type of PREFERRED_ADDRESS_TYPES) {
      hostname = addresses.find((a) => a.type === type && a.address)?.address;
      if (hostname) break;
    }
    if (!hostname) {
      throw new Error(`no preferred addresses found; known addresses: ${JSON.stringify(addresses)}`);
    }
    const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port;
    return { scheme: this.scheme, hostname, port: port && port > 0 ? port : DEFAULT_KUBELET_PORT };
  }
}

/** A URL's host part: IPv6 literals in brackets. */
export function hostPort(info: ConnectionInfo): string {
  return `${info.hostname.includes(':') ? `[${info.hostname}]` : info.hostname}:${info.port}`;
}

/** The headers that carry this hop's credential: the token, unless a client certificate does. */
export function kubeletHeaders(cfg: { authorization?: () => string }): Record<string, string> {
  return cfg.authorization ? { Authorization: cfg.authorization() } : {};
}

/** The request's Audit-Id, passed on to the kubelet so that its log lines carry it too. */
export function auditIdHeader(req: IncomingMessage): Record<string, string> {
  const id = req.headers['audit-id'];
  return typeof id === 'string' && id ? { 'Audit-Id': id } : {};
}

/**
 * The apiserver's kubelet token, renewed well before it expires: RS256 with the private key of
 * `--kubelet-token-signing-key-file` when given, so that kubelets verify it with the public half
 * and no node holds a key that signs tokens (issue #11); else HS256 with the lab key (tests).
 */
export class KubeletCredentials {
  private token = '';
  private mintedAt = 0;

  constructor(
    private readonly key: Buffer | KeyObject,
    private readonly lifetimeSec = 24 * 3600,
  ) {
    this.authorization();
  }

  authorization(): string {
    const now = Date.now();
    if (!this.token || now - this.mintedAt > (this.lifetimeSec * 1000) / 2) {
      const user = { name: APISERVER_USER, groups: [] };
      const opts = { audience: KUBELET_AUDIENCE, expiresInSec: this.lifetimeSec };
      this.token = Buffer.isBuffer(this.key)
        ? mintToken(this.key, user, opts)
        : mintRS256Token(this.key, user, opts);
      this.mintedAt = now;
    }
    return `Bearer ${this.token}`;
  }
}

/** The apiserver's kubelet TLS flags, read from PEM files. */
export interface KubeletTlsFiles {
  /** `--kubelet-certificate-authority`: verify kubelet serving certificates with this CA. */
  ca?: Buffer;
  /** `--kubelet-client-certificate` / `--kubelet-client-key`: the apiserver's client certificate. */
  cert?: Buffer;
  key?: Buffer;
}

/**
 * TLS options for dialling kubelets, or undefined for plain http. Without a CA the kubelet's
 * certificate is not verified, as upstream (kubelet_client.go MakeTransport leaves
 * InsecureSkipVerify on when no CA is given); `warn` says so once.
 */
export function kubeletTlsOptions(
  files: KubeletTlsFiles | undefined,
  warn: Logger,
): ConnectionOptions | undefined {
  if (!files || (!files.ca && !files.cert)) return undefined;
  if (!files.cert !== !files.key) {
    throw new Error('--kubelet-client-certificate and --kubelet-client-key go together');
  }
  if (!files.ca) {
    warn('no --kubelet-certificate-authority: kubelet serving certificates are not verified');
  }
  return {
    ...(files.ca ? { ca: files.ca } : { rejectUnauthorized: false }),
    ...(files.cert && files.key ? { cert: files.cert, key: files.key } : {}),
  };
}
