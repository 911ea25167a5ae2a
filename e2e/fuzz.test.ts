/**
 * Bounded property runs of the decoders not already fuzzed by their unit tests (the channel codec's
 * arbitrary-input property is in shared/remotecommand/codec.test.ts and the frame parser's in
 * shared/spdy/frames.test.ts): the SPDY resize stream, the port-forward framing and plain SPDY
 * header blocks. The properties live in bench/fuzz.ts, which runs them all for long.
 */
import fc from 'fast-check';
import { properties } from '../bench/fuzz.js';

const RUNS = 300;

describe('decoders under arbitrary input (fast-check)', () => {
  it.each([
    'resizeStream',
    'resizeStreamRoundTrip',
    'portForwardFrame',
    'portForwardRoundTrip',
    'headerBlock',
  ] as const)('%s', (name) => {
    fc.assert(properties[name] as fc.IProperty<unknown[]>, { numRuns: RUNS });
  });

  it('frameParser (async, zlib blocks included)', async () => {
    await fc.assert(properties.frameParser, { numRuns: 100 });
  });
});
