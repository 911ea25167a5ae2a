/**
 * Object validation: metadata, and the parts of pods and nodes the lab relies on.
 *
 * Mirrors `pkg/apis/core/validation/validation.go` (ValidateObjectMeta, ValidatePod's container
 * checks, ValidatePodUpdate's "may not change fields" rule) and apimachinery's
 * `pkg/util/validation` name rules, with the same field paths and detail texts.
 */
import { jsonEqual, type Container, type KubeObject, type Pod } from '../api/types.js';
import type { FieldError } from '../api/errors.js';
import { validatePodSecurity } from './pod/security-validation.js';

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const SUBDOMAIN_DETAIL =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must " +
  "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_DETAIL =
  "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start " +
  "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is " +
  "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

export function validateObjectMeta(obj: KubeObject, namespaced: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const { name, namespace } = obj.metadata;
  if (!name) {
    errs.push({
      type: 'FieldValueRequired',
      field: 'metadata.name',
      detail: 'name or generateName is required',
    });
  } else if (name.length > 253 || !DNS1123_SUBDOMAIN.test(name)) {
    errs.push({ type: 'FieldValueInvalid', field: 'metadata.name', value: name, detail: SUBDOMAIN_DETAIL });
  }
  if (namespaced && !namespace) {
    errs.push({ type: 'FieldValueRequired', field: 'metadata.namespace' });
  }
  if (!namespaced && namespace) {
    errs.push({
      type: 'FieldValueForbidden',
      field: 'metadata.namespace',
      detail: 'not allowed on this type',
    });
  }
  return errs;
}

export function validatePod(pod: Pod): FieldError[] {
  const errs = validateObjectMeta(pod, true);
  const containers = pod.spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    errs.push({ type: 'FieldValueRequired', field: 'spec.containers' });
    return errs;
  }
  errs.push(...validateContainers(containers, 'spec.containers', new Set()));
  const init = pod.spec?.initContainers;
  if (Array.isArray(init)) {
    const taken = new Set(containers.map((c) => c.name).filter((n): n is string => typeof n === 'string'));
    errs.push(...validateContainers(init, 'spec.initContainers', taken));
  }
  errs.push(...validatePodSecurity(pod));
  return errs;
}

function validateContainers(containers: Container[], path: string, taken: Set<string>): FieldError[] {
  const errs: FieldError[] = [];
  const seen = new Set<string>();
  containers.forEach((c, i) => {
    const field = `${path}[${i}]`;
    if (typeof c?.name !== 'string' || !c.name) {
      errs.push({ type: 'FieldValueRequired', field: `${field}.name` });
    } else if (c.name.length > 63 || !DNS1123_LABEL.test(c.name)) {
      errs.push({ type: 'FieldValueInvalid', field: `${field}.name`, value: c.name, detail: LABEL_DETAIL });
    } else if (seen.has(c.name) || taken.has(c.name)) {
      errs.push({ type: 'FieldValueDuplicate', field: `${field}.name`, value: c.name });
    } else {
      seen.add(c.name);
    }
    if (typeof c?.image !== 'string' || !c.image.trim()) {
      errs.push({ type: 'FieldValueRequired', field: `${field}.image` });
    }
  });
  return errs;
}

/** ValidatePodUpdate: only container images may change in a pod's spec. */
export function validatePodUpdate(pod: Pod, old: Pod): FieldError[] {
  const errs = validatePod(pod);
  if (errs.length) return errs;
  const withOldImages = structuredClone(pod.spec ?? {});
  withOldImages.containers?.forEach((c, i) => {
    const before = old.spec?.containers?.[i];
    if (before && c.name === before.name) c.image = before.image;
  });
  if (!jsonEqual(withOldImages, old.spec ?? {})) {
    errs.push({
      type: 'FieldValueForbidden',
      field: 'spec',
      detail: 'pod updates may not change fields other than `spec.containers[*].image`',
    });
  }
  return errs;
}
