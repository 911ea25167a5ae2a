/**
 * `kubectl apply --server-side` against the lab, judged by real kubectl: create-on-apply, a
 * re-apply, `--show-managed-fields`, another field manager's conflict (kubectl's error text, exit
 * code 1), `--force-conflicts`, `--dry-run=server`, a pod's immutable spec, a namespace; and
 * client-side `kubectl apply` beside it, including kubectl's own migration of a client-side
 * applied object to server-side apply (a JSON patch of its managedFields). Older kubectl minors
 * apply and meet a conflict the same way.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startLab, type Lab } from '../lab/lab.js';
import { Kubectl, KUBECTL_CLIENTS, type KubectlClient } from './support/kubectl.js';
import { podYaml } from './support/runtimes.js';

const podManifest = (name: string, labels: Record<string, string>, command = ['sleep', '3600']) =>
  podYaml(name, command, '', labels);

const CONFLICT_ADVICE = 'Please review the fields above--they currently have other managers.';

interface Entry {
  manager: string;
  operation: string;
  apiVersion?: string;
  fieldsType?: string;
  fieldsV1?: Record<string, unknown>;
}

let dir = '';
let lab: Lab;
let k: Kubectl;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ssa-e2e-'));
  lab = await startLab({ dir: path.join(dir, 'lab'), port: 0, runtime: 'cri-shim', log: () => {} });
  k = new Kubectl(KUBECTL_CLIENTS[0]!, lab.kubeconfigPath, path.join(dir, 'home'));
}, 120_000);

afterAll(async () => {
  await lab?.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function ok(args: string[], input?: string): Promise<string> {
  const res = await k.run(args, input);
  expect({ code: res.code, stderr: res.stderr }).toEqual({ code: 0, stderr: '' });
  return res.stdout.toString();
}

async function managedFields(kind: string, name: string): Promise<Entry[]> {
  const out = await ok(['get', kind, name, '--show-managed-fields', '-o', 'json']);
  return (JSON.parse(out) as { metadata: { managedFields?: Entry[] } }).metadata.managedFields ?? [];
}

const owner = (entries: Entry[], manager: string, operation = 'Apply') =>
  entries.find((e) => e.manager === manager && e.operation === operation);

describe('kubectl apply --server-side (kubectl v1.35)', () => {
  it('names the lab’s own writers by their User-Agent: kexec made the demo pod, the kubelet wrote its status', async () => {
    const entries = await managedFields('pod', 'demo');
    expect(owner(entries, 'kexec', 'Update')).toBeDefined();
    expect(entries).toContainEqual(
      expect.objectContaining({ manager: 'kubelet', operation: 'Update', subresource: 'status' }),
    );
    expect(entries.map((e) => e.manager)).not.toContain('');
  });

  it('creates the pod, which runs; a re-apply changes its label; --show-managed-fields lists the manager', async () => {
    expect(await ok(['apply', '--server-side', '-f', '-'], podManifest('ssa', { app: 'one' }))).toBe(
      'pod/ssa serverside-applied\n',
    );
    await ok(['wait', '--for=condition=Ready', 'pod/ssa', '--timeout=60s']);
    expect(await ok(['get', 'pod', 'ssa', '-o', 'jsonpath={.status.phase}'])).toBe('Running');

    expect(await ok(['apply', '--server-side', '-f', '-'], podManifest('ssa', { app: 'two' }))).toBe(
      'pod/ssa serverside-applied\n',
    );
    expect(await ok(['get', 'pod', 'ssa', '-o', 'jsonpath={.metadata.labels.app}'])).toBe('two');

    const entries = await managedFields('pod', 'ssa');
    expect(owner(entries, 'kubectl')).toMatchObject({
      apiVersion: 'v1',
      fieldsType: 'FieldsV1',
      fieldsV1: {
        'f:metadata': { 'f:labels': { 'f:app': {} } },
        'f:spec': {
          'f:nodeName': {},
          'f:containers': {
            'k:{"name":"main"}': {
              '.': {},
              'f:name': {},
              'f:image': {},
              'f:imagePullPolicy': {},
              'f:command': {},
            },
          },
        },
      },
    });
    // The kubelet's status writes are its own, on the status subresource.
    expect(
      entries.some(
        (e) => e.operation === 'Update' && (e as { subresource?: string }).subresource === 'status',
      ),
    ).toBe(true);
    // Without the flag kubectl hides them, as always.
    expect(await ok(['get', 'pod', 'ssa', '-o', 'yaml'])).not.toContain('managedFields');
  });

  it('another field manager changing an owned label: the conflict, exit code 1, nothing changed; --force-conflicts takes it', async () => {
    const other = podManifest('ssa', { app: 'three' });
    const refused = await k.run(['apply', '--server-side', '--field-manager', 'other', '-f', '-'], other);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'error: Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.app\n' +
        CONFLICT_ADVICE,
    );
    expect(refused.stdout.toString()).toBe('');
    expect(await ok(['get', 'pod', 'ssa', '-o', 'jsonpath={.metadata.labels.app}'])).toBe('two');

    expect(
      await ok(['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-f', '-'], other),
    ).toBe('pod/ssa serverside-applied\n');
    expect(await ok(['get', 'pod', 'ssa', '-o', 'jsonpath={.metadata.labels.app}'])).toBe('three');
    const entries = await managedFields('pod', 'ssa');
    expect(owner(entries, 'other')?.fieldsV1?.['f:metadata']).toEqual({ 'f:labels': { 'f:app': {} } });
    expect(owner(entries, 'kubectl')?.fieldsV1?.['f:metadata']).toBeUndefined();
  });

  it('--dry-run=server answers and changes nothing', async () => {
    const before = await ok([
      'get',
      'pod',
      'ssa',
      '-o',
      'jsonpath={.metadata.resourceVersion} {.metadata.labels}',
    ]);
    expect(
      await ok(
        ['apply', '--server-side', '--force-conflicts', '--dry-run=server', '-f', '-'],
        podManifest('ssa', { app: 'dry', extra: 'yes' }),
      ),
    ).toBe('pod/ssa serverside-applied (server dry run)\n');
    expect(
      await ok(['get', 'pod', 'ssa', '-o', 'jsonpath={.metadata.resourceVersion} {.metadata.labels}']),
    ).toBe(before);
    const missing = await k.run(
      ['apply', '--server-side', '--dry-run=server', '-f', '-'],
      podManifest('ssa-dry', { app: 'x' }),
    );
    expect(missing.stdout.toString()).toBe('pod/ssa-dry serverside-applied (server dry run)\n');
    const get = await k.run(['get', 'pod', 'ssa-dry']);
    expect(get.stderr).toContain('pods "ssa-dry" not found');
  });

  it("a changed command is the pod's immutable-spec 422", async () => {
    const res = await k.run(
      ['apply', '--server-side', '--force-conflicts', '-f', '-'],
      podManifest('ssa', { app: 'three' }, ['sleep', '7200']),
    );
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      'The Pod "ssa" is invalid: spec: Forbidden: pod updates may not change fields',
    );
  });

  it('applies a namespace', async () => {
    const ns = 'apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ssa-ns\n  labels: {team: a}\n';
    expect(await ok(['apply', '--server-side', '-f', '-'], ns)).toBe('namespace/ssa-ns serverside-applied\n');
    expect(owner(await managedFields('namespace', 'ssa-ns'), 'kubectl')?.fieldsV1).toEqual({
      'f:metadata': { 'f:labels': { 'f:team': {} } },
    });
  });

  it('client-side kubectl apply still creates and configures; a later --server-side takes the object over', async () => {
    expect(await ok(['apply', '-f', '-'], podManifest('csa', { app: 'one' }))).toBe('pod/csa created\n');
    expect(await ok(['apply', '-f', '-'], podManifest('csa', { app: 'two' }))).toBe('pod/csa configured\n');
    expect(await ok(['get', 'pod', 'csa', '-o', 'jsonpath={.metadata.labels.app}'])).toBe('two');
    const before = await managedFields('pod', 'csa');
    expect(owner(before, 'kubectl-client-side-apply', 'Update')?.fieldsV1?.['f:metadata']).toMatchObject({
      'f:labels': { 'f:app': {} },
    });
    // kubectl rewrites the client-side manager's entry into its own (csaupgrade), then applies.
    expect(await ok(['apply', '--server-side', '-f', '-'], podManifest('csa', { app: 'two' }))).toBe(
      'pod/csa serverside-applied\n',
    );
    const after = await managedFields('pod', 'csa');
    expect(owner(after, 'kubectl-client-side-apply', 'Update')).toBeUndefined();
    expect(owner(after, 'kubectl')?.fieldsV1?.['f:metadata']).toMatchObject({ 'f:labels': { 'f:app': {} } });
  });
});

describe.each(
  KUBECTL_CLIENTS.filter((c) => c.version !== 'v1.35' && !c.forceSpdy).map((c) => [c.name, c] as const),
)('%s', (_name, client: KubectlClient) => {
  it('applies server-side and meets a conflict as kubectl v1.35 does', async () => {
    const old = new Kubectl(client, lab.kubeconfigPath, path.join(dir, `home-${client.version}`));
    const name = `ssa-${client.version.replace('.', '-')}`;
    const first = await old.run(['apply', '--server-side', '-f', '-'], podManifest(name, { app: 'one' }));
    expect({ code: first.code, out: first.stdout.toString(), err: first.stderr }).toEqual({
      code: 0,
      out: `pod/${name} serverside-applied\n`,
      err: '',
    });
    const refused = await old.run(
      ['apply', '--server-side', '--field-manager', 'other', '-f', '-'],
      podManifest(name, { app: 'two' }),
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      'Apply failed with 1 conflict: conflict with "kubectl": .metadata.labels.app',
    );
    const forced = await old.run(
      ['apply', '--server-side', '--field-manager', 'other', '--force-conflicts', '-f', '-'],
      podManifest(name, { app: 'two' }),
    );
    expect(forced.code).toBe(0);
  });
});
