/**
 * Constructors for the API errors the apiserver returns, each a StatusError carrying the exact
 * Status upstream sends (message wording, reason, details).
 *
 * Mirrors apimachinery `pkg/api/errors/errors.go` (NewNotFound, NewAlreadyExists, NewConflict,
 * NewInvalid, NewForbidden, NewMethodNotSupported, NewResourceExpired) and
 * `pkg/util/validation/field/errors.go` for field errors.
 */
import { StatusError, type StatusCause } from '../../shared/status.js';

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueDuplicate'
  | 'FieldValueForbidden'
  | 'FieldValueNotSupported'
  | 'FieldValueTooLong';

export interface FieldError {
  type: FieldErrorType;
  field: string;
  value?: unknown;
  detail?: string;
}

const TYPE_TEXT: Record<FieldErrorType, string> = {
  FieldValueRequired: 'Required value',
  FieldValueInvalid: 'Invalid value',
  FieldValueDuplicate: 'Duplicate value',
  FieldValueForbidden: 'Forbidden',
  FieldValueNotSupported: 'Unsupported value',
  FieldValueTooLong: 'Too long',
};

/** `field.Error.ErrorBody()`: "Invalid value: \"X\": detail", "Required value", … */
export function fieldErrorBody(e: FieldError): string {
  let body = TYPE_TEXT[e.type];
  if (
    e.type === 'FieldValueInvalid' ||
    e.type === 'FieldValueDuplicate' ||
    e.type === 'FieldValueNotSupported'
  ) {
    body += `: ${JSON.stringify(e.value)}`;
  }
  return e.detail ? `${body}: ${e.detail}` : body;
}

export function notFound(resource: string, name: string): StatusError {
  return StatusError.of(404, `${resource} "${name}" not found`, 'NotFound', { name, kind: resource });
}

export function alreadyExists(resource: string, name: string): StatusError {
  return StatusError.of(409, `${resource} "${name}" already exists`, 'AlreadyExists', {
    name,
    kind: resource,
  });
}

export function conflict(resource: string, name: string, why: string): StatusError {
  return StatusError.of(409, `Operation cannot be fulfilled on ${resource} "${name}": ${why}`, 'Conflict', {
    name,
    kind: resource,
  });
}

export const OBJECT_MODIFIED =
  'the object has been modified; please apply your changes to the latest version and try again';

/** 422 Invalid: `Pod "x" is invalid: spec.containers: Required value` (several errors in brackets). */
export function invalid(kind: string, name: string, errs: FieldError[]): StatusError {
  const parts = errs.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const joined = parts.length === 1 ? parts[0]! : `[${parts.join(', ')}]`;
  const causes: StatusCause[] = errs.map((e) => ({
    reason: e.type,
    message: fieldErrorBody(e),
    field: e.field,
  }));
  return StatusError.of(422, `${kind} "${name}" is invalid: ${joined}`, 'Invalid', { name, kind, causes });
}

export function badRequest(message: string): StatusError {
  return StatusError.of(400, message, 'BadRequest');
}

export function methodNotSupported(resource: string, method: string): StatusError {
  return StatusError.of(
    405,
    `${method} is not supported on resources of kind "${resource}"`,
    'MethodNotAllowed',
    {
      kind: resource,
    },
  );
}

/** The catch-all 404 for paths and resources the server does not serve. */
export function resourceNotFound(): StatusError {
  return StatusError.of(404, 'the server could not find the requested resource', 'NotFound', {});
}

export function resourceExpired(message: string): StatusError {
  return StatusError.of(410, message, 'Expired');
}

export function unauthorized(): StatusError {
  return StatusError.of(401, 'Unauthorized', 'Unauthorized');
}
