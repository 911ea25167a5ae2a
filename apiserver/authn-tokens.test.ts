import { createHmac, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseTokenAuthFile, readTokenAuthFile } from '../shared/auth/token-file.js';
import jwt from 'jsonwebtoken';
import {
  ADMIN_GROUP,
  APISERVER_AUDIENCE,
  LAB_ISSUER,
  MAX_LAB_TOKEN_LIFETIME_SEC,
  mintRS256Token,
  mintToken,
  parsePublicKeys,
} from '../shared/auth/tokens.js';
import { KEY, api, testServer } from './test-support/harness.js';
import type { ApiServer } from './server.js';

const PODS = '/api/v1/namespaces/default/pods';

const TOKEN_FILE = `# static tokens
alice-admin-token,alice,1001,"${ADMIN_GROUP},devs"

carol-token,carol,1002
`;

const rsa = () => generateKeyPairSync('rsa', { modulusLength: 2048 });
const signer = rsa();
const other = rsa();
const publicPem = signer.publicKey.export({ type: 'spki', format: 'pem' }) as string;

const b64url = (v: string | Buffer) => Buffer.from(v).toString('base64url');

let server: ApiServer;
beforeAll(async () => {
  server = await testServer({
    staticTokens: parseTokenAuthFile(TOKEN_FILE),
    serviceAccountKeys: parsePublicKeys(publicPem),
  });
});
afterAll(() => server.close());

describe('--token-auth-file', () => {
  it('parses users, uids and groups, skipping comments and blank lines', () => {
    expect(parseTokenAuthFile(TOKEN_FILE)).toEqual([
      { token: 'alice-admin-token', user: { name: 'alice', uid: '1001', groups: [ADMIN_GROUP, 'devs'] } },
      { token: 'carol-token', user: { name: 'carol', uid: '1002', groups: [] } },
    ]);
  });

  it('authenticates a file token with its groups: an admin-group user lists pods', async () => {
    const r = await api(server, 'GET', PODS, { token: 'alice-admin-token' });
    expect(r.code).toBe(200);
    expect(r.body.kind).toBe('PodList');
  });

  it('a plain file user is authenticated but forbidden, by name', async () => {
    const r = await api(server, 'GET', PODS, { token: 'carol-token' });
    expect(r.code).toBe(403);
    expect(r.body.reason).toBe('Forbidden');
    expect(r.body.message).toContain('User "carol" cannot list resource "pods"');
  });

  it.each(['alice-admin-tokem', 'alice-admin-token-', 'alice', 'x'])(
    'refuses the wrong token %s',
    async (t) => {
      const r = await api(server, 'GET', PODS, { token: t });
      expect(r.code).toBe(401);
      expect(r.body.message).toBe('Unauthorized');
    },
  );

  it.each([
    ['too few fields', 'a,b\n', 'line 1: expected token,user,uid'],
    ['too many fields', '# c\nt,u,1,g,extra\n', 'line 2: expected token,user,uid'],
    ['an unterminated quote', '\n\nt,u,1,"g1,g2\n', 'line 3: malformed CSV'],
    ['an empty token', ',u,1\n', 'line 1: empty token'],
    ['an empty user', 't,,1\n', 'line 1: empty user name'],
    ['a duplicate token', 't,u,1\nt,v,2\n', 'line 2: duplicate token'],
  ])('a malformed file (%s) is an error naming the line', (_what, text, message) => {
    expect(() => parseTokenAuthFile(text, 'tokens.csv')).toThrow(`tokens.csv ${message}`);
  });

  it('reads the file from disk and names it in errors', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'authn-'));
    try {
      const good = path.join(dir, 'good.csv');
      fs.writeFileSync(good, TOKEN_FILE);
      expect(readTokenAuthFile(good)).toHaveLength(2);
      const bad = path.join(dir, 'bad.csv');
      fs.writeFileSync(bad, 'ok,u,1\nbroken\n');
      expect(() => readTokenAuthFile(bad)).toThrow(`${bad} line 2:`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RS256 tokens (--service-account-key-file)', () => {
  const mint = (key = signer.privateKey, opts: { expiresInSec?: number } = {}) =>
    mintRS256Token(
      key,
      { name: 'sa-admin', groups: [ADMIN_GROUP] },
      { audience: APISERVER_AUDIENCE, ...opts },
    );

  it('accepts an RS256 token signed by a configured key', async () => {
    expect((await api(server, 'GET', PODS, { token: mint() })).code).toBe(200);
  });

  it('refuses an RS256 token signed with another key', async () => {
    expect((await api(server, 'GET', PODS, { token: mint(other.privateKey) })).code).toBe(401);
  });

  it('refuses an expired RS256 token', async () => {
    expect(
      (await api(server, 'GET', PODS, { token: mint(signer.privateKey, { expiresInSec: -3600 }) })).code,
    ).toBe(401);
  });

  it('refuses an RS256 token when no public key is configured', async () => {
    const plain = await testServer();
    try {
      expect((await api(plain, 'GET', PODS, { token: mint() })).code).toBe(401);
    } finally {
      await plain.close();
    }
  });

  it('refuses an HS256 token whose HMAC secret is the public key PEM (algorithm confusion)', async () => {
    const now = Math.floor(Date.now() / 1000);
    const header = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = b64url(
      JSON.stringify({
        sub: 'mallory',
        groups: [ADMIN_GROUP],
        aud: APISERVER_AUDIENCE,
        iss: 'kexec-lab',
        iat: now,
        exp: now + 3600,
      }),
    );
    for (const secret of [publicPem, signer.publicKey.export({ type: 'pkcs1', format: 'pem' })]) {
      const sig = createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url');
      const r = await api(server, 'GET', PODS, { token: `${header}.${payload}.${sig}` });
      expect(r.code).toBe(401);
    }
  });

  it('refuses a token whose header names an unsupported algorithm', async () => {
    const header = b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }));
    const payload = b64url(
      JSON.stringify({ sub: 'mallory', groups: [ADMIN_GROUP], aud: APISERVER_AUDIENCE }),
    );
    expect((await api(server, 'GET', PODS, { token: `${header}.${payload}.` })).code).toBe(401);
  });

  it('rejects key files without an RSA public key', () => {
    expect(() => parsePublicKeys('not a pem', 'sa.pub')).toThrow('sa.pub: no PEM block found');
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => parsePublicKeys(ec.publicKey.export({ type: 'spki', format: 'pem' }), 'sa.pub')).toThrow(
      'not RSA',
    );
    // Several keys in one file, as upstream allows.
    const both = publicPem + (other.publicKey.export({ type: 'spki', format: 'pem' }) as string);
    expect(parsePublicKeys(both)).toHaveLength(2);
  });
});

describe('lab tokens (HS256)', () => {
  /** A token signed with the lab key, its claims exactly as given (no `exp` unless given). */
  const signed = (claims: Record<string, unknown>) => jwt.sign(claims, KEY, { algorithm: 'HS256' });
  const base = { sub: 'admin', groups: [ADMIN_GROUP], iss: LAB_ISSUER, aud: APISERVER_AUDIENCE };
  const now = () => Math.floor(Date.now() / 1000);

  it('refuses a token without exp (it would never expire), and one that lives past the cap', async () => {
    expect((await api(server, 'GET', PODS, { token: signed({ ...base, exp: now() + 60 }) })).code).toBe(200);
    const noExp = await api(server, 'GET', PODS, { token: signed(base) });
    expect({ code: noExp.code, message: noExp.body.message }).toEqual({ code: 401, message: 'Unauthorized' });
    const rs256NoExp = jwt.sign(base, signer.privateKey, { algorithm: 'RS256' });
    expect((await api(server, 'GET', PODS, { token: rs256NoExp })).code).toBe(401);
    const tenYears = await api(server, 'GET', PODS, {
      token: signed({ ...base, exp: now() + 10 * 365 * 24 * 3600 }),
    });
    expect(tenYears.code).toBe(401);
    expect(
      (
        await api(server, 'GET', PODS, {
          token: signed({ ...base, exp: now() + MAX_LAB_TOKEN_LIFETIME_SEC }),
        })
      ).code,
    ).toBe(200);
  });

  it('mints no lab token longer than the cap', () => {
    expect(() =>
      mintToken(
        KEY,
        { name: 'a', groups: [] },
        { audience: APISERVER_AUDIENCE, expiresInSec: 30 * 24 * 3600 },
      ),
    ).toThrow(/at most/);
  });
});
