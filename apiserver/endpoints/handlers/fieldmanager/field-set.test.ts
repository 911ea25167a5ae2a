import {
  difference,
  emptySet,
  fromFieldsV1,
  insert,
  intersection,
  isEmpty,
  keyElement,
  members,
  pathString,
  toFieldsV1,
  union,
  valueElement,
} from './field-set.js';

const set = (...paths: string[][]) => {
  const s = emptySet();
  for (const p of paths) insert(s, p);
  return s;
};

describe('FieldsV1 encoding', () => {
  it('encodes leaves as {}, members with children with ".", keys with their fields in name order', () => {
    const s = set(
      ['f:metadata', 'f:labels'],
      ['f:metadata', 'f:labels', 'f:app'],
      ['f:spec', 'f:containers', keyElement({ name: 'c' })],
      ['f:spec', 'f:containers', keyElement({ name: 'c' }), 'f:image'],
      [
        'f:spec',
        'f:containers',
        keyElement({ name: 'c' }),
        'f:ports',
        keyElement({ protocol: 'TCP', containerPort: 80 }),
      ],
      ['f:metadata', 'f:finalizers', valueElement('kubernetes')],
    );
    expect(toFieldsV1(s)).toEqual({
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} }, 'f:finalizers': { 'v:"kubernetes"': {} } },
      'f:spec': {
        'f:containers': {
          'k:{"name":"c"}': {
            '.': {},
            'f:image': {},
            'f:ports': { 'k:{"containerPort":80,"protocol":"TCP"}': {} },
          },
        },
      },
    });
    expect(JSON.stringify(toFieldsV1(set(['f:b'], ['f:a'], ['f:a', 'f:x'])))).toBe(
      '{"f:a":{".":{},"f:x":{}},"f:b":{}}',
    );
  });

  it('decodes what it encodes', () => {
    const wire = {
      'f:metadata': { 'f:labels': { '.': {}, 'f:app': {} } },
      'f:spec': { 'f:containers': { 'k:{"name":"c"}': { '.': {}, 'f:image': {} } } },
    };
    expect(toFieldsV1(fromFieldsV1(wire))).toEqual(wire);
    expect(members(fromFieldsV1(wire))).toEqual([
      ['f:metadata', 'f:labels'],
      ['f:metadata', 'f:labels', 'f:app'],
      ['f:spec', 'f:containers', 'k:{"name":"c"}'],
      ['f:spec', 'f:containers', 'k:{"name":"c"}', 'f:image'],
    ]);
  });

  it('refuses malformed sets: bad elements, bad keys, non-objects, too deep', () => {
    expect(() => fromFieldsV1({ 'x:y': {} })).toThrow('invalid path element');
    expect(() => fromFieldsV1({ 'k:{nope': {} })).toThrow();
    expect(() => fromFieldsV1({ 'i:x': {} })).toThrow('invalid index');
    expect(() => fromFieldsV1({ 'f:a': [] })).toThrow('must be objects');
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100; i++) deep = { 'f:a': deep };
    expect(() => fromFieldsV1(deep)).toThrow('too deep');
  });

  it('prints paths as conflict messages do', () => {
    expect(pathString(['f:metadata', 'f:labels', 'f:app'])).toBe('.metadata.labels.app');
    expect(pathString(['f:spec', 'f:containers', keyElement({ name: 'c' }), 'f:image'])).toBe(
      '.spec.containers[name="c"].image',
    );
    expect(pathString(['f:ports', keyElement({ containerPort: 80, protocol: 'TCP' })])).toBe(
      '.ports[containerPort=80,protocol="TCP"]',
    );
    expect(pathString(['f:finalizers', valueElement('x')])).toBe('.finalizers[="x"]');
  });
});

describe('set operations', () => {
  const a = set(['f:a'], ['f:b', 'f:x'], ['f:b', 'f:y']);
  const b = set(['f:b', 'f:y'], ['f:c']);
  it('union, difference, intersection keep members only where they belong', () => {
    expect(members(union(a, b))).toEqual([['f:a'], ['f:b', 'f:x'], ['f:b', 'f:y'], ['f:c']]);
    expect(members(difference(a, b))).toEqual([['f:a'], ['f:b', 'f:x']]);
    expect(members(intersection(a, b))).toEqual([['f:b', 'f:y']]);
    expect(isEmpty(difference(b, union(a, b)))).toBe(true);
  });
  it('a parent member is not its children: removing the parent keeps them', () => {
    const parent = set(['f:labels'], ['f:labels', 'f:app']);
    expect(members(difference(parent, set(['f:labels'])))).toEqual([['f:labels', 'f:app']]);
  });
});
