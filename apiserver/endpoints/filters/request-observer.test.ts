/**
 * The request observer's audit annotations (upstream audit.AddAuditAnnotation): what a handler
 * adds shows on the Events written after it, the first value of a key stays, and a request nobody
 * annotated has no `annotations` at all. A refusal's Status reaches ResponseComplete
 * (LogResponseObject).
 */
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { once } from 'node:events';
import type { AuditEvent } from '../../audit/event.js';
import { ApiServerMetrics } from '../metrics/metrics.js';
import { newRequestInfo } from '../request-info.js';
import { newRegistry } from '../../../shared/metrics/registry.js';
import { structured } from '../../../shared/logging.js';
import { observedRequest, RequestObserver } from './request-observer.js';

function setup(upgrade: string) {
  const events: AuditEvent[] = [];
  const observer = new RequestObserver({
    metrics: new ApiServerMetrics(newRegistry()),
    log: structured(() => {}),
    audit: { processEvent: (e) => events.push(e), close: () => Promise.resolve() },
  });
  const req = new IncomingMessage(new Socket());
  req.method = 'GET';
  req.url = '/api/v1/namespaces/default/pods/demo/exec?command=ls&stdout=true';
  req.headers = { upgrade, connection: 'Upgrade' };
  return { events, observer, req, info: newRequestInfo(req) };
}

const USER = { name: 'bob', groups: ['devs'] };

test('annotations reach the Events written after them; the first value of a key stays', async () => {
  const { events, observer, req, info } = setup('websocket');
  const socket = new PassThrough();
  const seen = observer.begin(req);
  seen.watchSocket(socket);
  seen.annotate('kexec-lab/stream-protocol', 'websocket');
  seen.identify(info, USER);
  seen.annotate('kexec-lab/stream-path', 'translated');
  seen.annotate('kexec-lab/stream-path', 'spliced');
  socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n');
  socket.destroy();
  await once(socket, 'close');
  expect(events.map((e) => [e.stage, e.responseStatus?.code, e.annotations])).toEqual([
    ['RequestReceived', undefined, { 'kexec-lab/stream-protocol': 'websocket' }],
    [
      'ResponseStarted',
      101,
      { 'kexec-lab/stream-protocol': 'websocket', 'kexec-lab/stream-path': 'translated' },
    ],
    [
      'ResponseComplete',
      101,
      { 'kexec-lab/stream-protocol': 'websocket', 'kexec-lab/stream-path': 'translated' },
    ],
  ]);
  // Each Event has its own copy: a later annotation does not change one already written.
  expect(events[0]!.annotations).not.toBe(events[1]!.annotations);
});

test('a request nobody annotated has no annotations', async () => {
  const { events, observer, req, info } = setup('SPDY/3.1');
  const socket = new PassThrough();
  const seen = observer.begin(req);
  seen.watchSocket(socket);
  seen.identify(info, USER);
  socket.write('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n');
  socket.destroy();
  await once(socket, 'close');
  expect(events.map((e) => [e.stage, e.responseStatus?.code, 'annotations' in e])).toEqual([
    ['RequestReceived', undefined, false],
    ['ResponseComplete', 403, false],
  ]);
});

test("a refusal's Status goes into ResponseComplete, and its observer is found from the request", async () => {
  const { events, observer, req, info } = setup('SPDY/3.1');
  const socket = new PassThrough();
  const seen = observer.begin(req);
  expect(observedRequest(req)).toBe(seen);
  seen.watchSocket(socket);
  seen.identify(info, USER);
  observedRequest(req)!.logStatus({
    metadata: {},
    status: 'Failure',
    message: 'invalid upgrade response: status code 302',
    code: 502,
  });
  socket.write('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n');
  socket.destroy();
  await once(socket, 'close');
  expect(events.at(-1)!.responseStatus).toEqual({
    metadata: {},
    code: 502,
    status: 'Failure',
    message: 'invalid upgrade response: status code 302',
  });
});
