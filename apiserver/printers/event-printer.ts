/**
 * The columns `kubectl get events` shows: LAST SEEN, TYPE, REASON, OBJECT, MESSAGE (and with
 * `-o wide` SUBOBJECT, SOURCE, FIRST SEEN, COUNT, NAME), computed on the server.
 *
 * Mirrors kubernetes `pkg/printers/internalversion/printers.go` (eventColumnDefinitions /
 * printEvent: the object as `kind/name`, the source as `component, host`, last seen from
 * lastTimestamp, else eventTime, else the creation time).
 */
import type { KubeObject } from '../../shared/api/core-v1.js';
import type { CoreEvent } from '../registry/event/event-rest.js';
import { humanDuration, type Printer, type TableColumnDefinition } from './printers.js';

const col = (name: string, description: string, priority = 0): TableColumnDefinition => ({
  name,
  type: 'string',
  format: '',
  description,
  priority,
});

function since(ts: string | undefined, now: Date): string {
  if (!ts) return '<unknown>';
  return humanDuration(now.getTime() - Date.parse(ts));
}

export const eventPrinter: Printer = {
  columns: [
    col('Last Seen', 'The time of the most recent occurrence of this event.'),
    col('Type', 'Type of this event (Normal, Warning), new types could be added in the future.'),
    col(
      'Reason',
      "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.",
    ),
    col('Object', 'The object that this event is about.'),
    col('Subobject', 'The subobject (a field path) that this event is about.', 1),
    col('Source', 'The component reporting this event.', 1),
    col('Message', 'A human-readable description of the status of this operation.'),
    col('First Seen', 'The time at which the event was first recorded.', 1),
    col('Count', 'The number of times this event has occurred.', 1),
    col('Name', 'The name of the event.', 1),
  ],
  row(obj: KubeObject, now: Date) {
    const ev = obj as CoreEvent;
    const io = ev.involvedObject ?? {};
    const last =
      ev.lastTimestamp ?? (ev as { eventTime?: string }).eventTime ?? ev.metadata.creationTimestamp;
    const first = ev.firstTimestamp ?? ev.metadata.creationTimestamp;
    const source = [ev.source?.component ?? ev.reportingComponent, ev.source?.host ?? ev.reportingInstance]
      .filter(Boolean)
      .join(', ');
    return {
      cells: [
        since(last, now),
        ev.type ?? '',
        ev.reason ?? '',
        `${(io.kind ?? '').toLowerCase()}/${io.name ?? ''}`,
        io.fieldPath ?? '',
        source,
        (ev.message ?? '').trim(),
        since(first, now),
        ev.count ?? 1,
        ev.metadata.name ?? '',
      ],
    };
  },
};
