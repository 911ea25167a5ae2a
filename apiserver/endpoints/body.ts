/**
 * Request bodies: read with a size limit, decoded from JSON (or YAML), and the patch formats a
 * PATCH may carry.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/rest.go` (limitedReadBody, the 3 MiB default
 * `--max-request-body-bytes`) and `patch.go` (the accepted patch types): JSON merge patch
 * (RFC 7386), strategic merge patch (strategic-merge-patch.ts, lists merged by key) and JSON
 * patch. Server-side apply (the apply-patch+yaml type) is handlers/apply.ts. Objects come as JSON or YAML, and as protobuf for the few kinds typed clients send so
 * (protobuf.ts).
 */
import type { IncomingMessage } from 'node:http';
import YAML from 'yaml';
import { StatusError } from '../../shared/status.js';
import { badRequest } from '../api/errors.js';
import type { KubeObject } from '../../shared/api/core-v1.js';
import { isRecord } from '../api/json-values.js';
import { PATCH_META } from '../api/patch-meta.js';
import { applyJsonPatch } from './json-patch.js';
import { decodeProtobuf, PROTOBUF_MEDIA_TYPE } from './protobuf.js';
import { strategicMergePatch } from './strategic-merge-patch.js';

export const MAX_REQUEST_BODY_BYTES = 3 * 1024 * 1024;

export async function readBody(req: IncomingMessage, limit = MAX_REQUEST_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(limit);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function tooLarge(limit: number): StatusError {
  return StatusError.of(413, `Request entity too large: limit is ${limit}`, 'RequestEntityTooLarge');
}

export function mediaType(req: Pick<IncomingMessage, 'headers'>): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0]!.trim().toLowerCase();
}

/**
 * YAML (JSON is YAML) as a plain JSON value. `yaml` resolves an alias to the very node it names,
 * so `&a {p: *a}` is an object that contains itself, and every walk after it (field sets, merges,
 * validation) would follow it for ever: refused, as go-yaml refuses it ("anchor 'a' value contains
 * itself", which sigs.k8s.io/yaml answers with a 400). The round trip through JSON also gives each
 * alias its own copy (their number is capped by `yaml`'s maxAliasCount).
 */
export function parseYaml(text: string): unknown {
  const value: unknown = YAML.parse(text);
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    throw new Error('an anchor’s value contains itself (a recursive alias)');
  }
  return json === undefined ? undefined : JSON.parse(json);
}

/** Decodes a body into a JSON value: JSON by default, YAML when the content type says so. */
export function decode(req: IncomingMessage, body: Buffer): unknown {
  const type = mediaType(req);
  const text = body.toString('utf8');
  try {
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml') return parseYaml(text);
    return JSON.parse(text);
  } catch (err) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(err as Error).message}`);
  }
}

/** A body that must be one API object. */
export function decodeObject(req: IncomingMessage, body: Buffer): KubeObject {
  const type = mediaType(req);
  if (type === PROTOBUF_MEDIA_TYPE) return decodeProtobuf(body) as KubeObject;
  if (!['application/json', 'application/yaml', '*/*'].includes(type)) {
    throw StatusError.of(
      415,
      `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml`,
      'UnsupportedMediaType',
    );
  }
  const value = decode(req, body);
  if (!isRecord(value))
    throw badRequest(`Object 'Kind' is missing in '${body.toString('utf8').slice(0, 100)}'`);
  if (value.metadata === undefined) value.metadata = {};
  if (!isRecord(value.metadata)) throw badRequest('metadata must be an object');
  return value as KubeObject;
}

/** Applies a PATCH body to the stored object (of `kind`), by the request's patch type. */
export function applyPatch(
  req: IncomingMessage,
  body: Buffer,
  current: KubeObject,
  kind: string,
): KubeObject {
  const type = mediaType(req);
  if (type === 'application/merge-patch+json' || type === 'application/strategic-merge-patch+json') {
    const patch = decode(req, body);
    if (!isRecord(patch)) throw badRequest('a merge patch must be a JSON object');
    if (type === 'application/merge-patch+json') return mergePatch(current, patch) as KubeObject;
    return strategicMergePatch(current, patch, PATCH_META[kind]) as KubeObject;
  }
  if (type === 'application/json-patch+json') {
    const ops = decode(req, body);
    if (!Array.isArray(ops)) throw badRequest('a JSON patch must be a list of operations');
    return applyJsonPatch(current, ops) as KubeObject;
  }
  throw StatusError.of(
    415,
    `the body of the request was in an unknown format - accepted media types include: ${PATCH_TYPES.join(', ')}`,
    'UnsupportedMediaType',
  );
}

/** Server-side apply's patch type (handlers/apply.ts); its CBOR twin is not served. */
export const APPLY_PATCH_TYPE = 'application/apply-patch+yaml';

/** The patch types a PATCH may carry, in upstream's order (NewUnsupportedMediaTypeError lists them). */
const PATCH_TYPES = [
  'application/json-patch+json',
  'application/merge-patch+json',
  'application/strategic-merge-patch+json',
  APPLY_PATCH_TYPE,
];

/** RFC 7386 JSON merge patch: objects merge, null deletes, everything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isRecord(patch)) return patch;
  const result: Record<string, unknown> = isRecord(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = mergePatch(result[k], v);
  }
  return result;
}
