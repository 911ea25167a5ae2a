/**
 * RFC 6902 JSON patch (add, remove, replace, test, copy, move) for `application/json-patch+json`.
 *
 * Plays the part of evanphx/json-patch in k8s.io/apiserver `pkg/endpoints/handlers/patch.go`; a
 * failed operation is a 422 like upstream's "the server rejected our request due to an error in
 * our request", with the reason in the message.
 */
import { StatusError } from '../../shared/status.js';
import { isRecord } from '../api/json-values.js';

/** Operations per patch; a patch is a request body, bounded already, this bounds the work. */
const MAX_OPERATIONS = 10_000;

export function applyJsonPatch(doc: unknown, ops: unknown[]): unknown {
  if (ops.length > MAX_OPERATIONS) throw fail(`too many operations (${ops.length} > ${MAX_OPERATIONS})`);
  let result = structuredClone(doc);
  for (const op of ops) {
    if (!isRecord(op) || typeof op.op !== 'string' || typeof op.path !== 'string') {
      throw fail(`invalid operation ${JSON.stringify(op)}`);
    }
    switch (op.op) {
      case 'add':
        result = put(result, op.path, op.value, true);
        break;
      case 'replace':
        get(result, op.path);
        result = put(result, op.path, op.value, false);
        break;
      case 'remove':
        result = remove(result, op.path);
        break;
      case 'test':
        if (JSON.stringify(get(result, op.path)) !== JSON.stringify(op.value))
          throw fail(`testing value ${op.path} failed`);
        break;
      case 'copy':
      case 'move': {
        if (typeof op.from !== 'string') throw fail(`${op.op} needs "from"`);
        const value = structuredClone(get(result, op.from));
        if (op.op === 'move') result = remove(result, op.from);
        result = put(result, op.path, value, true);
        break;
      }
      default:
        throw fail(`unexpected operation ${JSON.stringify(op.op)}`);
    }
  }
  return result;
}

function fail(why: string): StatusError {
  return StatusError.of(
    422,
    `the server rejected our request due to an error in our request: ${why}`,
    'Invalid',
  );
}

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw fail(`invalid JSON pointer ${JSON.stringify(path)}`);
  return path
    .slice(1)
    .split('/')
    .map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function get(doc: unknown, path: string): unknown {
  let cur = doc;
  for (const t of pointer(path)) {
    if (Array.isArray(cur) && /^\d+$/.test(t) && Number(t) < cur.length) cur = cur[Number(t)];
    else if (isRecord(cur) && Object.hasOwn(cur, t)) cur = cur[t];
    else throw fail(`path ${path} does not exist`);
  }
  return cur;
}

function parentOf(doc: unknown, path: string): { parent: unknown; key: string } {
  const tokens = pointer(path);
  const key = tokens.pop();
  if (key === undefined) throw fail('the whole document cannot be the target');
  const parentPath = tokens.map((t) => '/' + t.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
  return { parent: get(doc, parentPath), key };
}

function put(doc: unknown, path: string, value: unknown, insert: boolean): unknown {
  if (path === '') return structuredClone(value);
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : Number(key);
    if (!Number.isInteger(i) || i < 0 || i > parent.length - (insert ? 0 : 1))
      throw fail(`index ${key} out of range`);
    parent.splice(i, insert ? 0 : 1, structuredClone(value));
  } else if (isRecord(parent)) {
    parent[key] = structuredClone(value);
  } else {
    throw fail(`path ${path} has no parent object`);
  }
  return doc;
}

function remove(doc: unknown, path: string): unknown {
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent) && /^\d+$/.test(key) && Number(key) < parent.length)
    parent.splice(Number(key), 1);
  else if (isRecord(parent) && Object.hasOwn(parent, key)) delete parent[key];
  else throw fail(`path ${path} does not exist`);
  return doc;
}
