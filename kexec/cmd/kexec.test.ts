import { UsageError } from '../errors.js';
import { completeExec, type ExecOptions } from './exec.js';
import { podNameFrom } from './flags.js';
import { routeArgv, runProgram, type KexecActions } from './kexec.js';

async function parse(
  argv: string[],
): Promise<{ opts?: ExecOptions; code: number; out: string; err: string }> {
  let opts: ExecOptions | undefined;
  let out = '';
  let err = '';
  const other = () => Promise.reject(new Error('not exec'));
  const actions: KexecActions = {
    exec: async (o) => {
      opts = o;
      return 7;
    },
    attach: other,
    portForward: other,
    cp: other,
  };
  const code = await runProgram(argv, actions, { writeOut: (s) => (out += s), writeErr: (s) => (err += s) });
  return { opts, code, out, err };
}

describe('kexec argument parsing', () => {
  it('runs exec by default: POD -- COMMAND', async () => {
    const r = await parse(['demo', '--', 'ls', '/root']);
    expect(r.code).toBe(7);
    expect(r.opts).toEqual({
      kubeconfig: undefined,
      context: undefined,
      namespace: undefined,
      pod: 'demo',
      container: undefined,
      stdin: false,
      tty: false,
      quiet: false,
      command: ['ls', '/root'],
    });
  });

  it('accepts the explicit exec subcommand and the same flags', async () => {
    const a = await parse([
      'exec',
      '-n',
      'ns',
      '-c',
      'ctr',
      '-it',
      '--kubeconfig',
      'k.yaml',
      'demo',
      '--',
      'sh',
    ]);
    const b = await parse(['-n', 'ns', '-c', 'ctr', '-it', '--kubeconfig', 'k.yaml', 'demo', '--', 'sh']);
    expect(a.opts).toEqual(b.opts);
    expect(a.opts).toMatchObject({
      namespace: 'ns',
      container: 'ctr',
      stdin: true,
      tty: true,
      kubeconfig: 'k.yaml',
      pod: 'demo',
      command: ['sh'],
    });
  });

  it('takes flags after the pod and never parses the remote command', async () => {
    const r = await parse(['demo', '--namespace=x', '--context', 'lab', '--', 'ls', '-la', '-n', '--', 'z']);
    expect(r.opts).toMatchObject({
      namespace: 'x',
      context: 'lab',
      pod: 'demo',
      command: ['ls', '-la', '-n', '--', 'z'],
    });
  });

  it('accepts pod/NAME', async () => {
    expect((await parse(['pod/demo', '--', 'true'])).opts?.pod).toBe('demo');
    expect(podNameFrom('pods/x', 'kexec')).toBe('x');
    expect(() => podNameFrom('deploy/x', 'kexec')).toThrow(UsageError);
  });

  it('refuses the old POD COMMAND form, like kubectl', () => {
    expect(() => completeExec(['demo', 'ls'], -1, {})).toThrow(
      /exec \[POD\] \[COMMAND\] is not supported anymore/,
    );
    expect(() => completeExec(['demo', 'ls', 'x'], 2, {})).toThrow(/not supported anymore/);
  });

  it('needs a pod and a command', () => {
    expect(() => completeExec([], -1, {})).toThrow(/pod or type\/name must be specified/);
    expect(() => completeExec(['ls'], 0, {})).toThrow(/pod or type\/name must be specified/);
    expect(() => completeExec(['demo'], -1, {})).toThrow(/at least one command/);
    expect(() => completeExec(['demo'], 1, {})).toThrow(/at least one command/);
  });

  it('reports usage errors through the thrown UsageError, with a help pointer', async () => {
    await expect(parse(['demo', 'ls'])).rejects.toThrow(UsageError);
  });

  it('prints commander errors for unknown flags and exits 1', async () => {
    const r = await parse(['--bogus', 'demo', '--', 'ls']);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/unknown option '--bogus'/);
    expect(r.opts).toBeUndefined();
  });

  it('prints help and exits 0', async () => {
    const r = await parse(['exec', '--help']);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/POD -- COMMAND/);
    expect(r.out).toMatch(/--container/);
  });

  it('takes kubectl’s global flags before a subcommand', () => {
    expect(routeArgv(['--kubeconfig', 'k', '-n', 'ns', 'port-forward', 'demo', '80'])).toEqual([
      'port-forward',
      '--kubeconfig',
      'k',
      '-n',
      'ns',
      'demo',
      '80',
    ]);
    expect(routeArgv(['--context=x', '-nns', 'attach', 'demo'])).toEqual([
      'attach',
      '--context=x',
      '-nns',
      'demo',
    ]);
    // Not a subcommand name, or one only after `--`: the default exec.
    expect(routeArgv(['--kubeconfig', 'k', 'demo', '--', 'port-forward'])).toEqual([
      'exec',
      '--kubeconfig',
      'k',
      'demo',
      '--',
      'port-forward',
    ]);
    expect(routeArgv(['-it', 'attach'])).toEqual(['exec', '-it', 'attach']);
    expect(routeArgv(['--help'])).toEqual(['--help']);
  });

  // kubernetes-style: everything after `--` is the remote command, whatever comes before the pod
  // (issue 13: `kexec --kubeconfig F demo -- df -h /root` printed kexec's help and ran nothing).
  it.each([
    [
      ['--kubeconfig', 'k.yaml', 'demo', '--', 'df', '-h', '/root'],
      ['df', '-h', '/root'],
    ],
    [
      ['--kubeconfig', 'k.yaml', 'demo', '--', 'ls', '--help'],
      ['ls', '--help'],
    ],
    [
      ['--kubeconfig=k.yaml', '-n', 'ns', 'demo', '--', 'httpd', '-h'],
      ['httpd', '-h'],
    ],
    [
      ['-it', '--kubeconfig', 'k.yaml', 'demo', '--', 'sh', '-c', 'exit 3', '--help'],
      ['sh', '-c', 'exit 3', '--help'],
    ],
    [
      ['exec', '--kubeconfig', 'k.yaml', 'demo', '--', 'cp', '-h'],
      ['cp', '-h'],
    ],
    [
      ['--kubeconfig', 'k.yaml', 'demo', '--', 'attach', '--help'],
      ['attach', '--help'],
    ],
  ])('runs %j with the remote command %j, never kexec’s help', async (argv, command) => {
    const r = await parse(argv);
    expect({ code: r.code, out: r.out, err: r.err }).toEqual({ code: 7, out: '', err: '' });
    expect(r.opts).toMatchObject({ pod: 'demo', kubeconfig: 'k.yaml', command });
  });

  it('prints kexec’s help for -h before the `--` only', async () => {
    const root = await parse(['-h']);
    expect(root.code).toBe(0);
    expect(root.out).toMatch(/port-forward/);
    const exec = await parse(['--kubeconfig', 'k.yaml', '-h', 'demo', '--', 'ls']);
    expect(exec.code).toBe(0);
    expect(exec.out).toMatch(/POD -- COMMAND/);
    expect(exec.opts).toBeUndefined();
  });
});
