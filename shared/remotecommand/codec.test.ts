import fc from 'fast-check';
import {
  decodeMessage,
  decodeResize,
  encodeClose,
  encodeMessage,
  encodeResize,
  RemoteCommandError,
} from './codec.js';
import { decodeStatus, encodeStatus, exitCodeOf, exitStatus, internalErrorStatus } from './exit-status.js';
import { negotiateProtocol, protocolByName, SERVER_PROTOCOLS, type ChannelProtocol } from './protocol.js';

const proto = (name: string): ChannelProtocol => protocolByName(name)!;
const ALL = SERVER_PROTOCOLS.map(proto);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RemoteCommandError);
    return (err as RemoteCommandError).code;
  }
  return undefined;
}

describe('channel codec', () => {
  it.each(ALL.map((p) => [p.name, p] as const))('round-trips every channel under %s', (_n, p) => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4 }), fc.uint8Array({ maxLength: 300 }), (ch, bytes) => {
        const payload = Buffer.from(bytes);
        const encoded = encodeMessage(p, ch, payload);
        expect(typeof encoded === 'string').toBe(p.base64);
        const decoded = decodeMessage(p, Buffer.from(encoded));
        expect(decoded).toEqual({ kind: 'data', channel: ch, payload });
      }),
      { numRuns: 200 },
    );
  });

  it('frames binary messages as one channel byte then the payload', () => {
    expect(encodeMessage(proto('v4.channel.k8s.io'), 1, Buffer.from('hi'))).toEqual(
      Buffer.from([1, 104, 105]),
    );
    expect(encodeMessage(proto('v4.base64.channel.k8s.io'), 2, Buffer.from('hi'))).toBe('2aGk=');
    // The ready signal is a channel with an empty payload.
    expect(encodeMessage(proto('v5.channel.k8s.io'), 1, Buffer.alloc(0))).toEqual(Buffer.from([1]));
    expect(encodeMessage(proto('base64.channel.k8s.io'), 1, Buffer.alloc(0))).toBe('1');
  });

  it('decodes the v5 CLOSE, only as exactly two bytes, and only under v5', () => {
    const v5 = proto('v5.channel.k8s.io');
    expect(encodeClose(0)).toEqual(Buffer.from([255, 0]));
    expect(decodeMessage(v5, encodeClose(0))).toEqual({ kind: 'close', channel: 0 });
    expect(codeOf(() => decodeMessage(v5, Buffer.from([255])))).toBe('BAD_CLOSE');
    expect(codeOf(() => decodeMessage(v5, Buffer.from([255, 0, 0])))).toBe('BAD_CLOSE');
    expect(codeOf(() => decodeMessage(v5, Buffer.from([255, 9])))).toBe('UNKNOWN_CHANNEL');
    // Before v5, 255 is just an unknown channel.
    expect(codeOf(() => decodeMessage(proto('v4.channel.k8s.io'), encodeClose(0)))).toBe('UNKNOWN_CHANNEL');
  });

  it('reads a text message as the bytes it carries, as wsstream does (Python sends a str stdin as text)', () => {
    // ws hands a text message over as the Buffer of its bytes; the protocol, not the frame type,
    // says how to read them.
    const v4 = proto('v4.channel.k8s.io');
    expect(decodeMessage(v4, Buffer.from('\u0000hi\n'))).toEqual({
      kind: 'data',
      channel: 0,
      payload: Buffer.from('hi\n'),
    });
    expect(decodeMessage(proto('v4.base64.channel.k8s.io'), Buffer.from('0aGk='))).toEqual({
      kind: 'data',
      channel: 0,
      payload: Buffer.from('hi'),
    });
  });

  it('refuses malformed messages with a stable code', () => {
    const v4 = proto('v4.channel.k8s.io');
    const b64 = proto('v4.base64.channel.k8s.io');
    expect(codeOf(() => decodeMessage(v4, Buffer.alloc(0)))).toBe('EMPTY_MESSAGE');
    expect(codeOf(() => decodeMessage(v4, Buffer.from([7, 1])))).toBe('UNKNOWN_CHANNEL');
    expect(codeOf(() => decodeMessage(b64, Buffer.from('')))).toBe('EMPTY_MESSAGE');
    expect(codeOf(() => decodeMessage(b64, Buffer.from('0a*b=')))).toBe('BAD_BASE64');
    expect(codeOf(() => decodeMessage(b64, Buffer.from('0abc')))).toBe('BAD_BASE64');
    expect(codeOf(() => decodeMessage(b64, Buffer.from('xaGk=')))).toBe('UNKNOWN_CHANNEL');
    expect(codeOf(() => decodeMessage(b64, Buffer.from('7aGk=')))).toBe('UNKNOWN_CHANNEL');
  });

  it('never throws anything but a RemoteCommandError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ALL), fc.uint8Array({ maxLength: 64 }), (p, bytes) => {
        try {
          const m = decodeMessage(p, Buffer.from(bytes));
          expect(m.channel).toBeLessThanOrEqual(4);
        } catch (err) {
          expect(err).toBeInstanceOf(RemoteCommandError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('reads resize messages with keys in any case, and refuses bad ones', () => {
    expect(decodeResize(Buffer.from('{"Width":80,"Height":24}'))).toEqual({ width: 80, height: 24 });
    expect(decodeResize(Buffer.from('{"height":50,"width":132}'))).toEqual({ width: 132, height: 50 });
    expect(decodeResize(encodeResize({ width: 1, height: 2 }))).toEqual({ width: 1, height: 2 });
    expect(codeOf(() => decodeResize(Buffer.from('nope')))).toBe('BAD_RESIZE');
    expect(codeOf(() => decodeResize(Buffer.from('[1,2]')))).toBe('BAD_RESIZE');
    expect(codeOf(() => decodeResize(Buffer.from('{"width":-1}')))).toBe('BAD_RESIZE');
    expect(codeOf(() => decodeResize(Buffer.from('{"width":70000}')))).toBe('BAD_RESIZE');
  });
});

describe('exit status', () => {
  it('writes the v4/v5 Status JSON as upstream does', () => {
    const v4 = proto('v4.channel.k8s.io');
    expect(JSON.parse(encodeStatus(v4, exitStatus(0))!.toString())).toEqual({
      metadata: {},
      status: 'Success',
    });
    const failed = JSON.parse(encodeStatus(v4, exitStatus(3, null, ['sh', '-c', 'exit 3']))!.toString());
    expect(failed).toEqual({
      metadata: {},
      status: 'Failure',
      message: "command terminated with non-zero exit code: command 'sh -c exit 3' exited with 3",
      reason: 'NonZeroExitCode',
      details: { causes: [{ reason: 'ExitCode', message: '3' }] },
    });
    expect(exitCodeOf(decodeStatus(v4, encodeStatus(v4, exitStatus(3))!))).toBe(3);
    expect(exitCodeOf(exitStatus(null, 'SIGKILL'))).toBe(137);
    expect(exitCodeOf(internalErrorStatus('boom'))).toBe(1);
  });

  it('sends only failures, as text, before v4', () => {
    const v3 = proto('v3.channel.k8s.io');
    expect(encodeStatus(v3, exitStatus(0))).toBeUndefined();
    expect(encodeStatus(v3, internalErrorStatus('boom'))!.toString()).toBe('boom');
    expect(decodeStatus(v3, Buffer.alloc(0)).status).toBe('Success');
    expect(decodeStatus(v3, Buffer.from('boom'))).toMatchObject({ status: 'Failure', message: 'boom' });
  });

  it('turns an unreadable v4 status into an InternalError', () => {
    const s = decodeStatus(proto('v5.channel.k8s.io'), Buffer.from('{not json'));
    expect(s).toMatchObject({ status: 'Failure', reason: 'InternalError' });
    expect(exitCodeOf(s)).toBe(1);
  });
});

describe('protocol negotiation', () => {
  it("takes the client's first supported protocol", () => {
    expect(negotiateProtocol(['x', 'v4.channel.k8s.io', 'v5.channel.k8s.io'])).toBe('v4.channel.k8s.io');
    expect(negotiateProtocol(['x'])).toBeUndefined();
    expect(protocolByName('')).toEqual({ name: '', version: 1, base64: false });
    expect(protocolByName('v9.channel.k8s.io')).toBeUndefined();
  });
});
