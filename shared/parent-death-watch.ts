/**
 * The parent-death watch: a service started by the lab's supervisor (lab/supervisor.ts) has an
 * IPC pipe from it, and stops when that pipe closes. The kernel closes it when the supervisor
 * dies, however it dies (SIGKILL included), so no service outlives the lab (issue #11: a SIGKILLed
 * lab left the apiserver serving the old admin token).
 *
 * Plays the part of systemd's `BindsTo=` / the kernel's PR_SET_PDEATHSIG (which Node.js cannot
 * set). A service started another way (a terminal, Docker, compose) has no IPC pipe and no watch.
 */

/** Calls `stop` once when the supervisor that started this process is gone. */
export function stopWithParent(stop: (why: string) => void): void {
  const channel = process.channel;
  if (!channel) return;
  process.once('disconnect', () => stop('the supervisor is gone (its IPC pipe closed)'));
  // The pipe alone must not keep the process alive; the service's own servers do.
  channel.unref();
}
