/**
 * Discovery and version documents: `/version`, `/api` (APIVersions), `/api/v1` and
 * `/apis/{group}/{version}` (APIResourceList, generated from the storage registry), `/apis` (the
 * APIGroupList of the named groups) and `/apis/{group}` (APIGroup), and the aggregated
 * form of `/api` and `/apis` (APIGroupDiscoveryList, apidiscovery.k8s.io/v2 or v2beta1) for
 * clients that ask for it in `Accept` (kubectl 1.26+, which then skips the per-version requests).
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/discovery/` (legacy.go, root.go, the APIResource
 * fields: name, singularName, namespaced, kind, verbs, shortNames, categories;
 * `aggregated/handler.go` for the v2 document, subresources nested under their resource) and
 * k8s.io/component-base `version` (version.Info).
 */
import type { Storage } from '../registry/rest.js';
import { groupVersionString, type APIGroupVersion, type StorageRegistry } from '../storage-registry.js';
import { verbsOf } from './installer.js';

export const VERSION = { major: '1', minor: '35', gitVersion: 'v1.35.0-kexec-lab' };

export function versionInfo(): Record<string, string> {
  return {
    major: VERSION.major,
    minor: VERSION.minor,
    gitVersion: VERSION.gitVersion,
    gitCommit: '0000000000000000000000000000000000000000',
    gitTreeState: 'clean',
    buildDate: '2026-01-01T00:00:00Z',
    goVersion: `node${process.versions.node}`,
    compiler: 'tsc',
    platform: `${process.platform}/${process.arch === 'x64' ? 'amd64' : process.arch}`,
  };
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: 'APIVersions',
    versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }],
  };
}

/** The named groups, each with its versions (one here). */
function namedGroups(apis: readonly APIGroupVersion[]): Map<string, APIGroupVersion[]> {
  const groups = new Map<string, APIGroupVersion[]>();
  for (const gv of apis) if (gv.group) groups.set(gv.group, [...(groups.get(gv.group) ?? []), gv]);
  return groups;
}

/** APIGroup for one named group, or undefined when it is not served. */
export function apiGroup(
  apis: readonly APIGroupVersion[],
  group: string,
): Record<string, unknown> | undefined {
  const versions = namedGroups(apis).get(group);
  if (!versions) return undefined;
  const list = versions.map((gv) => ({ groupVersion: groupVersionString(gv), version: gv.version }));
  return { kind: 'APIGroup', apiVersion: 'v1', name: group, versions: list, preferredVersion: list[0] };
}

export function apiGroupList(apis: readonly APIGroupVersion[]): Record<string, unknown> {
  const groups = [...namedGroups(apis).keys()].map((g) => {
    const { name, versions, preferredVersion } = apiGroup(apis, g)!;
    return { name, versions, preferredVersion };
  });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

export function apiResourceList(registry: StorageRegistry, groupVersion = 'v1'): Record<string, unknown> {
  const resources = [...registry.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, s]) => {
      const r: Record<string, unknown> = {
        name,
        singularName: name.includes('/') ? '' : (s.singularName ?? ''),
        namespaced: s.namespaced,
        kind: s.kind,
        verbs: verbsOf(s),
      };
      if (s.shortNames?.length) r.shortNames = s.shortNames;
      if (s.categories?.length) r.categories = s.categories;
      return r;
    });
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion, resources };
}

interface ResourceEntry {
  name: string;
  storage: Storage;
}

/** The registry's resources, each with its subresources. */
function grouped(registry: StorageRegistry): { main: ResourceEntry; subs: ResourceEntry[] }[] {
  const mains = [...registry.entries()]
    .filter(([name]) => !name.includes('/'))
    .sort(([a], [b]) => a.localeCompare(b));
  return mains.map(([name, storage]) => ({
    main: { name, storage },
    subs: [...registry.entries()]
      .filter(([sub]) => sub.startsWith(`${name}/`))
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([sub, s]) => ({ name: sub.slice(name.length + 1), storage: s })),
  }));
}

/** One version of a group in the aggregated form: its resources with their subresources nested. */
function aggregatedVersion(gv: APIGroupVersion): Record<string, unknown> {
  const kind = (k: string) => ({ group: gv.group, version: gv.version, kind: k });
  const resources = grouped(gv.resources).map(({ main, subs }) => {
    const r: Record<string, unknown> = {
      resource: main.name,
      responseKind: kind(main.storage.kind),
      scope: main.storage.namespaced ? 'Namespaced' : 'Cluster',
      singularResource: main.storage.singularName ?? '',
      verbs: verbsOf(main.storage),
    };
    if (main.storage.shortNames?.length) r.shortNames = main.storage.shortNames;
    if (main.storage.categories?.length) r.categories = main.storage.categories;
    if (subs.length) {
      r.subresources = subs.map((sub) => ({
        subresource: sub.name,
        responseKind: kind(sub.storage.kind),
        verbs: verbsOf(sub.storage),
      }));
    }
    return r;
  });
  return { version: gv.version, resources, freshness: 'Current' };
}

/**
 * APIGroupDiscoveryList: for `/api` the core group with v1, for `/apis` the named groups.
 * `apiVersion` is the negotiated `apidiscovery.k8s.io/v2` or `/v2beta1`.
 */
export function aggregatedDiscovery(
  apis: readonly APIGroupVersion[],
  apiVersion: string,
  root: 'api' | 'apis',
): Record<string, unknown> {
  const items =
    root === 'api'
      ? apis
          .filter((gv) => gv.group === '')
          .map((gv) => ({ metadata: { creationTimestamp: null }, versions: [aggregatedVersion(gv)] }))
      : [...namedGroups(apis)].map(([name, versions]) => ({
          metadata: { name, creationTimestamp: null },
          versions: versions.map(aggregatedVersion),
        }));
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}
