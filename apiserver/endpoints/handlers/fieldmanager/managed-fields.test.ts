import { decodeManagedFields, encodeManagedFields, managerIdentifier } from './managed-fields.js';

const entry = (manager: string, operation: string, time: string, extra: Record<string, unknown> = {}) => ({
  manager,
  operation,
  apiVersion: 'v1',
  time,
  fieldsType: 'FieldsV1',
  fieldsV1: { 'f:metadata': { 'f:labels': { 'f:a': {} } } },
  ...extra,
});

describe('metadata.managedFields', () => {
  it('identifies an applier without its apiVersion, an updater with it, a subresource by name', () => {
    expect(managerIdentifier({ manager: 'kubectl', operation: 'Apply', apiVersion: 'v1' })).toBe(
      '{"manager":"kubectl","operation":"Apply"}',
    );
    expect(
      managerIdentifier({ manager: 'kubelet', operation: 'Update', apiVersion: 'v1', subresource: 'status' }),
    ).toBe('{"manager":"kubelet","operation":"Update","apiVersion":"v1","subresource":"status"}');
  });

  it('round-trips entries, sorted Apply first, then by time, then by manager', () => {
    const entries = [
      entry('z', 'Update', '2026-01-01T00:00:01Z'),
      entry('b', 'Update', '2026-01-01T00:00:00Z'),
      entry('a', 'Update', '2026-01-01T00:00:00Z', { subresource: 'status' }),
      entry('y', 'Apply', '2026-01-01T00:00:09Z'),
    ];
    const out = encodeManagedFields(decodeManagedFields(entries))!;
    expect(out.map((e) => e.manager)).toEqual(['y', 'a', 'b', 'z']);
    expect(out[1]).toEqual(entries[2]);
  });

  it('refuses entries upstream refuses: unknown operation or fieldsType, duplicates, non-lists', () => {
    expect(() => decodeManagedFields([entry('a', 'Create', 't')])).toThrow('operation must be');
    expect(() => decodeManagedFields([entry('a', 'Apply', 't', { fieldsType: 'FieldsV2' })])).toThrow(
      'unsupported fieldsType',
    );
    expect(() => decodeManagedFields([entry('a', 'Apply', 't'), entry('a', 'Apply', 'u')])).toThrow(
      'duplicate',
    );
    expect(() => decodeManagedFields({})).toThrow('must be a list');
  });

  it('drops managers that own nothing', () => {
    expect(
      encodeManagedFields(decodeManagedFields([{ ...entry('a', 'Update', 't'), fieldsV1: {} }])),
    ).toBeUndefined();
  });
});
