/**
 * `pods/binding`: POST a Binding `{metadata: {name: POD}, target: {kind: Node, name: NODE}}` to
 * assign a pending pod to a node. The one way `spec.nodeName` changes after creation (a pod update
 * may not change it), and the way a scheduler commits its decision.
 *
 * Mirrors kubernetes `pkg/registry/core/pod/storage/storage.go` (BindingREST.Create, assignPod,
 * setPodNodeAndMetadata: 409 "pod X is already assigned to node \"N\"", the binding's
 * annotations copied onto the pod, the PodScheduled condition set True) and
 * `pkg/apis/core/validation` ValidatePodBinding. Answers a Success Status with code 201, as upstream.
 */
import type { Status } from '../../../shared/status.js';
import { badRequest, conflict, invalid, notFound, type FieldError } from '../../api/errors.js';
import type { KubeObject, Pod } from '../../../shared/api/core-v1.js';
import { isRecord } from '../../api/json-values.js';
import { StorageError } from '../../storage/store.js';
import type { GenericStore } from '../generic-store.js';
import { timestamp } from '../object-meta.js';
import type { Context, NamedCreater, WriteOptions } from '../rest.js';

export class BindingREST implements NamedCreater {
  readonly kind = 'Binding';
  readonly namespaced = true;

  constructor(private readonly pods: GenericStore) {}

  async createNamed(ctx: Context, name: string, obj: KubeObject, opts: WriteOptions = {}): Promise<Status> {
    if (obj.kind !== undefined && obj.kind !== 'Binding') {
      throw badRequest(`${obj.kind} in version "${obj.apiVersion ?? ''}" cannot be handled as a Binding`);
    }
    if (obj.metadata.name !== undefined && obj.metadata.name !== name) {
      throw badRequest('name in URL does not match name in Binding object');
    }
    if (obj.metadata.namespace && obj.metadata.namespace !== ctx.namespace) {
      throw badRequest(
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    const target = isRecord(obj.target) ? obj.target : {};
    const errs: FieldError[] = [];
    if (target.kind !== undefined && target.kind !== '' && target.kind !== 'Node') {
      errs.push({
        type: 'FieldValueNotSupported',
        field: 'target.kind',
        value: target.kind,
        detail: 'supported values: "Node", "<empty>"',
      });
    }
    if (typeof target.name !== 'string' || !target.name) {
      errs.push({ type: 'FieldValueRequired', field: 'target.name' });
    }
    if (errs.length) throw invalid('Binding', name, errs);
    await this.assign(ctx, name, target.name as string, obj, opts);
    return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 };
  }

  private async assign(ctx: Context, name: string, node: string, binding: KubeObject, opts: WriteOptions) {
    const key = this.pods.key(ctx, name);
    const bind = (current: KubeObject): KubeObject => {
      const pod = current as Pod;
      if (binding.metadata.uid && binding.metadata.uid !== pod.metadata.uid) {
        throw conflict(
          'pods/binding',
          name,
          `Precondition failed: UID in precondition: ${binding.metadata.uid}, UID in object meta: ${pod.metadata.uid ?? ''}`,
        );
      }
      if (pod.metadata.deletionTimestamp) {
        throw conflict('pods/binding', name, `pod ${name} is being deleted, cannot be assigned to a host`);
      }
      if (pod.spec?.nodeName) {
        throw conflict(
          'pods/binding',
          name,
          `pod ${name} is already assigned to node ${JSON.stringify(pod.spec.nodeName)}`,
        );
      }
      pod.spec = { ...pod.spec, nodeName: node };
      const annotations = binding.metadata.annotations;
      if (annotations && Object.keys(annotations).length) {
        pod.metadata.annotations = { ...pod.metadata.annotations, ...annotations };
      }
      setCondition(pod, { type: 'PodScheduled', status: 'True' });
      return pod;
    };
    try {
      if (opts.dryRun) {
        const current = await this.pods.opts.store.get(key);
        if (!current) throw new StorageError('KeyNotFound', key, 'not found');
        bind(current);
        return;
      }
      await this.pods.opts.store.guaranteedUpdate(key, bind);
    } catch (err) {
      if (err instanceof StorageError && err.code === 'KeyNotFound') throw notFound('pods', name);
      if (err instanceof StorageError && err.code === 'Conflict')
        throw conflict('pods/binding', name, err.message);
      throw err;
    }
  }
}

export interface PodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string;
}

/**
 * Sets a pod condition, moving lastTransitionTime only when the status changes
 * (upstream podutil.UpdatePodCondition). Returns whether anything changed.
 */
export function setCondition(pod: Pod, cond: PodCondition): boolean {
  const status = (pod.status ??= {});
  const conditions = (Array.isArray(status.conditions) ? status.conditions : []) as PodCondition[];
  const i = conditions.findIndex((c) => c.type === cond.type);
  const old = i >= 0 ? conditions[i] : undefined;
  const next: PodCondition = {
    ...cond,
    lastProbeTime: null,
    lastTransitionTime:
      old && old.status === cond.status && old.lastTransitionTime ? old.lastTransitionTime : timestamp(),
  };
  if (old && old.status === next.status && old.reason === next.reason && old.message === next.message)
    return false;
  if (i >= 0) conditions[i] = next;
  else conditions.push(next);
  status.conditions = conditions;
  return true;
}
