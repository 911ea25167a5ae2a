import type { KubeObject } from '../../shared/api/core-v1.js';
import { humanDuration, nodePrinter, podPrinter } from './printers.js';
import { transform } from './table-convertor.js';

const NOW = new Date('2026-01-01T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

describe('humanDuration (apimachinery HumanDuration)', () => {
  it.each([
    [-5, '<invalid>'],
    [0, '0s'],
    [119, '119s'],
    [120, '2m'],
    [185, '3m5s'],
    [3 * 60 * 60 - 1, '179m'],
    [5 * 3600 + 3 * 60, '5h3m'],
    [20 * 3600, '20h'],
    [3 * 86400 + 4 * 3600, '3d4h'],
    [40 * 86400, '40d'],
    [(2 * 365 + 30) * 86400, '2y30d'],
    [9 * 365 * 86400, '9y'],
  ])('%ds → %s', (s, text) => expect(humanDuration(s * 1000)).toBe(text));
});

function pod(status: Record<string, unknown>, extra: Partial<KubeObject> = {}): KubeObject {
  return {
    metadata: { name: 'demo', creationTimestamp: ago(300), ...extra.metadata },
    spec: { nodeName: 'node-1', containers: [{ name: 'a' }, { name: 'b' }] },
    status,
  };
}

const running = (name: string, ready: boolean, restartCount = 0) => ({
  name,
  ready,
  restartCount,
  state: { running: { startedAt: ago(60) } },
});

describe('pod rows (printPod)', () => {
  it('Pending pod without a node', () => {
    const p = pod({ phase: 'Pending' });
    (p.spec as Record<string, unknown>).nodeName = undefined;
    expect(podPrinter.row(p, NOW).cells).toEqual([
      'demo',
      '0/2',
      'Pending',
      '0',
      '5m',
      '<none>',
      '<none>',
      '<none>',
      '<none>',
    ]);
  });

  it('Running: ready count, restarts with the last restart time, pod IP and node', () => {
    const b = { ...running('b', false, 2), lastState: { terminated: { finishedAt: ago(90) } } };
    const p = pod({
      phase: 'Running',
      podIPs: [{ ip: '10.0.0.7' }],
      containerStatuses: [running('a', true), b],
    });
    expect(podPrinter.row(p, NOW).cells).toEqual([
      'demo',
      '1/2',
      'Running',
      '2 (90s ago)',
      '5m',
      '10.0.0.7',
      'node-1',
      '<none>',
      '<none>',
    ]);
  });

  it('waiting and terminated reasons, exit codes, init containers, Terminating', () => {
    const waiting = pod({
      phase: 'Pending',
      containerStatuses: [{ name: 'a', state: { waiting: { reason: 'ImagePullBackOff' } } }],
    });
    expect(podPrinter.row(waiting, NOW).cells[2]).toBe('ImagePullBackOff');
    const exited = pod({
      phase: 'Failed',
      containerStatuses: [{ name: 'a', state: { terminated: { exitCode: 3 } } }],
    });
    expect(podPrinter.row(exited, NOW).cells[2]).toBe('ExitCode:3');
    expect(podPrinter.row(exited, NOW).conditions).toEqual([
      expect.objectContaining({ type: 'Completed', status: 'True', reason: 'Failed' }),
    ]);
    const init = pod({ phase: 'Pending', initContainerStatuses: [{ name: 'i', state: { running: {} } }] });
    (init.spec as Record<string, unknown>).initContainers = [{ name: 'i' }];
    expect(podPrinter.row(init, NOW).cells[2]).toBe('Init:0/1');
    const deleting = pod({ phase: 'Running' }, { metadata: { name: 'demo', deletionTimestamp: ago(1) } });
    expect(podPrinter.row(deleting, NOW).cells[2]).toBe('Terminating');
  });
});

describe('node rows (printNode)', () => {
  it('status, roles, version and the wide columns', () => {
    const n: KubeObject = {
      metadata: {
        name: 'node-1',
        creationTimestamp: ago(7200),
        labels: { 'node-role.kubernetes.io/worker': '' },
      },
      spec: { unschedulable: true },
      status: {
        conditions: [{ type: 'Ready', status: 'True' }],
        addresses: [{ type: 'InternalIP', address: '10.1.0.1' }],
        nodeInfo: {
          kubeletVersion: 'v1.35.0',
          osImage: 'Linux',
          kernelVersion: '6.1',
          containerRuntimeVersion: 'x://1',
        },
      },
    };
    expect(nodePrinter.row(n, NOW).cells).toEqual([
      'node-1',
      'Ready,SchedulingDisabled',
      'worker',
      '120m',
      'v1.35.0',
      '10.1.0.1',
      '<none>',
      'Linux',
      '6.1',
      'x://1',
    ]);
    expect(nodePrinter.row({ metadata: { name: 'n' } }, NOW).cells.slice(0, 3)).toEqual([
      'n',
      'Unknown',
      '<none>',
    ]);
    expect(nodePrinter.columns.filter((c) => c.priority === 0).map((c) => c.name)).toEqual([
      'Name',
      'Status',
      'Roles',
      'Age',
      'Version',
    ]);
  });
});

describe('transform to Table', () => {
  it('a list becomes one row per item with PartialObjectMetadata, or the full object', () => {
    const list = {
      kind: 'PodList',
      apiVersion: 'v1' as const,
      metadata: { resourceVersion: '9' },
      items: [pod({ phase: 'Pending' })],
    };
    const t = transform(
      list,
      { as: 'Table', groupVersion: 'meta.k8s.io/v1' },
      'Pod',
      'Metadata',
      NOW,
    ) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(t).toMatchObject({
      kind: 'Table',
      apiVersion: 'meta.k8s.io/v1',
      metadata: { resourceVersion: '9' },
    });
    expect(t.columnDefinitions.map((c: { name: string }) => c.name)).toEqual([
      'Name',
      'Ready',
      'Status',
      'Restarts',
      'Age',
      'IP',
      'Node',
      'Nominated Node',
      'Readiness Gates',
    ]);
    expect(t.rows[0].object).toEqual({
      kind: 'PartialObjectMetadata',
      apiVersion: 'meta.k8s.io/v1',
      metadata: list.items[0]!.metadata,
    });
    const full = transform(
      list,
      { as: 'Table', groupVersion: 'meta.k8s.io/v1' },
      'Pod',
      'Object',
      NOW,
    ) as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
    expect(full.rows[0].object).toMatchObject({
      kind: 'Pod',
      apiVersion: 'v1',
      spec: { nodeName: 'node-1' },
    });
  });
});
