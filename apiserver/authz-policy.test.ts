import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
import {
  fakeBackend,
  parseResponse,
  rawExchange,
  readHead,
  upgradeRequest,
} from '../shared/test-support/loopback.js';
import { NODES_GROUP } from '../shared/auth/tokens.js';
import { attributesFrom, authorize, forbidden } from './authz.js';
import { parsePolicy, policyAuthorizer, readPolicyFile } from './authz-policy.js';
import { newRequestInfo } from './endpoints/request-info.js';
import { api, node, pod, testServer, tokenFor } from './test-support/harness.js';
import net from 'node:net';
import { once } from 'node:events';

const POLICY = `
- subjects: [{kind: User, name: bob}]
  verbs: [create]
  resources: [pods/exec]
  namespaces: [default]
- subjects: [{kind: Group, name: devs}]
  verbs: [get, list]
  resources: [pods]
  namespaces: ["*"]
- subjects: [{kind: User, name: carol}]
  verbs: [get]
  resources: [pods/exec, pods/attach, pods/portforward]
  namespaces: ["*"]
- subjects: [{kind: Group, name: scrapers}]
  verbs: [get]
  nonResourceURLs: [/metrics, /logs/*]
`;

const rules = parsePolicy(parse(POLICY));
const policy = policyAuthorizer(rules);
const decide = (user: string, groups: string[], method: string, url: string) =>
  authorize(attributesFrom({ name: user, groups }, newRequestInfo({ method, url })), policy).allowed;

describe('policy authorizer', () => {
  it('bob may create pods/exec in default only, and nothing else', () => {
    const exec = '/exec?command=ls&stdout=true';
    expect(decide('bob', [], 'POST', `/api/v1/namespaces/default/pods/demo${exec}`)).toBe(true);
    expect(decide('bob', [], 'GET', `/api/v1/namespaces/default/pods/demo${exec}`)).toBe(true);
    expect(decide('bob', [], 'POST', `/api/v1/namespaces/other/pods/demo${exec}`)).toBe(false);
    expect(decide('bob', [], 'POST', '/api/v1/namespaces/default/pods/demo/attach?stdout=true')).toBe(false);
    expect(decide('bob', [], 'GET', '/api/v1/namespaces/default/pods/demo')).toBe(false);
    expect(decide('bobby', [], 'POST', `/api/v1/namespaces/default/pods/demo${exec}`)).toBe(false);
  });

  it('group rules match members; "*" namespaces cover every namespace and cluster scope', () => {
    expect(decide('dan', ['devs'], 'GET', '/api/v1/namespaces/x/pods/p')).toBe(true);
    expect(decide('dan', ['devs'], 'GET', '/api/v1/pods')).toBe(true);
    expect(decide('dan', ['devs'], 'DELETE', '/api/v1/namespaces/x/pods/p')).toBe(false);
    expect(decide('dan', ['devs'], 'GET', '/api/v1/namespaces/x/pods/p/log')).toBe(false);
    expect(decide('dan', [], 'GET', '/api/v1/namespaces/x/pods/p')).toBe(false);
    expect(decide('s', ['scrapers'], 'GET', '/metrics')).toBe(true);
    expect(decide('s', ['scrapers'], 'GET', '/logs/kube.log')).toBe(true);
    expect(decide('s', ['scrapers'], 'GET', '/debug/pprof')).toBe(false);
  });

  it('get on pods/exec does not allow exec by any HTTP method (kubernetes#133515)', () => {
    for (const sub of ['exec', 'attach', 'portforward']) {
      for (const method of ['GET', 'POST']) {
        expect(decide('carol', [], method, `/api/v1/namespaces/default/pods/demo/${sub}?stdout=true`)).toBe(
          false,
        );
      }
    }
  });

  it('keeps the built-in policy: nodes and masters are unaffected', () => {
    expect(decide('system:node:n1', [NODES_GROUP], 'GET', '/api/v1/namespaces/a/pods/p')).toBe(true);
    expect(decide('system:node:n1', [NODES_GROUP], 'POST', '/api/v1/namespaces/a/pods/p/exec')).toBe(false);
    expect(decide('admin', ['system:masters'], 'DELETE', '/api/v1/nodes/n1')).toBe(true);
  });

  it('denials keep the upstream wording', () => {
    const a = attributesFrom(
      { name: 'bob', groups: [] },
      newRequestInfo({ method: 'GET', url: '/api/v1/namespaces/other/pods/demo/exec?command=ls' }),
    );
    expect(authorize(a, policy).allowed).toBe(false);
    expect(forbidden(a, '').message).toBe(
      'pods "demo" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "other"',
    );
  });
});

describe('policy validation', () => {
  it.each([
    ['not a list', 'subjects: []', /expected a list of rules/],
    [
      'unknown rule key',
      '- {subjects: [{kind: User, name: a}], verb: [get], resources: [pods], namespaces: ["*"]}',
      /rule 0: unknown key "verb"/,
    ],
    [
      'bad subject kind',
      '- {subjects: [{kind: User, name: a}], verbs: [get], resources: [pods], namespaces: ["*"]}\n- {subjects: [{kind: ServiceAccount, name: a}], verbs: [get], resources: [pods], namespaces: ["*"]}',
      /rule 1: subject 0: kind must be User or Group, got "ServiceAccount"/,
    ],
    [
      'no subjects',
      '- {verbs: [get], resources: [pods], namespaces: ["*"]}',
      /rule 0: subjects must be a non-empty list/,
    ],
    [
      'no verbs',
      '- {subjects: [{kind: User, name: a}], resources: [pods], namespaces: ["*"]}',
      /rule 0: verbs is required/,
    ],
    [
      'no namespaces',
      '- {subjects: [{kind: User, name: a}], verbs: [get], resources: [pods]}',
      /rule 0: namespaces is required/,
    ],
    [
      'nothing to match',
      '- {subjects: [{kind: User, name: a}], verbs: [get]}',
      /rule 0: resources or nonResourceURLs is required/,
    ],
    [
      'verbs not strings',
      '- {subjects: [{kind: User, name: a}], verbs: [1], resources: [pods], namespaces: [a]}',
      /rule 0: verbs must be/,
    ],
  ])('%s', (_what, text, error) => {
    expect(() => parsePolicy(parse(text))).toThrow(error);
  });

  it('names the file, and reports invalid YAML', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authz-policy-'));
    try {
      const good = path.join(dir, 'good.yaml');
      fs.writeFileSync(good, POLICY);
      expect(readPolicyFile(good)).toHaveLength(4);
      const bad = path.join(dir, 'bad.yaml');
      fs.writeFileSync(bad, '- subjects: [{kind: User, name: a}\n  verbs: [get');
      expect(() => readPolicyFile(bad)).toThrow(
        new RegExp(`^${bad.replace(/[.\\]/g, '\\$&')}: invalid YAML`),
      );
      const unknown = path.join(dir, 'unknown.yaml');
      fs.writeFileSync(
        unknown,
        '- {subjects: [{kind: User, name: a, uid: x}], verbs: [get], resources: [pods], namespaces: [a]}',
      );
      expect(() => readPolicyFile(unknown)).toThrow(`${unknown}: rule 0: subject 0: unknown key "uid"`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('a server with --authorization-policy-file', () => {
  const SWITCH = 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: test-protocol\r\n\r\n';
  const bob = tokenFor('bob');
  const carol = tokenFor('carol');

  it('lets bob exec in default, refuses other namespaces, attach, and get-only users', async () => {
    const server = await testServer({ authorizationPolicy: rules });
    const kubelet = await fakeBackend((socket) => socket.write(SWITCH));
    try {
      await api(server, 'POST', '/api/v1/nodes', { body: node('n1', '127.0.0.1', kubelet.port) });
      for (const ns of ['default', 'other']) {
        await api(server, 'POST', `/api/v1/namespaces/${ns}/pods`, { body: pod('demo', { nodeName: 'n1' }) });
      }
      const PODS = '/api/v1/namespaces/default/pods';

      const client = net.connect(server.port, '127.0.0.1');
      await once(client, 'connect');
      client.write(
        upgradeRequest(`${PODS}/demo/exec?command=ls&stdout=true`, { Authorization: `Bearer ${bob}` }),
      );
      const { head } = await readHead(client);
      expect(head).toMatch(/^HTTP\/1\.1 101 /);
      client.destroy();
      expect(kubelet.connections).toHaveLength(1);

      const refused = async (url: string, token: string, method = 'GET') => {
        const { all } = await rawExchange(
          server.port,
          upgradeRequest(url, { Authorization: `Bearer ${token}` }, method),
        );
        const res = parseResponse(await all);
        return { code: res.code, message: (JSON.parse(res.body) as { message: string }).message };
      };
      expect(await refused('/api/v1/namespaces/other/pods/demo/exec?command=ls&stdout=true', bob)).toEqual({
        code: 403,
        message:
          'pods "demo" is forbidden: User "bob" cannot create resource "pods/exec" in API group "" in the namespace "other"',
      });
      expect(await refused(`${PODS}/demo/attach?stdout=true`, bob)).toEqual({
        code: 403,
        message:
          'pods "demo" is forbidden: User "bob" cannot create resource "pods/attach" in API group "" in the namespace "default"',
      });
      // kubernetes#133515: a WebSocket exec is a GET, but the verb checked is still create.
      expect(await refused(`${PODS}/demo/exec?command=ls&stdout=true`, carol)).toEqual({
        code: 403,
        message:
          'pods "demo" is forbidden: User "carol" cannot create resource "pods/exec" in API group "" in the namespace "default"',
      });
      expect((await api(server, 'GET', `${PODS}/demo`, { token: bob })).code).toBe(403);
      expect(kubelet.connections).toHaveLength(1);
    } finally {
      await kubelet.close();
      await server.close();
    }
  });

  it('a server without the flag is unaffected by another server’s policy', async () => {
    const withPolicy = await testServer({ authorizationPolicy: rules });
    const without = await testServer();
    try {
      const devs = tokenFor('dan', ['devs']);
      expect((await api(withPolicy, 'GET', '/api/v1/pods', { token: devs })).code).toBe(200);
      expect((await api(without, 'GET', '/api/v1/pods', { token: devs })).code).toBe(403);
    } finally {
      await withPolicy.close();
      await without.close();
    }
  });
});
