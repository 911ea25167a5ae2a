/**
 * The compose `node` container: one node = cri-shim + kubelet-sim, still two separate processes
 * (docs/wiring.md), started in order and supervised together.
 *
 *   NODE_EXTRA_CA_CERTS=/lab/pki/ca.crt \
 *   node dist/lab/node-main.js --dir /lab --apiserver https://apiserver:6443 --node-name node-1 --address auto
 *
 * The kubelet-sim inherits this process's environment: NODE_EXTRA_CA_CERTS makes it trust the lab
 * CA that issued the apiserver's certificate (lab/pki.ts). With an https apiserver the kubelet
 * serves https with `DIR/pki/kubelet-NODE.crt`, issued here by the lab CA for its address, and the
 * cri-shim's streaming server with `DIR/pki/cri-shim-NODE.crt` (loopback names).
 *
 * Credentials come from `--dir` (written by `setup-main.js credentials`). `--address auto` uses the
 * IPv4 address this host name resolves to (the container's address on the compose network), which
 * the kubelet both binds and registers as its InternalIP. Prints
 * `READY {"service":"node","node":…,"kubeletUrl":…,"criEndpoint":…}` once the kubelet is READY;
 * SIGTERM/SIGINT stop both and exit 0; either dying on its own stops the other and exits 1.
 */
import dns from 'node:dns/promises';
import os from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import { packageRoot } from '../shared/package-root.js';
import { criShimArgv, kubeletArgv } from './argv.js';
import { nodeTokenFile } from './credentials.js';
import { criShimStreamingTlsArgs, kubeletTlsArgs } from './pki.js';
import { describeExit, startService, type Service } from './supervisor.js';
import { portArgument } from '../shared/cli-flags.js';
import { errorMessage } from '../shared/logging.js';
import { writeReadyLine } from '../shared/ready-line.js';

export async function resolveAddress(address: string): Promise<string> {
  if (address !== 'auto') return address;
  const { address: ip } = await dns.lookup(os.hostname(), { family: 4 });
  return ip;
}

async function main(): Promise<number> {
  const o = new Command('node-main')
    .description('One lab node: cri-shim and kubelet-sim as two supervised processes')
    .requiredOption('--dir <dir>', 'lab directory with the signing key and NODE.token')
    .requiredOption('--apiserver <url>', 'apiserver URL')
    .option('--node-name <name>', 'node name', 'node-1')
    .option('--address <ip>', "kubelet bind address and InternalIP ('auto': this host name's IPv4)", 'auto')
    .option('--kubelet-port <port>', 'kubelet port (0 picks one)', portArgument, 10250)
    .addOption(
      new Option('--isolation <mode>', 'cri-shim isolation')
        .choices(['auto', 'bwrap', 'none'])
        .default('auto'),
    )
    .option(
      '--kubelet-fault <mode>',
      "the kubelet-sim's --fault, an attack drill (kubelet-sim/fault-injection.ts); 'none' is off",
      'none',
    )
    .parse()
    .opts<{
      dir: string;
      apiserver: string;
      nodeName: string;
      address: string;
      kubeletPort: number;
      isolation: string;
      kubeletFault: string;
    }>();

  const say = (line: string) => void process.stderr.write(`[node] ${line}\n`);
  const root = packageRoot();
  const dir = path.resolve(o.dir);
  const state = path.join(dir, o.nodeName);
  const address = await resolveAddress(o.address);
  const services: Service[] = [];
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  const stopAll = async (code: number) => {
    if (stopping) return;
    stopping = true;
    for (const s of [...services].reverse()) await s.stop();
    resolveDone(code);
  };
  const start = (name: string, args: string[]): Service => {
    const s = startService({ name, script: path.join(root, 'dist', name, 'main.js'), args, cwd: root });
    services.push(s);
    void s.exited.then((e) => {
      if (stopping || s.stopping) return;
      say(`${name} exited unexpectedly (${describeExit(e)}): stopping the node`);
      void stopAll(1);
    });
    return s;
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      say(`${sig}: stopping the node`);
      void stopAll(0);
    });
  }

  try {
    // With an https apiserver the runtime's streaming server is https too (`DIR/pki/cri-shim-NODE.crt`
    // from the lab CA); the kubelet-sim trusts it through the inherited NODE_EXTRA_CA_CERTS.
    const secure = new URL(o.apiserver).protocol === 'https:';
    const streamingTls = secure ? await criShimStreamingTlsArgs(dir, o.nodeName) : [];
    const cri = start(
      'cri-shim',
      criShimArgv({
        listen: `unix://${path.join(state, 'cri-shim.sock')}`,
        root: path.join(state, 'cri-shim'),
        isolation: o.isolation,
        streamingTls,
      }),
    );
    const criReady = await Promise.race([cri.ready, done.then(() => Promise.reject(new Error('stopped')))]);
    // With an https apiserver the kubelet serves https too: a certificate from the lab CA (in the
    // shared volume, as a CSR approved by the cluster would give) for the address it registers.
    const tls = secure ? await kubeletTlsArgs(dir, o.nodeName, [address, os.hostname()]) : [];
    const kubelet = start(
      'kubelet-sim',
      kubeletArgv({
        apiserver: o.apiserver,
        tokenFile: path.join(dir, nodeTokenFile(o.nodeName)),
        nodeName: o.nodeName,
        address,
        port: o.kubeletPort,
        criEndpoint: String(criReady.endpoint),
        podLogsDir: path.join(state, 'pod-logs'),
        fault: o.kubeletFault,
        tls,
      }),
    );
    const kReady = await Promise.race([kubelet.ready, done.then(() => Promise.reject(new Error('stopped')))]);
    writeReadyLine({
      service: 'node',
      node: o.nodeName,
      kubeletUrl: String(kReady.url),
      criEndpoint: String(criReady.endpoint),
    });
  } catch (err) {
    if (!stopping) {
      say(`start-up failed: ${errorMessage(err)}`);
      await stopAll(1);
    }
  }
  return done;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`[node] ${errorMessage(err)}\n`);
    process.exit(1);
  },
);
