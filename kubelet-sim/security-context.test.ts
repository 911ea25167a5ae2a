/**
 * The Linux CRI config the kubelet-sim derives from a pod: hostNetwork, the pod's security context
 * as the containers' default, RuntimeDefault seccomp when unset, memory limits as bytes, and the
 * runAsNonRoot check.
 */
import type { Pod } from '../shared/api/core-v1.js';
import { namespacesForPod } from './kuberuntime-manager.js';
import {
  containerLinuxConfig,
  parseQuantity,
  sandboxLinuxConfig,
  verifyRunAsNonRoot,
} from './security-context.js';

const pod = (spec: Partial<Pod['spec']>): Pod => ({
  metadata: { name: 'p', uid: 'u' },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec },
});

test('quantities as bytes', () => {
  expect(parseQuantity('32Mi')).toBe(32 * 2 ** 20);
  expect(parseQuantity('1G')).toBe(1e9);
  expect(parseQuantity('128974848')).toBe(128974848);
  expect(parseQuantity('1.5Gi')).toBe(1.5 * 2 ** 30);
  expect(() => parseQuantity('lots')).toThrow(/invalid quantity/);
});

test('hostNetwork is the sandbox network mode NODE', () => {
  expect(
    sandboxLinuxConfig(pod({ hostNetwork: true }), namespacesForPod(pod({ hostNetwork: true })))
      .security_context?.namespace_options?.network,
  ).toBe('NODE');
  expect(
    sandboxLinuxConfig(pod({}), namespacesForPod(pod({}))).security_context?.namespace_options?.network,
  ).toBe('POD');
});

test("the pod's security context is each container's default; RuntimeDefault when unset", () => {
  const p = pod({ securityContext: { runAsUser: 1000, runAsGroup: 1000 } });
  const spec = {
    name: 'c',
    image: 'busybox',
    securityContext: { runAsGroup: 5 },
    resources: { limits: { memory: '64Mi' } },
  };
  const cfg = containerLinuxConfig(p, spec, namespacesForPod(p));
  expect(cfg.security_context).toMatchObject({
    run_as_user: { value: 1000 },
    run_as_group: { value: 5 },
    seccomp: { profile_type: 'RuntimeDefault' },
  });
  expect(cfg.resources).toEqual({ memory_limit_in_bytes: 64 * 2 ** 20 });
});

test('runAsNonRoot refuses a container that would run as root', () => {
  const spec = { name: 'c', image: 'busybox', securityContext: { runAsNonRoot: true } };
  expect(verifyRunAsNonRoot(pod({}), spec)).toMatch(/runAsNonRoot/);
  expect(verifyRunAsNonRoot(pod({ securityContext: { runAsUser: 1000 } }), spec)).toBeUndefined();
});
