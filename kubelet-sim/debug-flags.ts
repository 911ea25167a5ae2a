/**
 * The kubelet-sim's `/debug/flags/fault`: `GET` answers the fault drill now on (`none` when off),
 * `PUT` with a `--fault` value as the plain body switches it from the next streaming upgrade on
 * (streams already open keep going). The lab's dashboard sets it through the apiserver's node
 * proxy (`PUT /api/v1/nodes/{node}/proxy/debug/flags/fault`), so only the admin can.
 *
 * Mirrors kubelet's `/debug/flags/v` (k8s.io/component-base `logs` and apiserver
 * `pkg/server/routes/flags.go` StringFlagPutHandler: the body is the new value, the answer is the
 * value set); the kubelet-sim serves it behind the same authentication and `nodes/proxy` check
 * as `/metrics`. Upstream has no fault flag: this one is the lab's.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { failureStatus, type Status } from '../shared/status.js';
import {
  FaultFlagError,
  formatKubeletFault,
  parseKubeletFault,
  streamFaultHandler,
  type KubeletFault,
  type StreamFaultHandler,
} from './fault-injection.js';
import type { Logger } from '../shared/logging.js';

export const FAULT_FLAG_PATH = '/debug/flags/fault';
const MAX_BODY = 4096;

/** The fault drill on now, and the handler it installs. */
export class FaultSwitch {
  private current: KubeletFault;
  handler: StreamFaultHandler | undefined;

  constructor(
    fault: KubeletFault | undefined,
    private readonly log: Logger,
  ) {
    this.current = fault ?? { mode: 'none' };
    this.handler = streamFaultHandler(fault, log);
  }

  get value(): string {
    return formatKubeletFault(this.current);
  }

  set(fault: KubeletFault): void {
    this.current = fault;
    this.handler = streamFaultHandler(fault, this.log);
    if (fault.mode === 'none') this.log('fault injection off (/debug/flags/fault)');
  }

  /** Serves GET and PUT; a refusal comes back as a Status for the server to write. */
  async serve(req: IncomingMessage, res: ServerResponse): Promise<Status | undefined> {
    if (req.method === 'PUT') {
      const body = await readSmallBody(req);
      if (body === undefined) return failureStatus(413, `the value is longer than ${MAX_BODY} bytes`);
      try {
        this.set(parseKubeletFault(body.trim()));
      } catch (err) {
        if (err instanceof FaultFlagError) return failureStatus(400, err.message);
        throw err;
      }
    } else if (req.method !== 'GET') {
      return failureStatus(405, `method ${req.method} is not allowed on ${FAULT_FLAG_PATH}`);
    }
    const text = `${this.value}\n`;
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'Content-Length': Buffer.byteLength(text),
    });
    res.end(text);
    return undefined;
  }
}

async function readSmallBody(req: IncomingMessage): Promise<string | undefined> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
