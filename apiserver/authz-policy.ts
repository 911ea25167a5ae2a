/**
 * `--authorization-policy-file`: a small RBAC-like policy that adds permissions to the built-in
 * ones of authz.ts. The file is a YAML list of rules, each an RBAC PolicyRule with its subjects
 * inlined (a ClusterRole and its binding in one):
 *
 *   - subjects: [{kind: User, name: bob}, {kind: Group, name: devs}]
 *     verbs: [create]
 *     resources: [pods/exec]       # "pods", "pods/*", "*\/exec", "*"
 *     namespaces: [default]        # "*" also covers cluster-scoped resources
 *     apiGroups: [""]              # optional, default [""] (the core group)
 *   - subjects: [{kind: Group, name: viewers}]
 *     verbs: [get]
 *     nonResourceURLs: [/metrics, /logs/*]
 *
 * A request is allowed when any rule names the user (or one of its groups), its verb, its
 * resource (or non-resource path) and its namespace: rules only add, there is no deny.
 *
 * Mirrors k8s.io/kubernetes `plugin/pkg/auth/authorizer/rbac/rbac.go` (RuleAllows) and
 * `pkg/apis/rbac/helpers.go` (VerbMatches, ResourceMatches, NonResourceURLMatches); the verb of
 * exec/attach/portforward is `create` whatever the HTTP method (endpoints/request-info.ts,
 * kubernetes#78741, #133515), so a rule granting only `get` on pods/exec does not allow exec.
 */
import fs from 'node:fs';
import { parse } from 'yaml';
import type { UserInfo } from '../shared/auth/tokens.js';
import type { Attributes, Authorizer, Decision } from './authz.js';
import { errorMessage } from '../shared/logging.js';

export interface Subject {
  kind: 'User' | 'Group';
  name: string;
}

export interface PolicyRule {
  subjects: Subject[];
  verbs: string[];
  apiGroups: string[];
  resources: string[];
  namespaces: string[];
  nonResourceURLs: string[];
}

const RULE_KEYS = new Set(['subjects', 'verbs', 'apiGroups', 'resources', 'namespaces', 'nonResourceURLs']);
const SUBJECT_KEYS = new Set(['kind', 'name']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(
  rule: Record<string, unknown>,
  key: string,
  where: string,
  allowEmptyString = false,
): string[] {
  const v = rule[key];
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length === 0)
    throw new Error(`${where}: ${key} must be a non-empty list of strings`);
  for (const s of v) {
    if (typeof s !== 'string' || (!allowEmptyString && s === ''))
      throw new Error(`${where}: ${key} must be a non-empty list of strings, got ${JSON.stringify(s)}`);
  }
  return v as string[];
}

/** Checks a parsed policy document; errors name the rule by its index (from 0). */
export function parsePolicy(doc: unknown, source = 'authorization policy'): PolicyRule[] {
  if (doc === null || doc === undefined) return [];
  if (!Array.isArray(doc)) throw new Error(`${source}: expected a list of rules`);
  return doc.map((raw: unknown, i) => {
    const where = `${source}: rule ${i}`;
    if (!isRecord(raw)) throw new Error(`${where}: expected a mapping`);
    for (const k of Object.keys(raw)) {
      if (!RULE_KEYS.has(k))
        throw new Error(`${where}: unknown key ${JSON.stringify(k)} (known: ${[...RULE_KEYS].join(', ')})`);
    }
    const subjectsRaw = raw.subjects;
    if (!Array.isArray(subjectsRaw) || subjectsRaw.length === 0)
      throw new Error(`${where}: subjects must be a non-empty list`);
    const subjects = subjectsRaw.map((s: unknown, j): Subject => {
      const sw = `${where}: subject ${j}`;
      if (!isRecord(s)) throw new Error(`${sw}: expected a mapping {kind, name}`);
      for (const k of Object.keys(s)) {
        if (!SUBJECT_KEYS.has(k))
          throw new Error(`${sw}: unknown key ${JSON.stringify(k)} (known: kind, name)`);
      }
      if (s.kind !== 'User' && s.kind !== 'Group')
        throw new Error(`${sw}: kind must be User or Group, got ${JSON.stringify(s.kind)}`);
      if (typeof s.name !== 'string' || s.name === '')
        throw new Error(`${sw}: name must be a non-empty string`);
      return { kind: s.kind, name: s.name };
    });
    const verbs = stringList(raw, 'verbs', where);
    if (verbs.length === 0) throw new Error(`${where}: verbs is required`);
    const resources = stringList(raw, 'resources', where);
    const nonResourceURLs = stringList(raw, 'nonResourceURLs', where);
    const namespaces = stringList(raw, 'namespaces', where);
    const apiGroups = stringList(raw, 'apiGroups', where, true);
    if (resources.length && nonResourceURLs.length)
      throw new Error(`${where}: a rule has either resources or nonResourceURLs, not both`);
    if (!resources.length && !nonResourceURLs.length)
      throw new Error(`${where}: resources or nonResourceURLs is required`);
    if (resources.length && !namespaces.length)
      throw new Error(`${where}: namespaces is required with resources (use ["*"] for all)`);
    if (nonResourceURLs.length && (namespaces.length || apiGroups.length))
      throw new Error(`${where}: namespaces and apiGroups apply only to resources`);
    return {
      subjects,
      verbs,
      apiGroups: resources.length && !apiGroups.length ? [''] : apiGroups,
      resources,
      namespaces,
      nonResourceURLs,
    };
  });
}

/** Reads and checks `--authorization-policy-file`; errors name the file and the rule. */
export function readPolicyFile(file: string): PolicyRule[] {
  const text = fs.readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new Error(`${file}: invalid YAML: ${errorMessage(err)}`);
  }
  return parsePolicy(doc, file);
}

function subjectMatches(rule: PolicyRule, user: UserInfo): boolean {
  return rule.subjects.some((s) => (s.kind === 'User' ? s.name === user.name : user.groups.includes(s.name)));
}

function resourceMatches(rule: PolicyRule, a: Attributes): boolean {
  const full = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  return rule.resources.some(
    (r) =>
      r === '*' ||
      r === full ||
      (a.subresource !== '' && (r === `${a.resource}/*` || r === `*/${a.subresource}`)),
  );
}

function ruleAllows(rule: PolicyRule, a: Attributes): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  if (!a.isResourceRequest) {
    return rule.nonResourceURLs.some(
      (u) => u === '*' || u === a.path || (u.endsWith('*') && a.path.startsWith(u.slice(0, -1))),
    );
  }
  if (!rule.resources.length) return false;
  if (!rule.apiGroups.includes('*') && !rule.apiGroups.includes(a.apiGroup)) return false;
  if (!rule.namespaces.includes('*') && (a.namespace === '' || !rule.namespaces.includes(a.namespace)))
    return false;
  return resourceMatches(rule, a);
}

/** The policy as an authorizer: allowed when a rule for this user matches, else no opinion (denied). */
export function policyAuthorizer(rules: PolicyRule[]): Authorizer {
  return (a: Attributes): Decision =>
    rules.some((r) => subjectMatches(r, a.user) && ruleAllows(r, a))
      ? { allowed: true }
      : { allowed: false, reason: '' };
}

/**
 * Every `--authorization-policy-file` as one authorizer that follows its files: a file that
 * changes is read again within about a second and its rules replace the old ones, as RBAC
 * objects take effect when they are written. An edit that does not parse is logged and the
 * file's last good rules stay, as kube-apiserver does when it reloads `--authorization-config`
 * (pkg/kubeapiserver/authorizer/reload.go). Every file must be valid at startup.
 */
export function watchPolicyFiles(
  files: string[],
  onReload: (file: string, error?: string) => void,
  intervalMs = 500,
): { authorize: Authorizer; close(): void } {
  const current = files.map((f) => policyAuthorizer(readPolicyFile(f)));
  const listeners = files.map((file, i) => {
    const listener = (now: fs.Stats, before: fs.Stats): void => {
      if (now.mtimeMs === before.mtimeMs && now.size === before.size && now.ino === before.ino) return;
      try {
        // A deleted file grants nothing, as deleting a ClusterRoleBinding does.
        current[i] = policyAuthorizer(fs.existsSync(file) ? readPolicyFile(file) : []);
        onReload(file);
      } catch (err) {
        onReload(file, errorMessage(err));
      }
    };
    fs.watchFile(file, { interval: intervalMs, persistent: false }, listener);
    return listener;
  });
  return {
    authorize: (a) =>
      current.some((p) => p(a).allowed) ? { allowed: true } : { allowed: false, reason: '' },
    close: () => files.forEach((f, i) => fs.unwatchFile(f, listeners[i])),
  };
}
