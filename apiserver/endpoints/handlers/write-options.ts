/**
 * The field manager of a write, from its query: `fieldManager` (at most 128 printable
 * characters; required for an apply), else the User-Agent's product (`kubectl/v1.35.0 (linux…)`
 * → `kubectl`); and `force`, which only an apply may carry. A bad option is upstream's 422,
 * `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply
 * patch`.
 *
 * Mirrors apimachinery `pkg/apis/meta/v1/validation/validation.go` (ValidateCreateOptions,
 * ValidateUpdateOptions, ValidatePatchOptions, ValidateFieldManager, FieldManagerMaxLength).
 * Mirrors k8s.io/apiserver `pkg/endpoints/handlers/rest.go` too (managerOrUserAgent,
 * prefixFromUserAgent).
 */
import type { IncomingMessage } from 'node:http';
import { badRequest, invalid, type FieldError } from '../../api/errors.js';

export const FIELD_MANAGER_MAX_LENGTH = 128;

export type OptionsKind = 'CreateOptions' | 'UpdateOptions' | 'PatchOptions';

export interface WriteManager {
  manager: string;
  force: boolean;
}

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S} ]$/u;

/** How many errors a fieldManager gets at most (each holds the whole value). */
const MAX_CHARACTER_ERRORS = 5;

function validateFieldManager(value: string): FieldError[] {
  const errs: FieldError[] = [];
  if (Buffer.byteLength(value) > FIELD_MANAGER_MAX_LENGTH) {
    errs.push({
      type: 'FieldValueTooLong',
      field: 'fieldManager',
      value,
      detail: `may not be more than ${FIELD_MANAGER_MAX_LENGTH} bytes`,
    });
  }
  let offset = 0;
  for (const ch of value) {
    // Upstream lists every bad character, each error carrying the whole value: with a 16 KiB URL
    // that is a Status of tens of MiB (and an audit line as big). The first few say enough.
    if (errs.length >= MAX_CHARACTER_ERRORS) break;
    if (!PRINTABLE.test(ch)) {
      const code = ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
      errs.push({
        type: 'FieldValueInvalid',
        field: 'fieldManager',
        value,
        detail: `invalid character U+${code} (at position ${offset})`,
      });
    }
    offset += Buffer.byteLength(ch);
  }
  return errs;
}

/** strconv.ParseBool, as the query parameter codec decodes `force`. */
function parseBool(v: string): boolean {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(v)) return false;
  throw badRequest(`strconv.ParseBool: parsing ${JSON.stringify(v)}: invalid syntax`);
}

/** The product of a User-Agent, printable characters only, cut at the length limit. */
export function prefixFromUserAgent(userAgent: string): string {
  let out = '';
  for (const ch of userAgent.split('/')[0]!) {
    if (!PRINTABLE.test(ch)) continue;
    if (Buffer.byteLength(out + ch) > FIELD_MANAGER_MAX_LENGTH) break;
    out += ch;
  }
  return out;
}

/** Validates the options of a write and names its manager. */
export function writeManager(
  req: Pick<IncomingMessage, 'headers'>,
  q: URLSearchParams,
  kind: OptionsKind,
  apply = false,
): WriteManager {
  const fieldManager = q.get('fieldManager') ?? '';
  const forceParam = q.get('force');
  const force = forceParam === null ? undefined : parseBool(forceParam);
  const errs: FieldError[] = [];
  if (kind === 'PatchOptions') {
    if (!apply && force !== undefined)
      errs.push({
        type: 'FieldValueForbidden',
        field: 'force',
        detail: 'may not be specified for non-apply patch',
      });
    if (apply && !fieldManager)
      errs.push({ type: 'FieldValueRequired', field: 'fieldManager', detail: 'is required for apply patch' });
  }
  errs.push(...validateFieldManager(fieldManager));
  if (errs.length) {
    const err = invalid(`${kind}.meta.k8s.io`, '', errs);
    err.status.details = { group: 'meta.k8s.io', kind, causes: err.status.details?.causes };
    throw err;
  }
  return {
    manager: fieldManager || prefixFromUserAgent(String(req.headers['user-agent'] ?? '')),
    force: force ?? false,
  };
}
