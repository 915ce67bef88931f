// iSCSI PDU framing specifics: the limit is inclusive, and frameBuffers writes what the framer reads (the
// split-feed, digest and limit properties of the framing itself are in test/unit/proto/frame.test.ts).
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { PduFramer, frameBuffers } from '../../../../src/proto/iscsi/framer.js';
import { crc32c } from '../../../helpers/crc32c-oracle.js';

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

describe('PduFramer', () => {
  it('accepts exactly the limit', () => {
    const f = new PduFramer({ maxDataSegmentLength: 8192 });
    f.push(wire(0x05, 8192, 1, false, false));
    expect(f.next()?.data.length).toBe(8192);
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
