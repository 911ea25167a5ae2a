import { ADMIN_GROUP, NODES_GROUP } from '../shared/auth/tokens.js';
import { attributesFrom, authorize, forbidden } from './authz.js';
import { newRequestInfo } from './endpoints/request-info.js';

const attrs = (user: string, groups: string[], method: string, url: string) =>
  attributesFrom({ name: user, groups }, newRequestInfo({ method, url }));

describe('authorize', () => {
  it('lets system:masters do anything', () => {
    expect(authorize(attrs('admin', [ADMIN_GROUP], 'DELETE', '/api/v1/nodes/n1')).allowed).toBe(true);
    expect(authorize(attrs('admin', [ADMIN_GROUP], 'GET', '/metrics')).allowed).toBe(true);
  });

  it('gives nodes reads, node writes and pod status writes, and nothing on exec', () => {
    const n = (method: string, url: string) =>
      authorize(attrs('system:node:n1', [NODES_GROUP], method, url)).allowed;
    expect(n('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1&watch=true')).toBe(true);
    expect(n('GET', '/api/v1/namespaces/a/pods/p')).toBe(true);
    expect(n('POST', '/api/v1/nodes')).toBe(true);
    expect(n('PATCH', '/api/v1/nodes/n1/status')).toBe(true);
    expect(n('PUT', '/api/v1/namespaces/a/pods/p/status')).toBe(true);
    expect(n('PUT', '/api/v1/namespaces/a/pods/p')).toBe(false);
    expect(n('POST', '/api/v1/namespaces/a/pods')).toBe(false);
    expect(n('DELETE', '/api/v1/namespaces/a/pods/p')).toBe(false);
    expect(n('GET', '/api/v1/namespaces/a/pods/p/exec')).toBe(false);
    expect(n('GET', '/api/v1/namespaces/a/pods/p/log')).toBe(false);
  });

  it('denies everyone else, with upstream wording', () => {
    const a = attrs('bob', [], 'GET', '/api/v1/namespaces/default/pods/demo/exec?command=ls');
    expect(authorize(a).allowed).toBe(false);
    expect(forbidden(a, '').message).toBe(
      'pods "demo" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "default"',
    );
    const path = attrs('bob', [], 'GET', '/metrics');
    expect(forbidden(path, '').message).toBe('forbidden: User "bob" cannot get path "/metrics"');
    expect(authorize(attrs('bob', [], 'GET', '/api/v1')).allowed).toBe(true);
  });
});
