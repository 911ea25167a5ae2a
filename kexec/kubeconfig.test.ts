/**
 * kexec's own kubeconfig reading (kubeconfig.ts + client.ts loadClientConfig): kubectl's loading
 * rules and merge order, contexts and namespaces, every credential field, and the hand-over to
 * client-node for credential plugins.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadClientConfig } from './client.js';

/** client-go's shape: the apiserver names an Update's field manager from the part before the `/`. */
const UA = expect.stringMatching(/^kexec\/v\d+\.\d+\.\d+ \(linux\/\w+\) kexec-lab$/) as unknown as string;

let dir = '';
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kexec-kc-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function write(name: string, text: string): string {
  const file = path.join(dir, name);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return file;
}

const simple = (server: string, user: string, extra = '', ctx = 'lab') => `apiVersion: v1
kind: Config
clusters:
- name: ${ctx}
  cluster:
    server: ${server}
contexts:
- name: ${ctx}
  context:
    cluster: ${ctx}
    user: ${ctx}-user
    namespace: ns-${ctx}
current-context: ${ctx}
users:
- name: ${ctx}-user
  user:
${user}
${extra}`;

describe('loadClientConfig', () => {
  it('reads server, token and the context namespace; -n wins', async () => {
    const f = write('a', simple('https://127.0.0.1:6443', '    token: tok'));
    const cfg = await loadClientConfig({ kubeconfig: f });
    expect(cfg.server.href).toBe('https://127.0.0.1:6443/');
    expect(cfg.namespace).toBe('ns-lab');
    expect(cfg.headers).toEqual({ Authorization: 'Bearer tok', 'User-Agent': UA });
    expect(cfg.tls).toEqual({});
    expect((await loadClientConfig({ kubeconfig: f, namespace: 'x' })).namespace).toBe('x');
  });

  it('merges $KUBECONFIG: first file wins for names and current-context, missing files skipped', async () => {
    const a = write('a', simple('https://a:1', '    token: a'));
    const b = write('b', simple('https://b:1', '    token: b'));
    const c = write('c', simple('https://c:1', '    token: c', '', 'other'));
    const env = { KUBECONFIG: [path.join(dir, 'missing'), a, b, c].join(path.delimiter) };
    const cfg = await loadClientConfig({}, env);
    expect(cfg.server.host).toBe('a:1');
    expect(cfg.headers.Authorization).toBe('Bearer a');
    const other = await loadClientConfig({ context: 'other' }, env);
    expect(other.server.host).toBe('c:1');
    expect(other.namespace).toBe('ns-other');
    await expect(loadClientConfig({ context: 'nope' }, env)).rejects.toThrow('context "nope" does not exist');
  });

  it('falls back to ~/.kube/config, then to localhost:8080', async () => {
    write('home/.kube/config', simple('https://home:1', '    token: h'));
    expect((await loadClientConfig({}, { HOME: path.join(dir, 'home') })).server.host).toBe('home:1');
    const none = await loadClientConfig({}, { HOME: path.join(dir, 'nobody') });
    expect(none.server.href).toBe('http://localhost:8080/');
    expect(none.headers).toEqual({ 'User-Agent': UA });
  });

  it('refuses to send a token over plain http unless the kubeconfig says insecure on purpose (issue #11)', async () => {
    const f = write('plain', simple('http://127.0.0.1:6443', '    token: tok'));
    await expect(loadClientConfig({ kubeconfig: f })).rejects.toThrow(
      'refusing to send credentials to http://127.0.0.1:6443 over plain http',
    );
    const insecure = write(
      'insecure',
      simple('http://127.0.0.1:6443', '    token: tok').replace(
        '    server: http://127.0.0.1:6443\n',
        '    server: http://127.0.0.1:6443\n    insecure-skip-tls-verify: true\n',
      ),
    );
    expect((await loadClientConfig({ kubeconfig: insecure })).headers).toEqual({
      Authorization: 'Bearer tok',
      'User-Agent': UA,
    });
    // Nothing to leak: an anonymous http kubeconfig is fine.
    const anonymous = write('anon', simple('http://127.0.0.1:6443', '    {}'));
    expect((await loadClientConfig({ kubeconfig: anonymous })).headers).toEqual({ 'User-Agent': UA });
  });

  it('fails on an explicit file that does not exist', async () => {
    await expect(loadClientConfig({ kubeconfig: path.join(dir, 'nope') })).rejects.toThrow(/ENOENT/);
  });

  it('reads TLS material from files (relative to the kubeconfig) and from -data fields', async () => {
    write('conf/ca.crt', 'CA-PEM');
    write('conf/token', 'file-token\n');
    const f = write(
      'conf/kubeconfig',
      `clusters:
- name: c
  cluster:
    server: https://10.0.0.1:6443
    certificate-authority: ca.crt
    tls-server-name: kubernetes
users:
- name: u
  user:
    tokenFile: token
    client-certificate-data: ${Buffer.from('CERT').toString('base64')}
    client-key-data: ${Buffer.from('KEY').toString('base64')}
    as: jane
contexts:
- name: x
  context: { cluster: c, user: u }
current-context: x
`,
    );
    const cfg = await loadClientConfig({ kubeconfig: f });
    expect(cfg.namespace).toBe('default');
    expect(cfg.headers).toEqual({
      Authorization: 'Bearer file-token',
      'Impersonate-User': 'jane',
      'User-Agent': UA,
    });
    expect({
      ca: cfg.tls.ca?.toString(),
      cert: cfg.tls.cert?.toString(),
      key: cfg.tls.key?.toString(),
      servername: cfg.tls.servername,
    }).toEqual({ ca: 'CA-PEM', cert: 'CERT', key: 'KEY', servername: 'kubernetes' });
    expect(cfg.tls.rejectUnauthorized).toBeUndefined();
  });

  it('basic auth and insecure-skip-tls-verify', async () => {
    const f = write(
      'k',
      `clusters:
- name: c
  cluster: { server: "https://h:1", insecure-skip-tls-verify: true }
users:
- name: u
  user: { username: admin, password: "s3cret" }
contexts:
- name: x
  context: { cluster: c, user: u }
current-context: x
`,
    );
    const cfg = await loadClientConfig({ kubeconfig: f });
    expect(cfg.headers.Authorization).toBe(`Basic ${Buffer.from('admin:s3cret').toString('base64')}`);
    expect(cfg.tls.rejectUnauthorized).toBe(false);
  });

  it('hands users with an exec plugin to client-node', async () => {
    const plugin = write(
      'plugin.mjs',
      `process.stdout.write(JSON.stringify({apiVersion:'client.authentication.k8s.io/v1',kind:'ExecCredential',status:{token:'from-plugin'}}));`,
    );
    const f = write(
      'k',
      simple(
        'https://127.0.0.1:6443',
        `    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ${process.execPath}
      args: ["${plugin}"]
      interactiveMode: Never`,
      ),
    );
    const cfg = await loadClientConfig({ kubeconfig: f });
    expect(cfg.headers.Authorization).toBe('Bearer from-plugin');
    expect(cfg.namespace).toBe('ns-lab');
  });

  it('reports a context without a server', async () => {
    const f = write('k', 'apiVersion: v1\nkind: Config\n');
    await expect(loadClientConfig({ kubeconfig: f })).rejects.toThrow(
      /no server found for the current context/,
    );
  });
});
