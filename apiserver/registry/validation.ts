/**
 * Object validation: metadata, and the parts of pods and nodes the lab relies on.
 *
 * Mirrors `pkg/apis/core/validation/validation.go` (ValidateObjectMeta with ValidateNamespaceName,
 * ValidatePod's name, hostname, subdomain, nodeName and container checks, ValidatePodCreate's
 * image whitespace rule, ValidatePodUpdate's "may not change fields" rule) and apimachinery's
 * `pkg/util/validation` name rules (IsDNS1123Label, IsDNS1123Subdomain), with the same field
 * paths and detail texts. A namespace is a DNS-1123 label, so it never holds a `/` that would make
 * one namespace's storage keys a prefix of another's (issue #11: `default/secret-team`).
 */
import type { Container, KubeObject, Pod } from '../../shared/api/core-v1.js';
import { jsonEqual } from '../api/json-values.js';
import type { FieldError } from '../api/errors.js';
import { validatePodSecurity } from './pod/security-validation.js';

const DNS1123_LABEL_FMT = '[a-z0-9]([-a-z0-9]*[a-z0-9])?';
const DNS1123_SUBDOMAIN_FMT = `${DNS1123_LABEL_FMT}(\\.${DNS1123_LABEL_FMT})*`;
const DNS1123_LABEL = new RegExp(`^${DNS1123_LABEL_FMT}$`);
const DNS1123_SUBDOMAIN = new RegExp(`^${DNS1123_SUBDOMAIN_FMT}$`);
const DNS1123_LABEL_MAX = 63;
const DNS1123_SUBDOMAIN_MAX = 253;

/** apimachinery validation.RegexError: the message, examples and the regex. */
function regexError(msg: string, fmt: string, ...examples: string[]): string {
  return `${msg} (e.g. ${examples.map((e) => `'${e}', `).join(' or ')}regex used for validation is '${fmt}')`;
}

function maxLenError(n: number): string {
  return `must be no more than ${n} characters`;
}

/** IsDNS1123Label: the messages for a value that is not one (none when it is). */
export function isDNS1123Label(value: string): string[] {
  const errs: string[] = [];
  if (value.length > DNS1123_LABEL_MAX) errs.push(maxLenError(DNS1123_LABEL_MAX));
  if (!DNS1123_LABEL.test(value)) {
    errs.push(
      DNS1123_SUBDOMAIN.test(value)
        ? 'must not contain dots'
        : regexError(
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            DNS1123_LABEL_FMT,
            'my-name',
            '123-abc',
          ),
    );
  }
  return errs;
}

/** IsDNS1123Subdomain: the messages for a value that is not one (none when it is). */
export function isDNS1123Subdomain(value: string): string[] {
  const errs: string[] = [];
  if (value.length > DNS1123_SUBDOMAIN_MAX) errs.push(maxLenError(DNS1123_SUBDOMAIN_MAX));
  if (!DNS1123_SUBDOMAIN.test(value)) {
    errs.push(
      regexError(
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character",
        DNS1123_SUBDOMAIN_FMT,
        'example.com',
      ),
    );
  }
  return errs;
}

/**
 * A name rule (upstream ValidateNameFunc): `prefix` is a generateName, whose trailing dash is
 * allowed (the random suffix follows it).
 */
export type NameRule = (name: string, prefix: boolean) => string[];

const maskTrailingDash = (name: string, prefix: boolean) =>
  prefix && name.length > 1 && name.endsWith('-') ? `${name.slice(0, -2)}a` : name;

/** NameIsDNSSubdomain: pods, nodes. */
export const nameIsDNSSubdomain: NameRule = (name, prefix) =>
  isDNS1123Subdomain(maskTrailingDash(name, prefix));
/** NameIsDNSLabel: namespaces (ValidateNamespaceName). */
export const nameIsDNSLabel: NameRule = (name, prefix) => isDNS1123Label(maskTrailingDash(name, prefix));

/** Each message as an Invalid error on `field`. */
function invalidEach(field: string, value: string, msgs: string[]): FieldError[] {
  return msgs.map((detail) => ({ type: 'FieldValueInvalid', field, value, detail }));
}

/** ValidateObjectMeta: name (or generateName) by `nameRule`, the namespace a DNS-1123 label. */
export function validateObjectMeta(
  obj: KubeObject,
  namespaced: boolean,
  nameRule: NameRule = nameIsDNSSubdomain,
): FieldError[] {
  const errs: FieldError[] = [];
  const { name, generateName, namespace } = obj.metadata;
  if (generateName)
    errs.push(...invalidEach('metadata.generateName', generateName, nameRule(generateName, true)));
  if (!name) {
    errs.push({
      type: 'FieldValueRequired',
      field: 'metadata.name',
      detail: 'name or generateName is required',
    });
  } else {
    errs.push(...invalidEach('metadata.name', name, nameRule(name, false)));
  }
  if (namespaced && !namespace) {
    errs.push({ type: 'FieldValueRequired', field: 'metadata.namespace' });
  } else if (namespaced && namespace) {
    errs.push(...invalidEach('metadata.namespace', namespace, nameIsDNSLabel(namespace, false)));
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
  const spec = pod.spec;
  for (const key of ['hostname', 'subdomain']) {
    const value = spec?.[key];
    if (typeof value === 'string' && value) {
      errs.push(...invalidEach(`spec.${key}`, value, isDNS1123Label(value)));
    }
  }
  // The node's name is a path segment of the kubelet URL the apiserver dials.
  if (spec?.nodeName)
    errs.push(...invalidEach('spec.nodeName', spec.nodeName, nameIsDNSSubdomain(spec.nodeName, false)));
  const containers = spec?.containers;
  if (!Array.isArray(containers) || containers.length === 0) {
    errs.push({ type: 'FieldValueRequired', field: 'spec.containers' });
    return errs;
  }
  errs.push(...validateContainers(containers, 'spec.containers', new Set()));
  const init = spec?.initContainers;
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
    } else if (isDNS1123Label(c.name).length) {
      errs.push(...invalidEach(`${field}.name`, c.name, isDNS1123Label(c.name)));
    } else if (seen.has(c.name) || taken.has(c.name)) {
      errs.push({ type: 'FieldValueDuplicate', field: `${field}.name`, value: c.name });
    } else {
      seen.add(c.name);
    }
    if (typeof c?.image !== 'string' || !c.image) {
      errs.push({ type: 'FieldValueRequired', field: `${field}.image` });
    } else if (c.image.trim() !== c.image) {
      // validateContainersOnlyForPod: the image reference is used as given, so no stray blanks.
      errs.push({
        type: 'FieldValueInvalid',
        field: `${field}.image`,
        value: c.image,
        detail: 'must not have leading or trailing whitespace',
      });
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

/**
 * IsValidPathSegmentName (apimachinery `pkg/api/validation/path`): what a name or namespace must
 * be to stand as one segment of a storage key or URL path; [] when it can.
 */
export function isValidPathSegmentName(name: string): string[] {
  const errs: string[] = [];
  for (const illegal of ['.', '..']) if (name === illegal) errs.push(`may not be '${illegal}'`);
  for (const illegal of ['/', '%']) if (name.includes(illegal)) errs.push(`may not contain '${illegal}'`);
  return errs;
}
