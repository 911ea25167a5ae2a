/**
 * Waits until a local writer has taken in everything already written to it: a session's result
 * (the exit status) is handed back only once its output is through, as client-go's
 * StreamWithContext returns only after its io.Copy of stdout and stderr has finished. A slow
 * writer may still hold queued chunks when the remote stream ends; an empty write's callback
 * runs after every chunk queued before it.
 */
import type { Writable } from 'node:stream';

export function flushed(target: NodeJS.WritableStream | Writable | null | undefined): Promise<void> {
  const w = target as Partial<Writable> | null | undefined;
  if (!w || w.writableEnded || w.destroyed || typeof w.write !== 'function') return Promise.resolve();
  return new Promise((resolve) => {
    w.write!(Buffer.alloc(0), () => resolve());
  });
}
