import { POD_PATCH_META } from '../api/patch-meta.js';
import { strategicMergePatch } from './strategic-merge-patch.js';

const original = {
  metadata: { name: 'demo', finalizers: ['a'], labels: { app: 'x', tier: 'web' } },
  spec: {
    containers: [
      { name: 'main', image: 'busybox', env: [{ name: 'A', value: '1' }], ports: [{ containerPort: 80 }] },
      { name: 'side', image: 'nginx' },
    ],
    tolerations: [{ key: 'k' }],
  },
};

const apply = (patch: Record<string, unknown>) => strategicMergePatch(original, patch, POD_PATCH_META);

describe('strategic merge patch on pods', () => {
  it('merges containers by name: kubectl apply changing one image keeps the rest', () => {
    const out = apply({
      spec: {
        '$setElementOrder/containers': [{ name: 'main' }, { name: 'side' }],
        containers: [{ name: 'main', image: 'busybox:1.36' }],
      },
    });
    expect(out.spec).toEqual({
      containers: [
        {
          name: 'main',
          image: 'busybox:1.36',
          env: [{ name: 'A', value: '1' }],
          ports: [{ containerPort: 80 }],
        },
        { name: 'side', image: 'nginx' },
      ],
      tolerations: [{ key: 'k' }],
    });
    expect(JSON.stringify(out)).not.toContain('$');
    expect(original.spec.containers[0]!.image).toBe('busybox');
  });

  it('adds a container, deletes one with $patch: delete, orders with $setElementOrder', () => {
    const out = apply({
      spec: {
        '$setElementOrder/containers': [{ name: 'new' }, { name: 'main' }],
        containers: [
          { name: 'new', image: 'alpine' },
          { name: 'side', $patch: 'delete' },
        ],
      },
    });
    expect((out.spec as { containers: { name: string }[] }).containers.map((c) => c.name)).toEqual([
      'new',
      'main',
    ]);
  });

  it('merges nested lists by their own keys (env by name) and replaces untagged lists', () => {
    const out = apply({
      spec: {
        containers: [
          {
            name: 'main',
            env: [
              { name: 'B', value: '2' },
              { name: 'A', value: '9' },
            ],
          },
        ],
        tolerations: [{ key: 'z' }],
      },
    });
    const spec = out.spec as { containers: { env: unknown }[]; tolerations: unknown };
    expect(spec.containers[0]!.env).toEqual([
      { name: 'A', value: '9' },
      { name: 'B', value: '2' },
    ]);
    expect(spec.tolerations).toEqual([{ key: 'z' }]);
  });

  it('null deletes, $patch: replace replaces, finalizers are a set, $deleteFromPrimitiveList removes', () => {
    const out = apply({ metadata: { labels: { tier: null }, finalizers: ['b', 'a'] } });
    expect(out.metadata).toEqual({ name: 'demo', finalizers: ['a', 'b'], labels: { app: 'x' } });
    const labels = apply({ metadata: { labels: { $patch: 'replace', only: 'this' } } });
    expect((labels.metadata as { labels: unknown }).labels).toEqual({ only: 'this' });
    const removed = apply({ metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } });
    expect((removed.metadata as { finalizers: string[] }).finalizers).toEqual([]);
    const replaced = apply({ spec: { containers: [{ $patch: 'replace' }, { name: 'only', image: 'i' }] } });
    expect((replaced.spec as { containers: unknown }).containers).toEqual([{ name: 'only', image: 'i' }]);
  });

  it('$retainKeys drops the fields not listed', () => {
    const out = apply({ spec: { $retainKeys: ['containers'], containers: [] } });
    expect(Object.keys(out.spec as object)).toEqual(['containers']);
  });

  it('an element without its merge key is a 400 worded like upstream', () => {
    expect(() => apply({ spec: { containers: [{ image: 'x' }] } })).toThrow(
      'map: {"image":"x"} does not contain declared merge key: name',
    );
  });
});
