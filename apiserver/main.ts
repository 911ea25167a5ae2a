/**
 * `apiserver`: the lab's kube-apiserver. Flags per docs/wiring.md; prints
 * `READY {"service":"apiserver","url":…}` on stdout once listening, logs to stderr, and shuts
 * down cleanly on SIGTERM / SIGINT.
 *
 * Mirrors `cmd/kube-apiserver` (flag names `--bind-address`, `--secure-port` → `--port` here,
 * `--max-connection-bytes-per-sec`); the lab serves plain HTTP on loopback by default.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readSigningKey } from '../shared/auth/tokens.js';
import { startApiServer } from './server.js';

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a non-negative integer');
  return n;
}

function port(value: string): number {
  const n = nonNegativeInt(value);
  if (n > 65535) throw new InvalidArgumentError('must be a port number (0 picks a free one)');
  return n;
}

function command(): Command {
  return new Command('apiserver')
    .description(
      'kexec-lab apiserver: pods and nodes API, discovery, JWT authn, authz, exec/attach/port-forward/log proxying to kubelets',
    )
    .option('--bind-address <ip>', 'address to listen on', '127.0.0.1')
    .option('--port <port>', 'port to listen on (0 picks a free one)', port, 6443)
    .requiredOption('--token-signing-key-file <file>', 'HS256 key (>= 32 bytes) that signs every lab token')
    .option(
      '--max-connection-bytes-per-sec <n>',
      'rate limit for each direction of proxied exec/attach/port-forward streams (0 = unlimited)',
      nonNegativeInt,
      0,
    );
}

async function main(argv: string[]): Promise<void> {
  const cmd = command().parse(argv);
  const opts = cmd.opts<{
    bindAddress: string;
    port: number;
    tokenSigningKeyFile: string;
    maxConnectionBytesPerSec: number;
  }>();
  const server = await startApiServer({
    bindAddress: opts.bindAddress,
    port: opts.port,
    signingKey: readSigningKey(opts.tokenSigningKeyFile),
    maxConnectionBytesPerSec: opts.maxConnectionBytesPerSec,
  });
  process.stderr.write(`apiserver: serving on ${server.url}\n`);
  process.stdout.write(`READY ${JSON.stringify({ service: 'apiserver', url: server.url })}\n`);

  const stop = (signal: string): void => {
    process.stderr.write(`apiserver: ${signal}, shutting down\n`);
    server.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main(process.argv).catch((err: unknown) => {
  process.stderr.write(`apiserver: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
