/**
 * Event storage: `events` (core/v1), namespaced, what `kubectl get events` lists and
 * `kubectl describe` reads with a field selector on the involved object.
 *
 * Mirrors kubernetes `pkg/registry/core/event/storage/storage.go` and `strategy.go` (an Event is
 * stored as written; its namespace must match its involved object's; the selectable fields of
 * `ToSelectableFields`: involvedObject.*, reason, reportingComponent, source, type). Differences:
 * no TTL (upstream keeps events an hour, `--event-ttl`); the lab's store is small, and a lab that
 * runs for days can `kubectl delete events --all`.
 */
import type { KubeObject } from '../../../shared/api/core-v1.js';
import type { CoreEvent as SharedEvent } from '../../../shared/events.js';
import type { FieldError } from '../../api/errors.js';
import type { Store } from '../../storage/store.js';
import { GenericStore, type Strategy } from '../generic-store.js';
import { validateObjectMeta } from '../validation.js';

export const EVENT_FIELD_LABELS = [
  'metadata.name',
  'metadata.namespace',
  'involvedObject.kind',
  'involvedObject.namespace',
  'involvedObject.name',
  'involvedObject.uid',
  'involvedObject.apiVersion',
  'involvedObject.resourceVersion',
  'involvedObject.fieldPath',
  'reason',
  'reportingComponent',
  'source',
  'type',
] as const;

export type CoreEvent = KubeObject & Omit<SharedEvent, 'apiVersion' | 'kind' | 'metadata'>;

/** ValidateEvent, the parts a reader relies on. */
function validateEvent(obj: KubeObject): FieldError[] {
  const ev = obj as CoreEvent;
  const errs = validateObjectMeta(obj, true);
  const io = ev.involvedObject;
  if (io?.namespace && ev.metadata.namespace && io.namespace !== ev.metadata.namespace) {
    errs.push({
      type: 'FieldValueInvalid',
      field: 'involvedObject.namespace',
      value: io.namespace,
      detail: 'does not match event.namespace',
    });
  }
  if (ev.type !== undefined && ev.type !== 'Normal' && ev.type !== 'Warning') {
    errs.push({
      type: 'FieldValueNotSupported',
      field: 'type',
      value: ev.type,
      detail: 'supported values: "Normal", "Warning"',
    });
  }
  return errs;
}

const eventStrategy: Strategy = {
  validate: validateEvent,
  validateUpdate: validateEvent,
  allowUnconditionalUpdate: true,
};

function eventFields(obj: KubeObject): Record<string, string> {
  const ev = obj as CoreEvent;
  const io = ev.involvedObject ?? {};
  return {
    'metadata.name': ev.metadata.name ?? '',
    'metadata.namespace': ev.metadata.namespace ?? '',
    'involvedObject.kind': io.kind ?? '',
    'involvedObject.namespace': io.namespace ?? '',
    'involvedObject.name': io.name ?? '',
    'involvedObject.uid': io.uid ?? '',
    'involvedObject.apiVersion': io.apiVersion ?? '',
    'involvedObject.resourceVersion': io.resourceVersion ?? '',
    'involvedObject.fieldPath': io.fieldPath ?? '',
    reason: ev.reason ?? '',
    reportingComponent: ev.reportingComponent ?? '',
    source: ev.source?.component ?? '',
    type: ev.type ?? '',
  };
}

export function newEventStorage(store: Store): GenericStore {
  return new GenericStore({
    store,
    resource: 'events',
    kind: 'Event',
    listKind: 'EventList',
    namespaced: true,
    keyRoot: '/registry/events',
    strategy: eventStrategy,
    fields: eventFields,
    fieldLabels: EVENT_FIELD_LABELS,
    shortNames: ['ev'],
    singularName: 'event',
  });
}
