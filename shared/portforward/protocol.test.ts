/**
 * Port-forward protocol pieces: port lists, the port prefix, message framing and its refusals.
 */
import {
  dataChannel,
  decodeFrame,
  decodePortPrefix,
  encodeFrame,
  encodePortPrefix,
  errorChannel,
  MAX_PORTS,
  parsePortsQuery,
} from './protocol.js';

test('ports from repeated and comma-separated query values, in order', () => {
  expect(parsePortsQuery(new URLSearchParams('port=80&port=443,8080'))).toEqual([80, 443, 8080]);
  expect(parsePortsQuery(new URLSearchParams('ports=5000'), 'ports')).toEqual([5000]);
  expect(parsePortsQuery(new URLSearchParams('other=1'))).toEqual([]);
  for (const bad of ['port=', 'port=0', 'port=65536', 'port=80x', 'port=-1', 'port=80,,81']) {
    expect(() => parsePortsQuery(new URLSearchParams(bad))).toThrow(
      expect.objectContaining({ code: 'BAD_PORT' }),
    );
  }
  const many = Array.from({ length: MAX_PORTS + 1 }, (_, i) => `port=${i + 1}`).join('&');
  expect(() => parsePortsQuery(new URLSearchParams(many))).toThrow(
    expect.objectContaining({ code: 'TOO_MANY_PORTS' }),
  );
});

test('channels 2i / 2i+1 and the little-endian port prefix', () => {
  expect([dataChannel(0), errorChannel(0), dataChannel(3), errorChannel(3)]).toEqual([0, 1, 6, 7]);
  expect(encodePortPrefix(8080)).toEqual(Buffer.from([0x90, 0x1f]));
  expect(decodePortPrefix(Buffer.from([0x90, 0x1f]))).toBe(8080);
  expect(() => decodePortPrefix(Buffer.from([1]))).toThrow(expect.objectContaining({ code: 'BAD_PREFIX' }));
});

test('binary and base64 frames round-trip; malformed ones are refused with a code', () => {
  const payload = Buffer.from([0, 1, 2, 255]);
  const bin = encodeFrame(false, 3, payload) as Buffer;
  expect(bin).toEqual(Buffer.from([3, 0, 1, 2, 255]));
  expect(decodeFrame(false, bin, 4)).toEqual({ channel: 3, payload });
  const text = encodeFrame(true, 2, payload) as string;
  expect(text).toBe(`2${payload.toString('base64')}`);
  expect(decodeFrame(true, Buffer.from(text), 4)).toEqual({ channel: 2, payload });

  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
    } catch (e) {
      return (e as { code?: string }).code;
    }
    return undefined;
  };
  expect(code(() => decodeFrame(false, Buffer.from([4, 1]), 4))).toBe('UNKNOWN_CHANNEL');
  expect(code(() => decodeFrame(false, Buffer.alloc(0), 4))).toBe('EMPTY_MESSAGE');
  expect(code(() => decodeFrame(true, Buffer.from('0%%%'), 4))).toBe('BAD_BASE64');
  expect(code(() => decodeFrame(true, Buffer.from('/AAAA'), 4))).toBe('UNKNOWN_CHANNEL');
});
