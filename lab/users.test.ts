import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { APISERVER_AUDIENCE, KUBELET_AUDIENCE, readSigningKey, verifyToken } from '../shared/auth/tokens.js';
import { KUBECONFIG_FILE, SIGNING_KEY_FILE, writeCredentials, writeKubeconfig } from './credentials.js';
import { LabUserError, mintLabUser, parseTtl } from './users.js';

let dir = '';
const CA = '-----BEGIN CERTIFICATE-----\nlab ca\n-----END CERTIFICATE-----\n';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-users-'));
  const creds = writeCredentials(dir, ['node-1']);
  writeKubeconfig(path.join(dir, KUBECONFIG_FILE), 'https://127.0.0.1:6443', creds.adminToken, { caPem: CA });
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

interface Kubeconfig {
  clusters: { cluster: { server: string; 'certificate-authority-data': string } }[];
  users: { name: string; user: { token: string } }[];
  contexts: { name: string; context: { user: string; namespace: string } }[];
  'current-context': string;
}

describe('mintLabUser', () => {
  it("writes DIR/users/NAME.kubeconfig (0600) for the admin's cluster, with a token for the user", () => {
    const before = Math.floor(Date.now() / 1000);
    const user = mintLabUser(dir, { name: 'alice', groups: ['devs', 'devs', 'qa'], ttlSec: 3600 });
    expect(user.kubeconfigPath).toBe(path.join(dir, 'users', 'alice.kubeconfig'));
    expect(fs.statSync(user.kubeconfigPath).mode & 0o777).toBe(0o600);
    const cfg = YAML.parse(fs.readFileSync(user.kubeconfigPath, 'utf8')) as Kubeconfig;
    expect(cfg.clusters[0]!.cluster.server).toBe('https://127.0.0.1:6443');
    expect(Buffer.from(cfg.clusters[0]!.cluster['certificate-authority-data'], 'base64').toString()).toBe(CA);
    expect(cfg.users).toEqual([{ name: 'kexec-lab-alice', user: { token: user.token } }]);
    expect(cfg['current-context']).toBe('kexec-lab-alice');
    expect(cfg.contexts[0]!.context).toMatchObject({ user: 'kexec-lab-alice', namespace: 'default' });

    const key = readSigningKey(path.join(dir, SIGNING_KEY_FILE));
    expect(verifyToken(key, user.token, APISERVER_AUDIENCE)).toEqual({
      name: 'alice',
      groups: ['devs', 'qa'],
    });
    // A lab user's token is for the apiserver only, never for a kubelet.
    expect(verifyToken(key, user.token, KUBELET_AUDIENCE)).toBeUndefined();
    const exp = JSON.parse(Buffer.from(user.token.split('.')[1]!, 'base64url').toString()) as { exp: number };
    expect(exp.exp - before).toBeGreaterThanOrEqual(3600);
    expect(exp.exp - before).toBeLessThan(3700);
  });

  it('refuses the lab\u2019s own identities, odd names and lifetimes', () => {
    expect(() => mintLabUser(dir, { name: 'system:apiserver' })).toThrow(/system: names/);
    // issue #11: `--group system:masters` minted an admin.
    for (const group of ['system:masters', 'system:nodes', 'system:authenticated']) {
      expect(() => mintLabUser(dir, { name: 'mallory', groups: ['devs', group] })).toThrow(
        `group "${group}": system: names are the cluster's own identities`,
      );
    }
    expect(() => mintLabUser(dir, { name: 'al ice' })).toThrow(LabUserError);
    expect(() => mintLabUser(dir, { name: 'alice', groups: ['a,b'] })).toThrow(/commas/);
    expect(() => mintLabUser(dir, { name: 'alice', ttlSec: 0 })).toThrow(/lifetime/);
    expect(() => mintLabUser(dir, { name: 'alice', ttlSec: 8 * 24 * 3600 })).toThrow(/lifetime/);
    expect(fs.existsSync(path.join(dir, 'users'))).toBe(false);
  });

  it('says to start the lab first when DIR holds none', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'lab-users-empty-'));
    try {
      expect(() => mintLabUser(empty, { name: 'alice' })).toThrow(/start the lab first/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});

describe('parseTtl', () => {
  it('reads Go-style durations in whole seconds', () => {
    expect(parseTtl('90s')).toBe(90);
    expect(parseTtl('30m')).toBe(1800);
    expect(parseTtl('1h30m')).toBe(5400);
    expect(() => parseTtl('')).toThrow(LabUserError);
    expect(() => parseTtl('1d')).toThrow(/duration/);
    expect(() => parseTtl('-5s')).toThrow(/duration/);
  });
});
