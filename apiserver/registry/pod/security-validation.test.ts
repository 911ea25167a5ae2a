/**
 * What the apiserver refuses of a pod's sandbox requests (422 field errors) and what it lets
 * through to the runtime.
 */
import type { Pod } from '../../../shared/api/core-v1.js';
import { validatePodSecurity } from './security-validation.js';

const pod = (spec: Record<string, unknown>, container: Record<string, unknown> = {}): Pod => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'busybox', ...container }], ...spec },
});

test('accepts what the runtime enforces', () => {
  expect(
    validatePodSecurity(
      pod(
        {
          hostNetwork: true,
          securityContext: {
            runAsUser: 1000,
            runAsNonRoot: true,
            seccompProfile: { type: 'RuntimeDefault' },
          },
        },
        {
          securityContext: {
            privileged: false,
            capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] },
            readOnlyRootFilesystem: true,
            allowPrivilegeEscalation: false,
            seccompProfile: { type: 'Unconfined' },
          },
          resources: { limits: { memory: '64Mi' }, requests: { cpu: '100m' } },
        },
      ),
    ),
  ).toEqual([]);
});

test('refuses unsupported fields and profiles, cpu limits, bad ids', () => {
  const errs = validatePodSecurity(
    pod(
      { hostPID: true, securityContext: { fsGroup: 2000, runAsUser: -1 } },
      {
        securityContext: {
          seLinuxOptions: { level: 's0' },
          allowPrivilegeEscalation: true,
          seccompProfile: { type: 'Localhost', localhostProfile: 'x.json' },
        },
        resources: { limits: { cpu: '1', memory: 'lots' } },
      },
    ),
  );
  expect(errs.map((e) => `${e.field}: ${e.type}`)).toEqual([
    'spec.securityContext.fsGroup: FieldValueForbidden',
    'spec.securityContext.runAsUser: FieldValueInvalid',
    'spec.containers[0].securityContext.seLinuxOptions: FieldValueForbidden',
    'spec.containers[0].securityContext.seccompProfile.type: FieldValueNotSupported',
    'spec.containers[0].securityContext.allowPrivilegeEscalation: FieldValueForbidden',
    'spec.containers[0].resources.limits[cpu]: FieldValueForbidden',
    'spec.containers[0].resources.limits[memory]: FieldValueInvalid',
  ]);
});

test('privileged with allowPrivilegeEscalation false is invalid, as upstream', () => {
  const errs = validatePodSecurity(
    pod({}, { securityContext: { privileged: true, allowPrivilegeEscalation: false } }),
  );
  expect(errs[0]).toMatchObject({ type: 'FieldValueInvalid', field: 'spec.containers[0].securityContext' });
});
