/**
 * A core/v1 Event as a component records it: what happened (reason, message, Normal or Warning)
 * to which object (and which container of it), seen by whom.
 *
 * Mirrors client-go `tools/record/event.go` (makeEvent: the name is the object's name, a dot and
 * the time in hexadecimal nanoseconds; firstTimestamp = lastTimestamp = now, count 1; source and
 * reportingComponent/reportingInstance from the recorder) and `tools/reference` (the
 * involvedObject, with `spec.containers{name}` as fieldPath for a container).
 */
export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface CoreEvent {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name?: string; namespace?: string; [k: string]: unknown };
  involvedObject?: ObjectReference;
  reason?: string;
  message?: string;
  source?: { component?: string; host?: string };
  firstTimestamp?: string;
  lastTimestamp?: string;
  count?: number;
  type?: string;
  reportingComponent?: string;
  reportingInstance?: string;
}

export interface EventSource {
  component: string;
  host?: string;
}

/** A pod (or one of its containers) as an Event's involvedObject. */
export function podReference(
  pod: { metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string } },
  container?: string,
): ObjectReference {
  return {
    kind: 'Pod',
    namespace: pod.metadata.namespace ?? 'default',
    name: pod.metadata.name,
    uid: pod.metadata.uid,
    apiVersion: 'v1',
    ...(pod.metadata.resourceVersion ? { resourceVersion: pod.metadata.resourceVersion } : {}),
    ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
  };
}

export function newEvent(
  ref: ObjectReference,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
  source: EventSource,
  now = new Date(),
): CoreEvent {
  const stamp = now.toISOString().replace(/\.\d+Z$/, 'Z');
  const nanos = BigInt(now.getTime()) * 1_000_000n + BigInt(Math.floor(Math.random() * 1e6));
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: `${ref.name}.${nanos.toString(16)}`, namespace: ref.namespace ?? 'default' },
    involvedObject: ref,
    reason,
    message,
    source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
    firstTimestamp: stamp,
    lastTimestamp: stamp,
    count: 1,
    type,
    reportingComponent: source.component,
    reportingInstance: source.host ?? '',
  };
}
