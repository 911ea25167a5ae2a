import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { packageRoot } from '../shared/package-root.js';
import { buildUpstreamMap, upstreamRefs, UPSTREAM_MAP_FILE } from './upstream-map.js';

describe('docs/upstream-map.md', () => {
  it('reads the upstream project and every backquoted path of a Mirrors sentence', () => {
    const src = [
      '/**',
      ' * A thing.',
      ' *',
      ' * Mirrors k8s.io/apiserver `pkg/util/proxy/streamtunnel.go` (TunnelingHandler) and the',
      ' * `pkg/util/proxy/upgradeaware.go` dialer. Not `this-one` after the full stop.',
      ' */',
    ].join('\n');
    expect(upstreamRefs('x.ts', src)).toEqual([
      {
        project: 'k8s.io/apiserver',
        paths: ['pkg/util/proxy/streamtunnel.go', 'pkg/util/proxy/upgradeaware.go'],
        file: 'x.ts',
      },
    ]);
    expect(upstreamRefs('y.ts', '/** Lab plumbing only. */')).toEqual([]);
  });

  it('is up to date with the modules’ headers (npm run docs:upstream-map rewrites it)', () => {
    const root = packageRoot();
    const onDisk = fs.readFileSync(path.join(root, UPSTREAM_MAP_FILE), 'utf8');
    expect(onDisk).toBe(buildUpstreamMap(root));
  });
});
