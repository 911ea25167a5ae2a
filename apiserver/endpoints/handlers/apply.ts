/**
 * A server-side apply: PATCH with `Content-Type: application/apply-patch+yaml` (YAML or JSON),
 * `fieldManager` required, `force` optional. The configuration is merged into the stored object
 * by the field manager (fieldmanager/), and the result goes through the same update path as any
 * patch, so the kind's validation (a pod's immutable spec: 422) and admission still answer; when
 * the object does not exist, the apply creates it (201) through the create path.
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/patch.go` (applyPatcher: decode the YAML,
 * FieldManager.Apply, createNewObject from the kind's empty object with forceAllowCreate; the
 * "uid mismatch" conflict when a create-on-apply names a uid). `application/apply-patch+cbor` is
 * not built: it gets the 415 of any unsupported patch type (body.ts), as upstream does with its
 * CBOR feature gate off.
 */
import type { KubeObject } from '../../../shared/api/core-v1.js';
import { StatusError } from '../../../shared/status.js';
import { badRequest, conflict } from '../../api/errors.js';
import {
  isCreater,
  type Context,
  type Creater,
  type Updater,
  type WriteOptions,
} from '../../registry/rest.js';
import { parseYaml } from '../body.js';
import { applyObject, type FieldManagerScope } from './fieldmanager/field-manager.js';

export interface ApplyRequest {
  storage: Updater;
  /** The plural resource, for messages (`pods`). */
  resource: string;
  ctx: Context;
  name: string;
  body: Buffer;
  manager: string;
  force: boolean;
  scope: FieldManagerScope;
  write: WriteOptions;
  /** Admission and field checks of the object about to be stored; returns unknown-field warnings. */
  admit: (next: KubeObject, old?: KubeObject) => string[];
  /** NamespaceLifecycle, for a create. */
  admitNamespace?: (namespace: string) => Promise<void>;
}

export interface ApplyResult {
  code: 200 | 201;
  object: KubeObject;
  unknown: string[];
}

/** The applied configuration: YAML (JSON is YAML), duplicate keys refused. */
function decodeConfig(body: Buffer): unknown {
  try {
    return parseYaml(body.toString('utf8'));
  } catch (err) {
    throw badRequest(`error decoding YAML: ${(err as Error).message}`);
  }
}

export async function serveApply(r: ApplyRequest): Promise<ApplyResult> {
  const config = decodeConfig(r.body);
  const storage = r.storage;
  // Only the resource itself is created by an apply; a subresource's object must exist.
  const creater = isCreater(storage) && !r.scope.subresource ? storage : undefined;
  let unknown: string[] = [];
  try {
    const object = await storage.update(
      r.ctx,
      r.name,
      (old) => {
        const next = applyObject(old, config, r.manager, r.force, r.scope);
        unknown = r.admit(next, old);
        return next;
      },
      r.write,
    );
    return { code: 200, object, unknown };
  } catch (err) {
    const missing = err instanceof StatusError && err.code === 404 && err.status.details?.name === r.name;
    if (!missing || !creater) throw err;
    return createOnApply(r, creater, config);
  }
}

/** createNewObject: the configuration applied to the kind's empty object, then created. */
async function createOnApply(r: ApplyRequest, creater: Creater, config: unknown): Promise<ApplyResult> {
  const next = applyObject(undefined, config, r.manager, r.force, r.scope);
  const meta = next.metadata;
  if (meta.name !== r.name) {
    throw badRequest(
      `the name of the object (${meta.name ?? ''}) does not match the name on the URL (${r.name})`,
    );
  }
  if (meta.uid) {
    throw conflict(
      r.resource,
      r.name,
      `uid mismatch: the provided object specified uid ${meta.uid}, and no existing object was found`,
    );
  }
  if (creater.namespaced) await r.admitNamespace?.(r.ctx.namespace);
  const unknown = r.admit(next);
  return { code: 201, object: await creater.create(r.ctx, next, r.write), unknown };
}
