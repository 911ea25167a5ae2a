/**
 * Validation of what a pod asks of its sandbox: security contexts, host namespaces, resource
 * limits. What the lab's runtime (cri-shim) enforces is accepted with upstream's checks; what it
 * cannot enforce is refused here, with a 422 naming the field, rather than silently ignored —
 * a pod that asks for a protection must get it or not run.
 *
 * Mirrors `pkg/apis/core/validation/validation.go` (ValidateSecurityContext,
 * validatePodSpecSecurityContext, ValidateSeccompProfileField, validateContainerResourceName),
 * with its field paths and messages where upstream has one. Lab-only refusals (Forbidden):
 * fsGroup, sysctls, SELinux/AppArmor/Windows options,
 * procMount; a Localhost seccomp profile; `allowPrivilegeEscalation: true` (the runtime always
 * sets no_new_privs); limits other than memory (cpu and the rest are not enforced). Host pid and
 * ipc namespaces and a shared process namespace are the runtime's to refuse: a containerd node
 * gives them, the cri-shim's RunPodSandbox refuses them (INVALID_ARGUMENT).
 */
import type { FieldError } from '../../api/errors.js';
import type { Container, Pod } from '../../../shared/api/core-v1.js';

const UNSUPPORTED = 'not supported by the kexec-lab runtime';
const POD_SC_FIELDS = new Set([
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
  'supplementalGroups',
  'seccompProfile',
]);
const CONTAINER_SC_FIELDS = new Set([
  'privileged',
  'capabilities',
  'runAsUser',
  'runAsGroup',
  'runAsNonRoot',
  'readOnlyRootFilesystem',
  'allowPrivilegeEscalation',
  'seccompProfile',
]);
const MAX_ID = 2147483647;
const QUANTITY = /^([0-9.]+(?:e[0-9]+)?)([kMGT]i?)?$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function unsupportedFields(obj: Obj, allowed: Set<string>, field: string, errs: FieldError[]): void {
  for (const k of Object.keys(obj))
    if (!allowed.has(k) && obj[k] !== undefined && obj[k] !== null)
      errs.push({ type: 'FieldValueForbidden', field: `${field}.${k}`, detail: UNSUPPORTED });
}

function validateIds(sc: Obj, field: string, errs: FieldError[]): void {
  for (const k of ['runAsUser', 'runAsGroup']) {
    const v = sc[k];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_ID) {
      errs.push({
        type: 'FieldValueInvalid',
        field: `${field}.${k}`,
        value: v,
        detail: `must be between 0 and ${MAX_ID}, inclusive`,
      });
    }
  }
}

function validateSeccomp(sc: Obj, field: string, errs: FieldError[]): void {
  const p = sc.seccompProfile;
  if (p === undefined || p === null) return;
  const type = isObj(p) ? p.type : undefined;
  if (type !== 'RuntimeDefault' && type !== 'Unconfined') {
    errs.push({
      type: 'FieldValueNotSupported',
      field: `${field}.seccompProfile.type`,
      value: type,
      detail: 'supported values: "RuntimeDefault", "Unconfined"',
    });
  }
}

function validateContainer(c: Container, field: string, errs: FieldError[]): void {
  const sc = c.securityContext;
  if (isObj(sc)) {
    const f = `${field}.securityContext`;
    unsupportedFields(sc, CONTAINER_SC_FIELDS, f, errs);
    validateIds(sc, f, errs);
    validateSeccomp(sc, f, errs);
    if (sc.privileged === true && sc.allowPrivilegeEscalation === false) {
      errs.push({
        type: 'FieldValueInvalid',
        field: f,
        value: sc,
        detail: 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true',
      });
    } else if (sc.allowPrivilegeEscalation === true) {
      errs.push({
        type: 'FieldValueForbidden',
        field: `${f}.allowPrivilegeEscalation`,
        detail: `${UNSUPPORTED}: no_new_privs is always set`,
      });
    }
    const caps = sc.capabilities;
    if (isObj(caps)) unsupportedFields(caps, new Set(['add', 'drop']), `${f}.capabilities`, errs);
  }
  const res = c.resources;
  const limits = isObj(res) ? res.limits : undefined;
  if (isObj(limits)) {
    for (const [name, v] of Object.entries(limits)) {
      const lf = `${field}.resources.limits[${name}]`;
      if (name !== 'memory')
        errs.push({
          type: 'FieldValueForbidden',
          field: lf,
          detail: `${UNSUPPORTED} (only memory is enforced)`,
        });
      else if (!QUANTITY.test(String(v)))
        errs.push({
          type: 'FieldValueInvalid',
          field: lf,
          value: v,
          detail:
            "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
        });
    }
  }
}

export function validatePodSecurity(pod: Pod): FieldError[] {
  const errs: FieldError[] = [];
  const spec = pod.spec ?? {};
  const sc = spec.securityContext;
  if (isObj(sc)) {
    unsupportedFields(sc, POD_SC_FIELDS, 'spec.securityContext', errs);
    validateIds(sc, 'spec.securityContext', errs);
    validateSeccomp(sc, 'spec.securityContext', errs);
  }
  for (const [list, path] of [
    [spec.containers, 'spec.containers'],
    [spec.initContainers, 'spec.initContainers'],
  ] as const) {
    if (Array.isArray(list)) list.forEach((c, i) => isObj(c) && validateContainer(c, `${path}[${i}]`, errs));
  }
  return errs;
}
