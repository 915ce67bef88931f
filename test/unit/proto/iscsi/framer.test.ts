// Incremental PDU framing: the same byte stream split at every offset yields the same PDUs; digests are
// checked; an oversize DataSegmentLength is refused from the header alone.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FrameError, PduFramer, frameBuffers, type RawPdu } from '../../../../src/proto/iscsi/framer.js';
import { crc32c } from '../../../../src/proto/iscsi/crc32c.js';

/** Build one PDU's wire bytes independently of frameBuffers: BHS, [HD], data, pad, [DD]. */
function wire(op: number, dataLen: number, fill: number, hd: boolean, dd: boolean): Buffer {
  const bhs = Buffer.alloc(48);
  bhs[0] = op;
  bhs[1] = 0x80;
  bhs.writeUIntBE(dataLen, 5, 3);
  bhs.writeUInt32BE(fill, 16);
  const parts = [bhs];
  if (hd) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(crc32c(bhs));
    parts.push(d);
  }
  if (dataLen > 0) {
    const padded = Buffer.alloc(dataLen + ((4 - (dataLen % 4)) % 4));
    padded.fill(fill & 0xff, 0, dataLen);
    parts.push(padded);
    if (dd) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(crc32c(padded));
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

function drain(f: PduFramer): RawPdu[] {
  const out: RawPdu[] = [];
  for (let p = f.next(); p; p = f.next()) out.push({ bhs: Buffer.from(p.bhs), ahs: Buffer.from(p.ahs), data: Buffer.from(p.data) });
  return out;
}

describe('PduFramer', () => {
  for (const [hd, dd] of [
    [false, false],
    [true, false],
    [true, true],
  ] as const) {
    it(`split-feed at every byte gives the same PDUs (header digest ${hd}, data digest ${dd})`, () => {
      const stream = Buffer.concat([wire(0x01, 0, 1, hd, dd), wire(0x05, 5, 2, hd, dd), wire(0x00, 512, 3, hd, dd), wire(0x04, 3, 4, hd, dd)]);
      const whole = new PduFramer({ headerDigest: hd, dataDigest: dd });
      whole.push(stream);
      const expected = drain(whole);
      expect(expected.map((p) => p.data.length)).toEqual([0, 5, 512, 3]);
      expect(expected[1]?.data).toEqual(Buffer.alloc(5, 2));
      for (let cut = 1; cut < stream.length; cut++) {
        const f = new PduFramer({ headerDigest: hd, dataDigest: dd });
        f.push(stream.subarray(0, cut));
        const got = drain(f);
        f.push(stream.subarray(cut));
        got.push(...drain(f));
        expect(got).toEqual(expected);
        expect(f.buffered).toBe(0);
      }
    });
  }

  it('feeds byte by byte', () => {
    const stream = Buffer.concat([wire(0x01, 7, 9, true, true), wire(0x05, 4, 8, true, true)]);
    const f = new PduFramer({ headerDigest: true, dataDigest: true });
    const got: RawPdu[] = [];
    for (const b of stream) {
      f.push(Buffer.from([b]));
      got.push(...drain(f));
    }
    expect(got.map((p) => p.bhs[0])).toEqual([0x01, 0x05]);
  });

  it('rejects DataSegmentLength above the limit before the data arrives', () => {
    const f = new PduFramer({ maxDataSegmentLength: 8192 });
    const bhs = Buffer.alloc(48);
    bhs.writeUIntBE(8193, 5, 3);
    f.push(bhs);
    expect(() => f.next()).toThrow(FrameError);
  });

  it('accepts exactly the limit', () => {
    const f = new PduFramer({ maxDataSegmentLength: 8192 });
    f.push(wire(0x05, 8192, 1, false, false));
    expect(f.next()?.data.length).toBe(8192);
  });

  it('detects header and data digest errors', () => {
    const good = wire(0x05, 4, 1, true, true);
    const badHd = Buffer.from(good);
    badHd[48] = (badHd[48] ?? 0) ^ 1;
    const f1 = new PduFramer({ headerDigest: true, dataDigest: true });
    f1.push(badHd);
    expect(() => f1.next()).toThrow(/header digest/);
    const badDd = Buffer.from(good);
    badDd[52] = (badDd[52] ?? 0) ^ 1;
    const f2 = new PduFramer({ headerDigest: true, dataDigest: true });
    f2.push(badDd);
    expect(() => f2.next()).toThrow(/data digest/);
  });

  it('frameBuffers writes what the framer reads, for any data and digest setting', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.boolean(), fc.boolean(), (arr, hd, dd) => {
        const bhs = Buffer.alloc(48);
        bhs[0] = 0x25;
        bhs.writeUIntBE(arr.length, 5, 3);
        const bytes = Buffer.concat(frameBuffers(bhs, Buffer.from(arr), { headerDigest: hd, dataDigest: dd }));
        expect(bytes.length).toBe(wire(0x25, arr.length, 0, hd, dd).length);
        const f = new PduFramer({ headerDigest: hd, dataDigest: dd });
        f.push(bytes);
        const p = f.next();
        expect(p?.data).toEqual(Buffer.from(arr));
        expect(f.buffered).toBe(0);
      }),
    );
  });
});
