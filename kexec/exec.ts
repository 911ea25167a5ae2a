/**
 * `kexec exec`: kubectl `pkg/cmd/exec/exec.go` Run.
 *
 * 1. GET the pod (refuses completed pods, defaults the container like kubectl's
 *    podcmd.FindOrDefaultContainerByName);
 * 2. open `/api/v1/namespaces/NS/pods/POD/exec?command=…&container=…&stdin=…&stdout=true&stderr=…&tty=…`
 *    over WebSocket, SPDY, or WebSocket falling back to SPDY (`--protocol`, see
 *    remotecommand-executor.ts), with stdin only with -i and a raw terminal only with -it on a TTY
 *    (stream-session.ts);
 * 3. exit with the remote command's exit code.
 */
import { getRunningPod } from './pod-running.js';
import { loadClientConfig, type ClientConfig } from './client.js';
import type { ExecOptions } from './cmd/exec.js';
import { defaultContainer, streamUrl } from './pod.js';
import { resolveStreamProtocol } from './remotecommand-executor.js';
import { runStreamSession, setupTty, type KexecIO } from './stream-session.js';

/** The exec subresource URL, with the query kubectl sends (false flags omitted, as omitempty does). */
export function execUrl(
  cfg: Pick<ClientConfig, 'server'>,
  namespace: string,
  pod: string,
  p: { container: string; command: string[]; stdin: boolean; tty: boolean },
): URL {
  return streamUrl(cfg, namespace, pod, 'exec', p);
}

/** Runs exec; resolves to the exit code, throws what kexec should report (see errors.ts). */
export async function runExec(o: ExecOptions, io: KexecIO): Promise<number> {
  const protocol = resolveStreamProtocol(o.protocol, io.env);
  const cfg = await loadClientConfig(o);
  const ns = cfg.namespace;
  const pod = await getRunningPod(cfg, ns, o.pod, o.podRunningTimeoutMs);
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    throw new Error(`cannot exec into a container in a completed pod; current phase is ${phase}`);
  }
  let container = o.container;
  if (!container) {
    const d = defaultContainer(pod);
    container = d.name;
    if (d.notice && !o.quiet) io.stderr.write(`${d.notice}\n`);
  }
  const tty = setupTty(o, io);
  const url = execUrl(cfg, ns, o.pod, { container, command: o.command, stdin: o.stdin, tty });
  return runStreamSession(cfg, url, { stdin: o.stdin, tty, protocol }, io);
}
