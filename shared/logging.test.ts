import { formatText, newLogger, parseLogRecord, redactCredentials, structured } from './logging.js';

describe('redactCredentials', () => {
  it.each([
    [
      'GET /api/v1/namespaces/default/pods?access_token=SECRET user=- code=401 1ms',
      'GET /api/v1/namespaces/default/pods?access_token=<masked> user=- code=401 1ms',
    ],
    [
      'GET /exec?command=ls&ACCESS_TOKEN=SECRET&stdout=1',
      'GET /exec?command=ls&ACCESS_TOKEN=<masked>&stdout=1',
    ],
    ['headers {"authorization":"Bearer SECRET","x":1}', 'headers {"authorization":"Bearer <masked>","x":1}'],
    ['Authorization: Basic SECRET', 'Authorization: Basic <masked>'],
    [
      'Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.U0VDUkVU, v5.channel.k8s.io',
      'Sec-WebSocket-Protocol: base64url.bearer.authorization.k8s.io.<masked>, v5.channel.k8s.io',
    ],
    ['token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.SECRET-_x end', 'token <masked-jwt> end'],
  ])('masks %s', (line, masked) => {
    expect(redactCredentials(line)).toBe(masked);
  });

  it('leaves lines without credentials alone', () => {
    const line = 'POST /api/v1/namespaces/default/pods/demo/exec?command=ls user=admin code=101 3ms';
    expect(redactCredentials(line)).toBe(line);
  });
});

function capture(format: 'text' | 'json', verbosity = 0) {
  const lines: string[] = [];
  const log = newLogger({ service: 'svc', verbosity, format, destination: { write: (s) => lines.push(s) } });
  return { log, lines };
}

describe('newLogger (pino)', () => {
  it('json: one record a line with ts, level, v, service, msg and the fields', () => {
    const { log, lines } = capture('json');
    log.with({ auditID: 'abc' }).warn('hello', { code: 101 });
    const r = parseLogRecord(lines[0]!.trimEnd())!;
    expect(r).toMatchObject({ level: 'warn', v: 0, service: 'svc', msg: 'hello', auditID: 'abc', code: 101 });
    expect(Math.abs(r.ts - Date.now() / 1000)).toBeLessThan(5);
  });

  it('text: klog header, message, key="value" fields; a plain call is an info line', () => {
    const { log, lines } = capture('text');
    log('plain line');
    log.error('boom', { err: new Error('bad'), n: 3 });
    expect(lines[0]).toMatch(/^I\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ svc\] plain line\n$/);
    expect(lines[1]).toMatch(/^E\d{4} .* svc\] boom err="bad" n=3\n$/);
  });

  it('-v: V(n) lines show only when n <= the verbosity', () => {
    const quiet = capture('json', 0);
    quiet.log.v(2).info('detail');
    expect(quiet.lines).toEqual([]);
    expect(quiet.log.v(2).enabled).toBe(false);
    const loud = capture('json', 4);
    loud.log.v(2).info('detail');
    expect(parseLogRecord(loud.lines[0]!.trimEnd())).toMatchObject({ v: 2, msg: 'detail' });
  });
});

describe('structured', () => {
  it('turns a plain line function into a StructuredLogger writing key=value', () => {
    const lines: string[] = [];
    structured((l) => lines.push(l))
      .with({ auditID: 'x' })
      .info('CRI Exec', { cmd: ['ls'] });
    expect(lines).toEqual(['CRI Exec auditID="x" cmd=["ls"]']);
  });

  it('formatText renders a parsed JSON record back as the text format', () => {
    const r = {
      ts: 1_700_000_000.123456,
      level: 'info',
      v: 0,
      service: 'apiserver',
      msg: 'HTTP',
      resp: 200,
      pid: 7,
    };
    expect(formatText(r)).toMatch(/^I\d{4} \d\d:\d\d:\d\d\.123456 {7}7 apiserver\] HTTP resp=200\n$/);
  });
});

describe('every logger masks credentials', () => {
  it('in the message and in string fields, text and json alike', () => {
    const lines: string[] = [];
    const log = newLogger({ service: 's', format: 'json', destination: { write: (x) => lines.push(x) } });
    log.info('GET /exec?access_token=secret1', { URI: '/x?token=secret2' });
    expect(lines.join('')).not.toMatch(/secret/);
    const plain: string[] = [];
    structured((l) => plain.push(l)).info('Authorization: Bearer abcdef', { q: '/x?access_token=zzz' });
    expect(plain.join('')).not.toMatch(/abcdef|zzz/);
  });
});
