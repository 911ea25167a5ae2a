/**
 * The privileges a CRI security context gives a container (containerd's rules): the default 14
 * capabilities, add then drop (ALL in either), privileged, the seccomp choice, the user, and the
 * refusals of what this runtime cannot do.
 */
import type * as T from '../shared/cri/types.js';
import { DEFAULT_CAPABILITIES, privilegesOf } from './security-context.js';

const sc = (over: Partial<T.LinuxContainerSecurityContext>): T.LinuxContainerSecurityContext => ({
  capabilities: null,
  privileged: false,
  namespace_options: null,
  run_as_user: null,
  run_as_username: '',
  readonly_rootfs: false,
  supplemental_groups: [],
  no_new_privs: false,
  run_as_group: null,
  seccomp: null,
  ...over,
});
const caps = (add: string[], drop: string[]) => ({ add_capabilities: add, drop_capabilities: drop });

test('no security context: root, the 14 default capabilities, the runtime default profile', () => {
  expect(privilegesOf(null)).toEqual({
    uid: 0,
    gid: 0,
    groups: [],
    capabilities: [...DEFAULT_CAPABILITIES],
    seccomp: 'runtime-default',
    privileged: false,
    readOnlyRootFilesystem: false,
  });
});

test('add, then drop, with or without CAP_ and in any case', () => {
  const p = privilegesOf(
    sc({ capabilities: caps(['CAP_NET_ADMIN', 'sys_ptrace'], ['NET_RAW', 'CAP_MKNOD']) }),
  );
  expect(p.capabilities).toEqual(expect.arrayContaining(['NET_ADMIN', 'SYS_PTRACE', 'CHOWN']));
  expect(p.capabilities).not.toContain('NET_RAW');
  expect(p.capabilities).not.toContain('MKNOD');
});

test('drop ALL leaves only what is added', () => {
  expect(privilegesOf(sc({ capabilities: caps(['NET_BIND_SERVICE'], ['ALL']) })).capabilities).toEqual([
    'NET_BIND_SERVICE',
  ]);
  expect(privilegesOf(sc({ capabilities: caps([], ['ALL']) })).capabilities).toEqual([]);
});

test('privileged: every capability and no seccomp filter', () => {
  expect(privilegesOf(sc({ privileged: true }))).toMatchObject({
    capabilities: ['ALL'],
    seccomp: 'unconfined',
  });
});

test('Unconfined, the user, the group and a read-only root', () => {
  expect(
    privilegesOf(
      sc({
        seccomp: { profile_type: 'Unconfined', localhost_ref: '' },
        run_as_user: { value: 1000 },
        run_as_group: { value: 2000 },
        readonly_rootfs: true,
        supplemental_groups: [3000],
      }),
    ),
  ).toMatchObject({
    seccomp: 'unconfined',
    uid: 1000,
    gid: 2000,
    groups: [3000],
    readOnlyRootFilesystem: true,
  });
});

test('refuses what this runtime cannot honour', () => {
  expect(() => privilegesOf(sc({ capabilities: caps(['CAP_NOPE'], []) }))).toThrow(/unknown capability/);
  expect(() => privilegesOf(sc({ seccomp: { profile_type: 'Localhost', localhost_ref: '/x' } }))).toThrow(
    /Localhost/,
  );
  expect(() => privilegesOf(sc({ run_as_group: { value: 1 } }))).toThrow(/run_as_user/);
  expect(() => privilegesOf(sc({ run_as_username: 'app' }))).toThrow(/run_as_username/);
  expect(() =>
    privilegesOf(sc({ namespace_options: { network: 'POD', pid: 'NODE', ipc: 'POD', target_id: '' } })),
  ).toThrow(/namespaces/);
});
