import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLIENT_AUTH, SERVER_AUTH } from '../shared/tls/cert-issuer.js';
import { apiserverKubeletTlsArgs, ensureLabPki, kubeletTlsArgs, trustEnv } from './pki.js';

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-pki-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('ensureLabPki', () => {
  it('makes DIR/pki: the CA and an apiserver certificate for loopback and the given hosts', async () => {
    const pki = await ensureLabPki(dir, ['apiserver', '[::1]']);
    expect(pki.dir).toBe(path.join(dir, 'pki'));
    expect(fs.readdirSync(pki.dir).sort()).toEqual([
      'apiserver-kubelet-client.crt',
      'apiserver-kubelet-client.key',
      'apiserver.crt',
      'apiserver.key',
      'ca.crt',
      'ca.key',
    ]);
    const ca = new X509Certificate(pki.caPem);
    const leaf = new X509Certificate(fs.readFileSync(pki.apiserverCertFile));
    expect(leaf.checkIssued(ca) && leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.subjectAltName).toBe(
      'DNS:localhost, DNS:apiserver, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1',
    );
    expect(trustEnv(pki)).toEqual({ NODE_EXTRA_CA_CERTS: path.join(dir, 'pki', 'ca.crt') });
  });

  it('keeps the CA across starts, so an old kubeconfig still trusts a reissued certificate', async () => {
    const first = await ensureLabPki(dir);
    const leaf1 = fs.readFileSync(first.apiserverCertFile, 'utf8');
    const second = await ensureLabPki(dir);
    expect(second.caPem).toBe(first.caPem);
    expect(fs.readFileSync(second.apiserverCertFile, 'utf8')).toBe(leaf1);
    const third = await ensureLabPki(dir, ['apiserver']);
    expect(third.caPem).toBe(first.caPem);
    expect(fs.readFileSync(third.apiserverCertFile, 'utf8')).not.toBe(leaf1);
  });

  it("issues the apiserver's kubelet client certificate as kubeadm does", async () => {
    const pki = await ensureLabPki(dir);
    const client = new X509Certificate(fs.readFileSync(pki.kubeletClientCertFile));
    // No group since kubeadm 1.37 (kubernetes#138957): kubelets authorize it through RBAC.
    expect(client.subject).toBe('CN=kube-apiserver-kubelet-client');
    expect(client.keyUsage).toEqual([CLIENT_AUTH]);
    expect(client.checkIssued(new X509Certificate(pki.caPem))).toBe(true);
    expect(apiserverKubeletTlsArgs(pki)).toEqual([
      '--kubelet-certificate-authority',
      pki.caFile,
      '--kubelet-client-certificate',
      path.join(dir, 'pki', 'apiserver-kubelet-client.crt'),
      '--kubelet-client-key',
      path.join(dir, 'pki', 'apiserver-kubelet-client.key'),
    ]);
  });
});

describe('kubeletTlsArgs', () => {
  it("issues a node's kubelet serving certificate for its address and name, from the lab CA", async () => {
    const pki = await ensureLabPki(dir);
    const args = await kubeletTlsArgs(dir, 'node-2', ['10.1.2.3']);
    const crt = path.join(dir, 'pki', 'kubelet-node-2.crt');
    expect(args).toEqual([
      '--tls-cert-file',
      crt,
      '--tls-private-key-file',
      path.join(dir, 'pki', 'kubelet-node-2.key'),
      '--client-ca-file',
      pki.caFile,
    ]);
    const leaf = new X509Certificate(fs.readFileSync(crt));
    expect(leaf.keyUsage).toEqual([SERVER_AUTH]);
    expect(leaf.checkIssued(new X509Certificate(pki.caPem))).toBe(true);
    expect(leaf.checkIP('10.1.2.3')).toBe('10.1.2.3');
    expect(leaf.checkHost('node-2')).toBe('node-2');
    expect(leaf.checkIP('127.0.0.1')).toBe('127.0.0.1');
  });
});
