// The native CRC32C against the RFC 3720 appendix B.4 vectors (wire byte order, least-significant byte first)
// and against the JavaScript oracle on any bytes, at any offsets, continued from any value.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { crc32c, digestBytes } from '../../../../src/proto/iscsi/crc32c.js';
import { crc32c as oracle } from '../../../helpers/crc32c-oracle.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('crc32c', () => {
  it('matches RFC 3720 B.4: 32 bytes of zeros', () => {
    expect(digestBytes(crc32c(Buffer.alloc(32)))).toEqual(hex('aa 36 91 8a'));
  });
  it('matches RFC 3720 B.4: 32 bytes of ones', () => {
    expect(digestBytes(crc32c(Buffer.alloc(32, 0xff)))).toEqual(hex('43 ab a8 62'));
  });
  it('matches RFC 3720 B.4: 32 incrementing bytes', () => {
    const b = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(digestBytes(crc32c(b))).toEqual(hex('4e 79 dd 46'));
  });
  it('matches RFC 3720 B.4: 32 decrementing bytes', () => {
    const b = Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i));
    expect(digestBytes(crc32c(b))).toEqual(hex('5c db 3f 11'));
  });
  it('matches RFC 3720 B.4: an iSCSI READ(10) command PDU', () => {
    const pdu = hex(`01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
                     14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
                     28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`);
    expect(digestBytes(crc32c(pdu))).toEqual(hex('56 3a 96 d9'));
  });
  it('is the same computed in pieces as at once', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (arr, cut) => {
        const b = Buffer.from(arr);
        const k = b.length ? cut % b.length : 0;
        expect(crc32c(b, crc32c(b, 0, 0, k), k)).toBe(crc32c(b));
      }),
    );
  });
  it('equals the JavaScript oracle for any bytes, range and starting value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 5000 }), fc.nat(), fc.nat(), fc.nat({ max: 0xffffffff }), (arr, x, y, seed) => {
        const b = Buffer.from(arr);
        const s = b.length ? x % (b.length + 1) : 0;
        const e = s + (b.length - s ? y % (b.length - s + 1) : 0);
        expect(crc32c(b, seed, s, e)).toBe(oracle(b, seed, s, e));
        expect(crc32c(new Uint8Array(arr), seed)).toBe(oracle(b, seed));
      }),
      { numRuns: 500 },
    );
  });
  it('equals the oracle on a 1 MiB segment (the digest of a full data segment)', () => {
    const b = Buffer.allocUnsafe(1 << 20);
    for (let i = 0; i < b.length; i++) b[i] = (i * 131 + 7) & 0xff;
    expect(crc32c(b)).toBe(oracle(b));
  });
});
