/**
 * Reads docker-compose.yml the way `docker compose` would for what the lab needs: each service's
 * command (argv list), environment and dependencies, with `${VAR}`, `${VAR:-default}`,
 * `${VAR-default}` and `$$` interpolated from an environment. With no Docker engine around, tests
 * start the services from these very commands as local processes (`startComposeService`),
 * overriding the KEXEC_LAB_* variables (the shared volume's path, addresses, ports).
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { packageRoot } from '../shared/package-root.js';
import { startService, type Service } from './supervisor.js';
import { type Logger } from '../shared/logging.js';

export type DependsCondition = 'service_started' | 'service_healthy' | 'service_completed_successfully';

export interface ComposeService {
  name: string;
  command: string[];
  environment: Record<string, string>;
  dependsOn: Record<string, DependsCondition>;
  /** Compose `restart` policy, if any (the lab's long-running services have one). */
  restart?: string;
}

export interface ComposeFile {
  services: Record<string, ComposeService>;
}

/** Compose variable interpolation (the subset compose files commonly use). */
export function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])((?:[^}\\]|\\.)*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = braced ?? bare ?? '';
      const v = env[name];
      const unset = colon ? v === undefined || v === '' : v === undefined;
      if (op === '-') return unset ? (arg ?? '') : (v ?? '');
      if (op === '?') {
        if (unset) throw new Error(`required variable ${name} is missing a value${arg ? `: ${arg}` : ''}`);
        return v ?? '';
      }
      return v ?? '';
    },
  );
}

function asArgv(name: string, command: unknown, env: Record<string, string | undefined>): string[] {
  if (!Array.isArray(command)) {
    throw new Error(`service ${name}: command must be an argv list (got ${JSON.stringify(command)})`);
  }
  return command.map((a) => interpolate(String(a), env));
}

function asEnvironment(raw: unknown, env: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const s = String(item);
      const eq = s.indexOf('=');
      if (eq < 0) {
        const v = env[s];
        if (v !== undefined) out[s] = v;
      } else out[s.slice(0, eq)] = interpolate(s.slice(eq + 1), env);
    }
  } else if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw))
      out[k] = v === null ? (env[k] ?? '') : interpolate(String(v), env);
  }
  return out;
}

function asDependsOn(raw: unknown): Record<string, DependsCondition> {
  const out: Record<string, DependsCondition> = {};
  if (Array.isArray(raw)) for (const d of raw) out[String(d)] = 'service_started';
  else if (raw && typeof raw === 'object') {
    for (const [k, v] of Object.entries(raw)) {
      out[k] = ((v as { condition?: DependsCondition } | null)?.condition ??
        'service_started') as DependsCondition;
    }
  }
  return out;
}

/** Parses a compose file's text (YAML anchors and merge keys included). */
export function parseCompose(
  text: string,
  env: Record<string, string | undefined> = process.env,
): ComposeFile {
  const doc = YAML.parse(text, { merge: true }) as { services?: Record<string, Record<string, unknown>> };
  const services: Record<string, ComposeService> = {};
  for (const [name, svc] of Object.entries(doc.services ?? {})) {
    services[name] = {
      name,
      command: asArgv(name, svc.command, env),
      environment: asEnvironment(svc.environment, env),
      dependsOn: asDependsOn(svc.depends_on),
      ...(svc.restart ? { restart: String(svc.restart) } : {}),
    };
  }
  for (const svc of Object.values(services)) {
    for (const dep of Object.keys(svc.dependsOn)) {
      if (!services[dep]) throw new Error(`service ${svc.name} depends on unknown service ${dep}`);
    }
  }
  return { services };
}

export function loadCompose(
  file = path.join(packageRoot(), 'docker-compose.yml'),
  env: Record<string, string | undefined> = process.env,
): ComposeFile {
  return parseCompose(fs.readFileSync(file, 'utf8'), env);
}

/** Services in an order that starts every dependency first (compose's order). */
export function startOrder(compose: ComposeFile): string[] {
  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, chain: string[]) => {
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') throw new Error(`dependency cycle: ${[...chain, name].join(' → ')}`);
    state.set(name, 'visiting');
    for (const dep of Object.keys(compose.services[name].dependsOn).sort()) visit(dep, [...chain, name]);
    state.set(name, 'done');
    order.push(name);
  };
  for (const name of Object.keys(compose.services)) visit(name, []);
  return order;
}

export interface LocalServiceOptions {
  /** Extra environment for the process (on top of process.env and the service's environment). */
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  readyTimeoutMs?: number;
}

/**
 * Starts a compose service's command as a local process from the project root, with this
 * Node.js for `node`. Long-running services print READY lines (`ready`); one-shots just exit.
 */
export function startComposeService(svc: ComposeService, opts: LocalServiceOptions = {}): Service {
  const [program, script, ...args] = svc.command;
  if (program !== 'node' || !script) {
    throw new Error(
      `service ${svc.name}: expected a \`node SCRIPT ...\` command, got ${svc.command.join(' ')}`,
    );
  }
  const root = packageRoot();
  return startService({
    name: svc.name,
    script: path.resolve(root, script),
    args,
    cwd: root,
    env: { ...process.env, ...svc.environment, ...opts.env },
    log: opts.log,
    readyTimeoutMs: opts.readyTimeoutMs,
  });
}
