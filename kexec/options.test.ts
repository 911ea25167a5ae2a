import { completeExec, hoistGlobalFlags, podNameFrom, runProgram, type ExecOptions } from './options.js';
import { UsageError } from './errors.js';

async function parse(
  argv: string[],
): Promise<{ opts?: ExecOptions; code: number; out: string; err: string }> {
  let opts: ExecOptions | undefined;
  let out = '';
  let err = '';
  const code = await runProgram(
    argv,
    {
      exec: async (o) => {
        opts = o;
        return 7;
      },
    },
    { writeOut: (s) => (out += s), writeErr: (s) => (err += s) },
  );
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
    expect(hoistGlobalFlags(['--kubeconfig', 'k', '-n', 'ns', 'port-forward', 'demo', '80'])).toEqual([
      'port-forward',
      '--kubeconfig',
      'k',
      '-n',
      'ns',
      'demo',
      '80',
    ]);
    expect(hoistGlobalFlags(['--context=x', '-nns', 'attach', 'demo'])).toEqual([
      'attach',
      '--context=x',
      '-nns',
      'demo',
    ]);
    // Not before a subcommand name: left to the default exec.
    const execArgs = ['--kubeconfig', 'k', 'demo', '--', 'port-forward'];
    expect(hoistGlobalFlags(execArgs)).toBe(execArgs);
    expect(hoistGlobalFlags(['-it', 'attach'])).toEqual(['-it', 'attach']);
  });
});
