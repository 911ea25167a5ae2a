/**
 * The lab's console: every line on stderr, the `[service]` prefix in a colour of its own when
 * stderr is a terminal (and NO_COLOR is unset), so the three hops of one exec are told apart at a
 * glance.
 */
import type { Logger } from '../shared/logging.js';

const PALETTE = [36, 33, 35, 32, 34, 31, 96, 93, 95, 92];
const KNOWN: Record<string, number> = { lab: 1, apiserver: 36, 'kubelet-sim': 33, 'cri-shim': 35, etcd: 32 };

function colourOf(service: string): number {
  const base = service.replace(/-\d+$/, '');
  if (KNOWN[base] !== undefined) return KNOWN[base];
  let h = 0;
  for (const c of service) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length]!;
}

export function consoleLog(out: NodeJS.WriteStream): Logger {
  const colour = out.isTTY === true && !process.env.NO_COLOR;
  return (line) => {
    const m = colour ? /^\[([^\]]+)\]/.exec(line) : null;
    out.write(m ? `\x1b[${colourOf(m[1]!)}m${m[0]}\x1b[0m${line.slice(m[0].length)}\n` : `${line}\n`);
  };
}
