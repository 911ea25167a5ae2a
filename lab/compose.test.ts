import { interpolate, loadCompose, parseCompose, startOrder } from './compose.js';

describe('compose interpolation', () => {
  const env = { SET: 'x', EMPTY: '' };
  it.each([
    ['${SET}', 'x'],
    ['$SET/y', 'x/y'],
    ['${UNSET}', ''],
    ['${UNSET:-d}', 'd'],
    ['${EMPTY:-d}', 'd'],
    ['${EMPTY-d}', ''],
    ['${UNSET-d}', 'd'],
    ['${SET:-d}/k', 'x/k'],
    ['$$HOME', '$HOME'],
    ['${UNSET:-http://apiserver:6443}', 'http://apiserver:6443'],
  ])('%s → %s', (input, want) => {
    expect(interpolate(input, env)).toBe(want);
  });

  it('fails on a required variable', () => {
    expect(() => interpolate('${UNSET:?set it}', env)).toThrow(
      'required variable UNSET is missing a value: set it',
    );
  });
});

describe('docker-compose.yml', () => {
  it('has argv commands that run `node dist/...` (or bin/) from the project root, in the container view', () => {
    const c = loadCompose(undefined, {});
    expect(Object.keys(c.services).sort()).toEqual(['apiserver', 'demo', 'node', 'pod', 'setup']);
    for (const svc of Object.values(c.services)) {
      expect(svc.command[0]).toBe('node');
      expect(svc.command[1]).toMatch(/^(dist\/|bin\/kexec\.js$)/);
    }
    expect(c.services.apiserver.command).toEqual([
      'node',
      'dist/apiserver/main.js',
      '--bind-address',
      '0.0.0.0',
      '--port',
      '6443',
      '--token-signing-key-file',
      '/lab/token-signing.key',
      '--max-connection-bytes-per-sec',
      '0',
      '--tls-cert-file',
      '/lab/pki/apiserver.crt',
      '--tls-private-key-file',
      '/lab/pki/apiserver.key',
      '--kubelet-certificate-authority',
      '/lab/pki/ca.crt',
      '--kubelet-client-certificate',
      '/lab/pki/apiserver-kubelet-client.crt',
      '--kubelet-client-key',
      '/lab/pki/apiserver-kubelet-client.key',
    ]);
    expect(c.services.setup.command).toContain('https://apiserver:6443');
    expect(c.services.node.command).toContain('https://apiserver:6443');
    expect(c.services.node.environment).toEqual({ NODE_EXTRA_CA_CERTS: '/lab/pki/ca.crt' });
    expect(c.services.demo.command).toEqual([
      'node',
      'bin/kexec.js',
      '--kubeconfig',
      '/lab/kubeconfig',
      'demo',
      '--',
      'ls',
      '/root',
    ]);
    expect(c.services.demo.dependsOn).toEqual({ pod: 'service_completed_successfully' });
  });

  it('starts dependencies first', () => {
    const order = startOrder(loadCompose(undefined, {}));
    const before = (a: string, b: string) => expect(order.indexOf(a)).toBeLessThan(order.indexOf(b));
    before('setup', 'apiserver');
    before('apiserver', 'node');
    before('node', 'pod');
    before('pod', 'demo');
  });

  it('maps the shared volume and addresses to local values through KEXEC_LAB_*', () => {
    const c = loadCompose(undefined, {
      KEXEC_LAB_DIR: '/tmp/x',
      KEXEC_LAB_APISERVER_URL: 'https://127.0.0.1:7000',
      KEXEC_LAB_NODE_ADDRESS: '127.0.0.1',
    });
    expect(c.services.node.command).toEqual(
      expect.arrayContaining(['/tmp/x', 'https://127.0.0.1:7000', '127.0.0.1']),
    );
    expect(c.services.apiserver.command).toContain('/tmp/x/token-signing.key');
    expect(c.services.apiserver.command).toContain('/tmp/x/pki/apiserver.crt');
    expect(c.services.node.environment.NODE_EXTRA_CA_CERTS).toBe('/tmp/x/pki/ca.crt');
  });

  it('switches the kubelet fault drill on through KEXEC_LAB_KUBELET_FAULT, off by default', () => {
    const flag = (env: Record<string, string>) => {
      const cmd = loadCompose(undefined, env).services.node.command;
      return cmd[cmd.indexOf('--kubelet-fault') + 1];
    };
    expect(flag({})).toBe('none');
    expect(flag({ KEXEC_LAB_KUBELET_FAULT: 'refuse-400' })).toBe('refuse-400');
  });

  it('refuses a shell-string command and an unknown dependency', () => {
    expect(() => parseCompose('services:\n  a:\n    command: node x.js\n')).toThrow(/argv list/);
    expect(() => parseCompose('services:\n  a:\n    command: [node]\n    depends_on: [b]\n')).toThrow(
      /unknown service b/,
    );
  });
});
