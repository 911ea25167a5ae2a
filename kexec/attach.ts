/**
 * `kexec attach POD`: kubectl `pkg/cmd/attach/attach.go` Run.
 *
 * GET the pod (a completed pod is refused), pick the container (podcmd defaulting), reconcile -t
 * with the container's own `tty` (asked for but not allocated: a notice and no TTY; allocated but
 * not asked for: forced on, or the runtime would misread the stream), print kubectl's notices,
 * stream `/api/v1/namespaces/NS/pods/POD/attach?container=…&stdin=…&stdout=true&stderr=…&tty=…`
 * over the same executor as exec, and after an interactive session the resume hint.
 *
 * Differences: no `--pod-running-timeout` wait (the pod is read once) and no detach keys
 * (ctrl-p,ctrl-q): closing stdin or Ctrl-C ends the session.
 */
import { getRunningPod } from './pod-running.js';
import { loadClientConfig } from './client.js';
import type { AttachOptions } from './cmd/attach.js';
import { defaultContainer, findContainer, streamUrl } from './pod.js';
import { resolveStreamProtocol } from './remotecommand-executor.js';
import { runStreamSession, setupTty, type KexecIO } from './stream-session.js';

export const RECORDING_NOTICE =
  'All commands and output from this session will be recorded in container logs, including credentials and sensitive information passed through the command prompt.';
export const PROMPT_HINT = "If you don't see a command prompt, try pressing enter.";

export async function runAttach(
  o: AttachOptions,
  io: KexecIO,
  commandName = 'kexec attach',
): Promise<number> {
  const protocol = resolveStreamProtocol(o.protocol, io.env);
  const cfg = await loadClientConfig(o);
  const ns = cfg.namespace;
  const pod = await getRunningPod(cfg, ns, o.pod, o.podRunningTimeoutMs);
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') {
    throw new Error(`cannot attach a container in a completed pod; current phase is ${phase}`);
  }
  let name = o.container;
  if (!name) {
    const d = defaultContainer(pod);
    name = d.name;
    if (d.notice && !o.quiet) io.stderr.write(`${d.notice}\n`);
  }
  const container = findContainer(pod, name);
  if (!container) {
    throw new Error(
      `cannot attach to the container: container ${name} not found in pod ${pod.metadata?.name ?? o.pod}`,
    );
  }

  let wantTty = o.tty;
  if (wantTty && !container.tty) {
    wantTty = false;
    if (!o.quiet) io.stderr.write(`error: Unable to use a TTY - container ${name} did not allocate one\n`);
  } else if (!wantTty && container.tty) {
    wantTty = true;
  }
  const tty = setupTty({ stdin: o.stdin, tty: wantTty, quiet: o.quiet }, io);

  if (!o.quiet) io.stderr.write(`${RECORDING_NOTICE}\n${PROMPT_HINT}\n`);
  const url = streamUrl(cfg, ns, o.pod, 'attach', { container: name, stdin: o.stdin, tty });
  const code = await runStreamSession(cfg, url, { stdin: o.stdin, tty, protocol }, io);
  if (!o.quiet && o.stdin && tty) {
    io.stdout.write(
      `Session ended, resume using '${commandName} ${o.pod} -c ${name} -n ${ns} -i -t' command\n`,
    );
  }
  return code;
}
