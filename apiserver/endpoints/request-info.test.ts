import { newRequestInfo } from './request-info.js';

const info = (method: string, url: string) => {
  const i = newRequestInfo({ method, url });
  return [i.isResourceRequest, i.verb, i.namespace, i.resource, i.name, i.subresource].join('|');
};

describe('newRequestInfo', () => {
  it.each([
    ['GET', '/api/v1/namespaces/default/pods/demo', 'true|get|default|pods|demo|'],
    ['GET', '/api/v1/namespaces/default/pods', 'true|list|default|pods||'],
    ['GET', '/api/v1/pods?watch=true', 'true|watch||pods||'],
    ['GET', '/api/v1/pods?watch=false', 'true|list||pods||'],
    ['GET', '/api/v1/watch/namespaces/ns/pods/p', 'true|watch|ns|pods|p|'],
    ['GET', '/api/v1/nodes?fieldSelector=metadata.name%3Dn1', 'true|list||nodes|n1|'],
    ['POST', '/api/v1/namespaces/default/pods', 'true|create|default|pods||'],
    ['PUT', '/api/v1/namespaces/default/pods/demo/status', 'true|update|default|pods|demo|status'],
    ['PATCH', '/api/v1/nodes/n1/status', 'true|patch||nodes|n1|status'],
    ['DELETE', '/api/v1/namespaces/default/pods/demo', 'true|delete|default|pods|demo|'],
    ['DELETE', '/api/v1/namespaces/default/pods', 'true|deletecollection|default|pods||'],
    // Connecting to a container is "create" however it is requested (kubernetes#78741, #133515).
    ['GET', '/api/v1/namespaces/default/pods/demo/exec?command=ls', 'true|create|default|pods|demo|exec'],
    ['POST', '/api/v1/namespaces/default/pods/demo/exec?command=ls', 'true|create|default|pods|demo|exec'],
    ['GET', '/api/v1/namespaces/default/pods/demo/attach', 'true|create|default|pods|demo|attach'],
    ['GET', '/api/v1/namespaces/default/pods/demo/portforward', 'true|create|default|pods|demo|portforward'],
    ['GET', '/api/v1/namespaces/default/pods/demo/log', 'true|get|default|pods|demo|log'],
    ['GET', '/api/v1/namespaces/default', 'true|get|default|namespaces|default|'],
    ['GET', '/apis/apps/v1/namespaces/x/deployments', 'true|list|x|deployments||'],
    ['GET', '/api/v1', 'false|get||||'],
    ['GET', '/api', 'false|get||||'],
    ['GET', '/healthz', 'false|get||||'],
  ])('%s %s', (method, url, want) => {
    expect(info(method, url)).toBe(want);
  });
});
