/**
 * The merge and ownership rules of server-side apply on plain objects: what an apply sets, prunes
 * and refuses, what an update takes over (structured-merge-diff's merge tests, in miniature).
 */
import { POD_PATCH_META } from '../../../api/patch-meta.js';
import { fieldElement, members, toFieldsV1, type FieldSet } from './field-set.js';
import { compare, merge, toFieldSet } from './typed-value.js';
import {
  applyConfig,
  Conflicts,
  updateManagers,
  type ManagedFields,
  type UpdaterOptions,
} from './updater.js';

const opts: UpdaterOptions = {
  meta: POD_PATCH_META,
  ignored: (s: FieldSet) => ({
    member: false,
    children: new Map([...s.children].filter(([pe]) => pe !== fieldElement('status'))),
  }),
};

const podWith = (labels: Record<string, string>, containers: Record<string, unknown>[]) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', labels },
  spec: { containers },
});

function applyAs(live: unknown, config: unknown, managers: ManagedFields, manager: string, force = false) {
  return applyConfig(live, config, 'v1', managers, manager, force, opts);
}

describe('typed walks', () => {
  it('ToFieldSet: leaves, list items by key (ports by containerPort and protocol, TCP by default), atomic lists whole', () => {
    const s = toFieldSet(
      podWith({ app: 'a' }, [
        {
          name: 'c',
          image: 'i',
          command: ['sleep', '1'],
          ports: [{ containerPort: 80 }],
          env: [{ name: 'E', value: 'v' }],
        },
      ]),
      POD_PATCH_META,
    );
    expect(toFieldsV1(s)).toEqual({
      'f:apiVersion': {},
      'f:kind': {},
      'f:metadata': { 'f:name': {}, 'f:labels': { 'f:app': {} } },
      'f:spec': {
        'f:containers': {
          'k:{"name":"c"}': {
            '.': {},
            'f:name': {},
            'f:image': {},
            'f:command': {},
            'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': { '.': {}, 'f:containerPort': {} } },
            'f:env': { 'k:{"name":"E"}': { '.': {}, 'f:name': {}, 'f:value': {} } },
          },
        },
      },
    });
  });

  it('an associative-list item without its key, or twice the same key, is a 400', () => {
    expect(() => toFieldSet(podWith({}, [{ image: 'x' }]), POD_PATCH_META)).toThrow(
      '.spec.containers: element 0: associative list with keys has an element that omits key field "name" (and doesn\'t have default value)',
    );
    expect(() => toFieldSet(podWith({}, [{ name: 'a' }, { name: 'a' }]), POD_PATCH_META)).toThrow(
      'duplicate entries for key {"name":"a"}',
    );
  });

  it('Compare: a new map is added with what it holds; a changed leaf is modified; a gone item is removed', () => {
    const before = podWith({}, [
      { name: 'a', image: '1' },
      { name: 'b', image: '1' },
    ]);
    const after = { ...podWith({ app: 'x' }, [{ name: 'a', image: '2' }]) };
    delete (before.metadata as { labels?: unknown }).labels;
    const c = compare(before, after, POD_PATCH_META);
    expect(members(c.added)).toEqual([
      ['f:metadata', 'f:labels'],
      ['f:metadata', 'f:labels', 'f:app'],
    ]);
    expect(members(c.modified)).toEqual([['f:spec', 'f:containers', 'k:{"name":"a"}', 'f:image']]);
    expect(members(c.removed)).toEqual([
      ['f:spec', 'f:containers', 'k:{"name":"b"}'],
      ['f:spec', 'f:containers', 'k:{"name":"b"}', 'f:image'],
      ['f:spec', 'f:containers', 'k:{"name":"b"}', 'f:name'],
    ]);
  });

  it('Merge: maps merge, associative lists merge by key (new items last), atomic lists are replaced', () => {
    const live = podWith({ a: '1', b: '2' }, [
      { name: 'x', image: 'i', command: ['a', 'b'], env: [{ name: 'E', value: '1' }] },
      { name: 'y', image: 'j' },
    ]);
    const config = podWith({ b: '3' }, [
      { name: 'z', image: 'k' },
      { name: 'x', command: ['c'], env: [{ name: 'F', value: '2' }] },
    ]);
    expect(merge(live, config, POD_PATCH_META)).toEqual(
      podWith({ a: '1', b: '3' }, [
        {
          name: 'x',
          image: 'i',
          command: ['c'],
          env: [
            { name: 'E', value: '1' },
            { name: 'F', value: '2' },
          ],
        },
        { name: 'y', image: 'j' },
        { name: 'z', image: 'k' },
      ]),
    );
  });
});

describe('apply and update ownership', () => {
  it('an apply owns what it sets; a re-apply without a label prunes it', () => {
    const first = applyAs(
      undefined,
      podWith({ app: 'a', tier: 'b' }, [{ name: 'c', image: 'i' }]),
      new Map(),
      'm1',
    );
    const again = applyAs(
      first.object,
      podWith({ app: 'a' }, [{ name: 'c', image: 'i' }]),
      first.managers,
      'm1',
    );
    expect((again.object as { metadata: { labels: unknown } }).metadata.labels).toEqual({ app: 'a' });
    expect(members(again.managers.get('m1')!.set)).toContainEqual(['f:metadata', 'f:labels', 'f:app']);
    expect(members(again.managers.get('m1')!.set)).not.toContainEqual(['f:metadata', 'f:labels', 'f:tier']);
  });

  it('pruning removes a whole container the applier dropped, but not one another applier also applies', () => {
    const two = podWith({}, [
      { name: 'c', image: 'i' },
      { name: 'd', image: 'j' },
    ]);
    const a = applyAs(undefined, two, new Map(), 'm1');
    const b = applyAs(a.object, podWith({}, [{ name: 'd', image: 'j' }]), a.managers, 'm2');
    const pruned = applyAs(b.object, podWith({}, []), b.managers, 'm1');
    expect((pruned.object as { spec: { containers: unknown } }).spec.containers).toEqual([
      { name: 'd', image: 'j' },
    ]);
  });

  it('changing a field another applier owns is a conflict naming it; force moves the field', () => {
    const a = applyAs(undefined, podWith({ app: 'a' }, [{ name: 'c', image: 'i' }]), new Map(), 'm1');
    const config = podWith({ app: 'b' }, [{ name: 'c', image: 'i' }]);
    let caught: unknown;
    try {
      applyAs(a.object, config, a.managers, 'm2');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(Conflicts);
    expect((caught as Conflicts).conflicts).toEqual([
      { manager: 'm1', path: ['f:metadata', 'f:labels', 'f:app'] },
    ]);
    const forced = applyAs(a.object, config, a.managers, 'm2', true);
    expect(members(forced.managers.get('m1')!.set)).not.toContainEqual(['f:metadata', 'f:labels', 'f:app']);
    // Shared fields (same value) stay shared.
    expect(members(forced.managers.get('m1')!.set)).toContainEqual([
      'f:spec',
      'f:containers',
      'k:{"name":"c"}',
      'f:image',
    ]);
    expect(members(forced.managers.get('m2')!.set)).toContainEqual([
      'f:spec',
      'f:containers',
      'k:{"name":"c"}',
      'f:image',
    ]);
  });

  it('an update takes what it changed from everyone, without conflict, and says whether it changed anything', () => {
    const a = applyAs(undefined, podWith({ app: 'a' }, [{ name: 'c', image: 'i' }]), new Map(), 'm1');
    const next = structuredClone(a.object) as ReturnType<typeof podWith>;
    next.spec.containers[0]!.image = 'j';
    const u = updateManagers(a.object, next, 'v1', a.managers, 'editor', opts);
    expect(u.changed).toBe(true);
    expect(members(u.managers.get('editor')!.set)).toEqual([
      ['f:spec', 'f:containers', 'k:{"name":"c"}', 'f:image'],
    ]);
    expect(members(u.managers.get('m1')!.set)).not.toContainEqual([
      'f:spec',
      'f:containers',
      'k:{"name":"c"}',
      'f:image',
    ]);
    expect(updateManagers(next, next, 'v1', u.managers, 'editor', opts).changed).toBe(false);
  });

  it('status is owned by no one on the main resource (the strategy resets it)', () => {
    const a = applyAs(
      undefined,
      { ...podWith({}, [{ name: 'c' }]), status: { phase: 'Running' } },
      new Map(),
      'm1',
    );
    expect(members(a.managers.get('m1')!.set).some((p) => p[0] === 'f:status')).toBe(false);
  });
});
