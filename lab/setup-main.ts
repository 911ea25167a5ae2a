/**
 * One-shot set-up steps for the compose lab (and anyone scripting a lab by hand):
 *
 *   node dist/lab/setup-main.js credentials --dir /lab --server https://apiserver:6443 --node-name node-1
 *     signing key (kept if present), admin and node tokens, DIR/kubeconfig — all 0600; for an
 *     https server also the lab CA (kept if present) and the apiserver's serving certificate for
 *     the server's host name in DIR/pki (pki.ts), and the kubeconfig carries the CA;
 *   node dist/lab/setup-main.js user --dir .lab --name alice --group devs --ttl 12h
 *     a token for a lab user in DIR/users/alice.kubeconfig (users.ts), the admin's cluster and CA;
 *   node dist/lab/setup-main.js demo-pod --kubeconfig /lab/kubeconfig --node-name node-1 --timeout 120
 *     waits (bounded) for the apiserver, creates pod default/demo (kept if it exists) and waits
 *     until it is Running.
 */
import path from 'node:path';
import { Command, InvalidArgumentError } from 'commander';
import { loadClientConfig } from '../kexec/client.js';
import { formatError } from '../kexec/errors.js';
import { KUBECONFIG_FILE, writeCredentials, writeKubeconfig } from './credentials.js';
import { ensureLabPki } from './pki.js';
import { mintLabUser, parseTtl } from './users.js';
import { demoPod, ensurePod, retryUntilReachable, waitForPodRunning } from './pods.js';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('expected a positive number of seconds');
  return n;
}

const say = (line: string) => void process.stderr.write(`[setup] ${line}\n`);
const program = new Command('setup').description('kexec lab set-up steps (used by docker-compose.yml)');

program
  .command('credentials')
  .description(
    'write the signing key (kept if present), the tokens, the kubeconfig and, for an https server, the lab CA and apiserver certificate',
  )
  .requiredOption('--dir <dir>', 'lab directory')
  .requiredOption('--server <url>', 'apiserver URL for the kubeconfig (its host goes into the certificate)')
  .option('--node-name <name>', 'node to mint a token for', 'node-1')
  .option('--new-key', 'replace an existing signing key', false)
  .action(async (o: { dir: string; server: string; nodeName: string; newKey: boolean }) => {
    const server = new URL(o.server);
    if (server.protocol !== 'https:' && server.protocol !== 'http:')
      throw new Error(`--server must be an http(s) URL, got ${o.server}`);
    const creds = writeCredentials(path.resolve(o.dir), [o.nodeName], { reuseKey: !o.newKey });
    const pki = server.protocol === 'https:' ? await ensureLabPki(creds.dir, [server.hostname]) : undefined;
    if (pki)
      say(`lab CA ${pki.caFile}; apiserver certificate ${pki.apiserverCertFile} for ${server.hostname}`);
    const kubeconfig = writeKubeconfig(path.join(creds.dir, KUBECONFIG_FILE), o.server, creds.adminToken, {
      caPem: pki?.caPem,
    });
    say(`credentials for admin and ${o.nodeName} in ${creds.dir}; kubeconfig ${kubeconfig} → ${o.server}`);
  });

program
  .command('demo-pod')
  .description('create pod default/demo on the node and wait until it is Running')
  .requiredOption('--kubeconfig <file>', 'kubeconfig of the lab admin')
  .option('--node-name <name>', 'node the pod is bound to', 'node-1')
  .option('--timeout <seconds>', 'give up after this long', seconds, 120)
  .action(async (o: { kubeconfig: string; nodeName: string; timeout: number }) => {
    const cfg = await loadClientConfig({ kubeconfig: o.kubeconfig });
    const deadline = Date.now() + o.timeout * 1000;
    const how = await retryUntilReachable(
      () => ensurePod(cfg, demoPod({ nodeName: o.nodeName })),
      o.timeout * 1000,
    );
    say(`pod default/demo ${how === 'created' ? 'created' : 'already exists'}; waiting for it to run`);
    await waitForPodRunning(cfg, 'default', 'demo', {
      timeoutMs: Math.max(1000, deadline - Date.now()),
      retryUnavailable: true,
    });
    say('pod default/demo is Running');
  });

program
  .command('user')
  .description(
    "mint a token for a lab user and write its kubeconfig (DIR/users/NAME.kubeconfig); grant it with the apiserver's --authorization-policy-file",
  )
  .option('--dir <dir>', 'lab directory (signing key and kubeconfig)', '.lab')
  .requiredOption('--name <name>', 'user name (not system:…)')
  .option(
    '--group <group>',
    'a group of the user (repeatable)',
    (v: string, prev: string[]) => [...prev, v],
    [],
  )
  .option('--ttl <duration>', 'token lifetime, e.g. 30m, 12h (at most 168h)', '24h')
  .option('--namespace <ns>', "the context's namespace", 'default')
  .option('-o, --output <file>', 'where to write the kubeconfig (default DIR/users/NAME.kubeconfig)')
  .action(
    (o: { dir: string; name: string; group: string[]; ttl: string; namespace: string; output?: string }) => {
      const user = mintLabUser(path.resolve(o.dir), {
        name: o.name,
        groups: o.group,
        ttlSec: parseTtl(o.ttl),
        namespace: o.namespace,
        output: o.output,
      });
      say(
        `user ${o.name}${o.group.length ? ` (groups ${o.group.join(', ')})` : ''}: kubeconfig ${user.kubeconfigPath}, token valid until ${user.expiresAt.toISOString()}`,
      );
      process.stdout.write(`${user.kubeconfigPath}\n`);
    },
  );

program.parseAsync().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`[setup] ${formatError(err)}\n`);
    process.exit(1);
  },
);
