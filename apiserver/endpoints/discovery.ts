/**
 * Discovery and version documents: `/version`, `/api` (APIVersions), `/api/v1` (APIResourceList,
 * generated from the storage registry), `/apis` (an empty APIGroupList).
 *
 * Mirrors k8s.io/apiserver `pkg/endpoints/discovery/` (legacy.go, root.go, the APIResource
 * fields: name, singularName, namespaced, kind, verbs, shortNames, categories) and
 * k8s.io/component-base `version` (version.Info). Aggregated discovery (apidiscovery.k8s.io/v2)
 * is not served; clients fall back to these legacy documents when the response is plain JSON.
 */
import type { StorageRegistry } from '../storage-registry.js';
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

export function apiGroupList(): Record<string, unknown> {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [] };
}

export function apiResourceList(registry: StorageRegistry): Record<string, unknown> {
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
  return { kind: 'APIResourceList', groupVersion: 'v1', resources };
}
