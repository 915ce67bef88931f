// Decoders under random bytes: they either yield frames or throw NbdProtocolError (never another error),
// never hand out more than the configured limits, and never buffer more than they were given.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { NbdClientDecoder, NbdServerDecoder } from '../../../../src/proto/nbd/decoder.js';
import { NbdProtocolError } from '../../../../src/proto/nbd/errors.js';
import { decodeStructuredChunk, decodeInfoRequest, decodeMetaContextRequest, decodeInfoReply } from '../../../../src/proto/nbd/messages.js';

const LIMITS = { maxOptionLength: 1024, maxPayload: 4096 };

function onlyProtocolErrors(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(NbdProtocolError);
  }
}

describe('decoders under random input', () => {
  it('server decoder: frames within limits or a protocol error', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.integer({ min: 0, max: 3 }), (chunks, after) => {
        const d = new NbdServerDecoder(LIMITS);
        let given = 0;
        let frames = 0;
        onlyProtocolErrors(() => {
          for (const c of chunks) {
            d.push(Buffer.from(c));
            given += c.length;
            for (let f = d.next(); f !== undefined; f = d.next()) {
              if (++frames === after) d.startTransmission();
              if (f.kind === 'option') expect(f.data.length).toBeLessThanOrEqual(LIMITS.maxOptionLength);
              if (f.kind === 'request') {
                expect(f.payload?.length ?? 0).toBeLessThanOrEqual(LIMITS.maxPayload);
              }
            }
            expect(d.buffered).toBeLessThanOrEqual(given);
          }
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('client decoder: frames within limits or a protocol error', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.integer({ min: 0, max: 3 }), (chunks, after) => {
        const d = new NbdClientDecoder({ maxOptionReplyLength: 512, maxReplyPayload: 1024 }, () => 64);
        let frames = 0;
        onlyProtocolErrors(() => {
          for (const c of chunks) {
            d.push(Buffer.from(c));
            for (let f = d.next(); f !== undefined; f = d.next()) {
              if (++frames === after) d.startTransmission();
              if (f.kind === 'structuredChunk') expect(f.payload.length).toBeLessThanOrEqual(1024);
            }
          }
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('payload decoders reject garbage with protocol errors only', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.integer({ min: 0, max: 0xffff }), (bytes, type) => {
        const b = Buffer.from(bytes);
        onlyProtocolErrors(() => decodeStructuredChunk(type, b));
        onlyProtocolErrors(() => decodeInfoRequest(b));
        onlyProtocolErrors(() => decodeMetaContextRequest(b));
        onlyProtocolErrors(() => decodeInfoReply(b));
      }),
      { numRuns: 5000 },
    );
  });
});
