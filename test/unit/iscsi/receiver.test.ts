// PduReceiver: the same byte stream read in any pieces (copied from a reused buffer, or read in place into the
// buffer nextBuffer() hands out) yields the framer's PDUs; data segments land in the placed buffer; digests are
// checked; an oversize DataSegmentLength is refused from the BHS alone.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { FrameError, PduFramer, frameBuffers, type RawPdu } from '../../../src/proto/iscsi/framer.js';
import { PduReceiver, ISCSI_DIRECT_DATA_MIN_BYTES } from '../../../src/iscsi/receiver.js';

/** One PDU's wire bytes: opcode, tag, `ahsWords` of AHS, `dataLen` bytes of data filled with the tag. */
function wire(op: number, tag: number, ahsWords: number, dataLen: number, hd: boolean, dd: boolean): Buffer {
  const head = Buffer.alloc(48 + ahsWords * 4, tag & 0x7f);
  head[0] = op;
  head[1] = 0x80;
  head[4] = ahsWords;
  head.writeUIntBE(dataLen, 5, 3);
  head.writeUInt32BE(tag, 16);
  const data = Buffer.alloc(dataLen);
  for (let i = 0; i < dataLen; i++) data[i] = (tag + i) & 0xff;
  return Buffer.concat(frameBuffers(head, data, { headerDigest: hd, dataDigest: dd }));
}

function copyOf(p: RawPdu): RawPdu {
  return { bhs: Buffer.from(p.bhs), ahs: Buffer.from(p.ahs), data: Buffer.from(p.data) };
}

/** Feed `stream` as the socket would: each read fills at most `sizes[i]` bytes of the buffer nextBuffer() gives. */
function feed(r: PduReceiver, stream: Buffer, sizes: number[]): void {
  let at = 0;
  for (let i = 0; at < stream.length; i++) {
    const buf = r.nextBuffer();
    const n = Math.min(buf.length, stream.length - at, sizes[i % sizes.length] ?? stream.length);
    stream.copy(buf, 0, at, at + n);
    r.consume(buf, n);
    at += n;
  }
}

const opts = (hd: boolean, dd: boolean) => ({ headerDigest: hd, dataDigest: dd, maxDataSegmentLength: 1 << 20 });

describe('PduReceiver', () => {
  for (const [hd, dd] of [
    [false, false],
    [true, false],
    [false, true],
    [true, true],
  ] as const) {
    it(`gives the framer's PDUs for a stream read in any pieces (header digest ${hd}, data digest ${dd})`, () => {
      const stream = Buffer.concat([
        wire(0x01, 1, 0, 0, hd, dd),
        wire(0x05, 2, 0, 5, hd, dd),
        wire(0x01, 3, 3, 70_001, hd, dd),
        wire(0x04, 4, 1, 3, hd, dd),
        wire(0x05, 5, 0, 256 * 1024, hd, dd),
      ]);
      const framer = new PduFramer(opts(hd, dd));
      framer.push(stream);
      const expected: RawPdu[] = [];
      for (let p = framer.next(); p; p = framer.next()) expected.push(copyOf(p));
      expect(expected.map((p) => p.data.length)).toEqual([0, 5, 70_001, 3, 256 * 1024]);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 1, max: 100_000 }), { minLength: 1, maxLength: 8 }), (sizes) => {
          const got: RawPdu[] = [];
          const r = new PduReceiver(() => undefined, (p) => got.push(copyOf(p)), opts(hd, dd));
          feed(r, stream, sizes);
          expect(got).toEqual(expected);
        }),
        { numRuns: 40 },
      );
    });
  }

  it('reads a placed data segment into its buffer, large parts in place', () => {
    const stream = Buffer.concat([wire(0x05, 9, 0, 200_000, true, true), wire(0x05, 10, 0, 10, true, true)]);
    const target = Buffer.alloc(300_000);
    const got: RawPdu[] = [];
    let inPlace = 0;
    const r = new PduReceiver(
      (bhs, n) => (bhs.readUInt32BE(16) === 9 ? target.subarray(1000, 1000 + n) : undefined),
      (p) => got.push(p),
      opts(true, true),
    );
    let at = 0;
    while (at < stream.length) {
      const buf = r.nextBuffer();
      if (buf.buffer === target.buffer) inPlace++;
      const n = Math.min(buf.length, stream.length - at, 65_536);
      stream.copy(buf, 0, at, at + n);
      r.consume(buf, n);
      at += n;
    }
    expect(got.length).toBe(2);
    const first = got[0] as RawPdu;
    expect(first.data.buffer).toBe(target.buffer);
    expect(first.data.byteOffset).toBe(target.byteOffset + 1000);
    expect(target.subarray(1000, 201_000)).toEqual(wire(0x05, 9, 0, 200_000, false, false).subarray(48));
    expect(inPlace).toBeGreaterThan(0);
    expect(200_000).toBeGreaterThan(ISCSI_DIRECT_DATA_MIN_BYTES);
    expect(got[1]?.data.length).toBe(10);
  });

  it('refuses an oversize DataSegmentLength from the BHS alone', () => {
    const r = new PduReceiver(() => undefined, () => undefined, { maxDataSegmentLength: 8192 });
    const bhs = wire(0x05, 1, 0, 8193, false, false).subarray(0, 48);
    expect(() => r.consume(bhs, 48)).toThrow(FrameError);
  });

  it('refuses a bad header digest and a bad data digest (with the BHS of the PDU)', () => {
    const bad = wire(0x05, 1, 0, 8, true, true);
    bad[52 - 1] = (bad[52 - 1] ?? 0) ^ 1;
    const r1 = new PduReceiver(() => undefined, () => undefined, opts(true, true));
    expect(() => r1.consume(bad, bad.length)).toThrow(expect.objectContaining({ code: 'EHDRDIGEST' }));
    const bad2 = wire(0x05, 2, 0, 8, true, true);
    bad2[bad2.length - 1] = (bad2[bad2.length - 1] ?? 0) ^ 1;
    const r2 = new PduReceiver(() => undefined, () => undefined, opts(true, true));
    let err: unknown;
    try {
      r2.consume(bad2, bad2.length);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameError);
    expect((err as FrameError).code).toBe('EDATADIGEST');
    expect((err as FrameError).bhs).toEqual(bad2.subarray(0, 48));
  });
});
