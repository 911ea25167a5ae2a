/**
 * Runs a real kubectl (.tools/, scripts/install-clients.sh) against a lab kubeconfig, the way a
 * user would: a child process with KUBECONFIG, its own HOME and cache dir.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { kubectlPath, type KubectlVersion } from '../../shared/test-support/kubectl.js';
import { collect, type RunResult } from './processes.js';

export interface KubectlClient {
  /** How the table of tests names it. */
  name: string;
  version: KubectlVersion;
  /** KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false: the SPDY path of a current kubectl. */
  forceSpdy: boolean;
}

export const KUBECTL_CLIENTS: KubectlClient[] = [
  { name: 'kubectl v1.35 (WebSocket)', version: 'v1.35', forceSpdy: false },
  { name: 'kubectl v1.35 (forced SPDY)', version: 'v1.35', forceSpdy: true },
  { name: 'kubectl v1.33 (WebSocket)', version: 'v1.33', forceSpdy: false },
  { name: 'kubectl v1.20 (SPDY only)', version: 'v1.20', forceSpdy: false },
];

export class Kubectl {
  readonly bin: string;
  constructor(
    readonly client: KubectlClient,
    private readonly kubeconfig: string,
    private readonly home: string,
  ) {
    this.bin = kubectlPath(client.version);
    fs.mkdirSync(home, { recursive: true });
  }

  env(): NodeJS.ProcessEnv {
    return {
      ...process.env,
      HOME: this.home,
      KUBECONFIG: this.kubeconfig,
      ...(this.client.forceSpdy
        ? { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' }
        : {}),
    };
  }

  start(args: string[]): ChildProcess {
    return spawn(this.bin, ['--cache-dir', path.join(this.home, 'cache'), ...args], {
      env: this.env(),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Runs to completion, `input` on stdin (closed at once when absent). */
  run(args: string[], input?: Buffer | string): Promise<RunResult> {
    const child = this.start(args);
    const done = collect(child);
    child.stdin!.on('error', () => {});
    child.stdin!.end(input);
    return done;
  }
}
