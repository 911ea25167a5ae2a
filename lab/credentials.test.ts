import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { APISERVER_AUDIENCE, readSigningKey, verifyToken } from '../shared/auth/tokens.js';
import YAML from 'yaml';
import { loadClientConfig } from '../kexec/client.js';
import { writeCredentials, writeKubeconfig } from './credentials.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-creds-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

const mode = (f: string) => fs.statSync(f).mode & 0o777;

describe('lab credentials', () => {
  it('writes a 32-byte key and the admin and node tokens, all 0600', () => {
    const c = writeCredentials(path.join(dir, 'lab'), ['node-1']);
    expect(mode(path.join(dir, 'lab'))).toBe(0o700);
    const key = readSigningKey(c.keyFile);
    expect(key).toHaveLength(32);
    for (const f of [c.keyFile, c.adminTokenFile, c.nodeTokenFiles['node-1']]) expect(mode(f)).toBe(0o600);
    expect(verifyToken(key, c.adminToken, APISERVER_AUDIENCE)).toEqual({
      name: 'admin',
      groups: ['system:masters'],
    });
    const nodeToken = fs.readFileSync(c.nodeTokenFiles['node-1'], 'utf8').trim();
    expect(verifyToken(key, nodeToken, APISERVER_AUDIENCE)).toEqual({
      name: 'system:node:node-1',
      groups: ['system:nodes'],
    });
    expect(verifyToken(key, nodeToken, 'kubelet')).toBeUndefined();
  });

  it('makes a new key on every start', () => {
    const a = writeCredentials(dir, ['node-1']);
    const keyA = readSigningKey(a.keyFile);
    const b = writeCredentials(dir, ['node-1']);
    expect(readSigningKey(b.keyFile).equals(keyA)).toBe(false);
    expect(verifyToken(keyA, b.adminToken, APISERVER_AUDIENCE)).toBeUndefined();
  });

  it('writes a kubeconfig that kexec (client-node) reads: server, token, namespace', async () => {
    const file = writeKubeconfig(path.join(dir, 'kubeconfig'), 'http://127.0.0.1:6443', 'tok');
    expect(mode(file)).toBe(0o600);
    const cfg = await loadClientConfig({ kubeconfig: file });
    expect(cfg.server.href).toBe('http://127.0.0.1:6443/');
    expect(cfg.namespace).toBe('default');
    expect(cfg.headers.Authorization).toBe('Bearer tok');
  });

  it('over https carries the CA as certificate-authority-data, never insecure-skip-tls-verify', async () => {
    const ca = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
    const file = writeKubeconfig(path.join(dir, 'kubeconfig'), 'https://127.0.0.1:6443', 'tok', {
      caPem: ca,
    });
    const doc = YAML.parse(fs.readFileSync(file, 'utf8')) as { clusters: { cluster: object }[] };
    expect(doc.clusters[0]!.cluster).toEqual({
      server: 'https://127.0.0.1:6443',
      'certificate-authority-data': Buffer.from(ca).toString('base64'),
    });
    const cfg = await loadClientConfig({ kubeconfig: file });
    expect(cfg.tls.ca?.toString()).toBe(ca);
    expect(cfg.tls.rejectUnauthorized).not.toBe(false);
  });
});
