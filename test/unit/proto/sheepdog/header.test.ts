// Golden bytes captured from the real tgtd 1.0.85 (shared/notes/tgtd-transcript.md §2–3), round trips of the
// 48-byte Sheepdog headers and the request limits (split-feed framing is tested in test/unit/proto/frame.test.ts).
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as C from '../../../../src/proto/sheepdog/constants.js';
import {
  decodeRequestHeader,
  decodeResponseHeader,
  encodeRequestHeader,
  encodeResponseHeader,
  makeResponse,
  type ObjReqArgs,
  type SdRequest,
  type VdiReqArgs,
} from '../../../../src/proto/sheepdog/header.js';
import { SdProtocolError, SdRequestDecoder } from '../../../../src/proto/sheepdog/frame.js';

const hex = (s: string): Buffer => Buffer.from(s, 'hex');

// Request headers exactly as tgtd sent them (transcript §2).
const R = {
  R1: '011201000000000000000000000200000000000000000000000000000000000000000000010000000000000000000000',
  R2: '01022000000000000000000038124000000000005b9ce480000000000000000000000000000000000000000000000000',
  R3: '01022000000000000000000038124000000000005b9ce480000000000000000001000000000000000000000000000000',
  R4: '01022000000000000000000001000000000000005b9ce480000000000000000001000000000000000000000000000000',
  R5: '01022000000000000000000038120000000000005c9ce480000000000000000001000000000000000000000000000000',
  R7: '01012500000000000000000000200000000000005b9ce400000000000000000001000000000000000000000000000000',
  R8: '01012500000000000000000000100000010000005b9ce400000000000000000001000000000000000000100000000000',
  R10: '01012700000000000000000000100000000000005c9ce400000000005b9ce40001000000000000000000000000000000',
  R11: '01012700000000000000000000100000040000005c9ce400040000005b9ce400010000000000000000f03f0000000000',
  R13: '01032100000000000000000004000000000000005b9ce480000000000000000001000000000000003812000000000000',
  R14: '01032100000000000000000010000000000000005c9ce480000000000000000001000000000000004812000000000000',
  R15: '01160000000000000000000000000000000000005b9ce480000000000000000000000000000000000000000000000000',
  R16: '0013000000000000000000000000000000000000000000005b9ce4000000000000000000010000000000000000000000',
};

describe('sheepdog request header: tgtd golden vectors', () => {
  it('R1 LOCK_VDI decodes as the vdi variant with type SHARED', () => {
    const r = decodeRequestHeader(hex(R.R1));
    expect(r).toMatchObject({ protoVer: 1, opcode: C.SD_OP_LOCK_VDI, flags: C.SD_FLAG_CMD_WRITE, dataLength: 512 });
    const a = r.args as VdiReqArgs;
    expect(a.kind).toBe('vdi');
    expect(a.type).toBe(C.LOCK_TYPE_SHARED);
    expect(a.baseVdiId).toBe(0);
  });

  it('R2/R3 are refresh-length inode reads; R4 the 1-byte probe; R5 the header read', () => {
    const r2 = decodeRequestHeader(hex(R.R2));
    const a2 = r2.args as ObjReqArgs;
    expect(r2.opcode).toBe(C.SD_OP_READ_OBJ);
    expect(r2.flags).toBe(C.SD_FLAG_CMD_TGT);
    expect(r2.dataLength).toBe(C.TGT_INODE_SIZE);
    expect(a2.oid).toBe(0x80e49c5b00000000n);
    expect(a2.copies).toBe(0);
    expect((decodeRequestHeader(hex(R.R3)).args as ObjReqArgs).copies).toBe(1);
    expect(decodeRequestHeader(hex(R.R4)).dataLength).toBe(1);
    const r5 = decodeRequestHeader(hex(R.R5));
    expect(r5.dataLength).toBe(C.SD_INODE_HEADER_SIZE);
    expect((r5.args as ObjReqArgs).oid).toBe(0x80e49c5c00000000n);
  });

  it('R8/R11 carry the object offset; R10/R11 the COW source', () => {
    const r8 = decodeRequestHeader(hex(R.R8));
    expect(r8.flags).toBe(0x25);
    expect(r8.args).toMatchObject({ oid: 0x00e49c5b00000001n, offset: 1048576, copies: 1 });
    const r11 = decodeRequestHeader(hex(R.R11));
    expect(r11.flags).toBe(0x27);
    expect(r11.args).toMatchObject({ oid: 0x00e49c5c00000004n, cowOid: 0x00e49c5b00000004n, offset: 4190208 });
  });

  it('R13/R14 index updates land in the index area', () => {
    expect(decodeRequestHeader(hex(R.R13)).args).toMatchObject({ oid: 0x80e49c5b00000000n, offset: 4664 });
    expect(decodeRequestHeader(hex(R.R14))).toMatchObject({ dataLength: 16, args: { offset: 4680 } });
  });

  it('R15 FLUSH_VDI and R16 RELEASE_VDI (proto_ver 0, vid at 24)', () => {
    expect(decodeRequestHeader(hex(R.R15)).args).toMatchObject({ kind: 'obj', oid: 0x80e49c5b00000000n });
    const r16 = decodeRequestHeader(hex(R.R16));
    expect(r16.protoVer).toBe(0);
    expect(r16.args).toMatchObject({ kind: 'vdi', baseVdiId: 0xe49c5b, type: 1 });
  });

  it('every golden vector re-encodes to the same bytes', () => {
    for (const [name, h] of Object.entries(R)) {
      expect(encodeRequestHeader(decodeRequestHeader(hex(h))).toString('hex'), name).toBe(h);
    }
  });
});

describe('sheepdog response header: sheep-style golden replies', () => {
  it('LOCK_VDI SUCCESS carries vdi_id, copies and block_size_shift', () => {
    const golden = '0012000001000000000000000000000000000000000000005b9ce4000000000001160000000000000000000000000000';
    const rsp = makeResponse({ opcode: C.SD_OP_LOCK_VDI, id: 0 }, C.SD_RES_SUCCESS, {
      epoch: 1,
      args: { kind: 'vdi', rsvd: 0, vdiId: 0xe49c5b, attrId: 0, copies: 1, blockSizeShift: 22 },
    });
    expect(encodeResponseHeader(rsp).toString('hex')).toBe(golden);
    expect(decodeResponseHeader(hex(golden)).args).toMatchObject({ vdiId: 0xe49c5b, copies: 1, blockSizeShift: 22 });
  });

  it('READ_OBJ replies and error replies', () => {
    const read = '000200000100000000000000381240000000000000000000000000000000000000000000000000000000000000000000';
    const rsp = makeResponse({ opcode: C.SD_OP_READ_OBJ, id: 0 }, C.SD_RES_SUCCESS, { epoch: 1, dataLength: C.TGT_INODE_SIZE });
    expect(encodeResponseHeader(rsp).toString('hex')).toBe(read);
    const inval = '000200000100000000000000000000001d00000000000000000000000000000000000000000000000000000000000000';
    expect(encodeResponseHeader(makeResponse({ opcode: 2, id: 0 }, C.SD_RES_INODE_INVALIDATED, { epoch: 1 })).toString('hex')).toBe(inval);
    const flush = '001600000100000000000000000000000500000000000000000000000000000000000000000000000000000000000000';
    expect(decodeResponseHeader(hex(flush)).result).toBe(C.SD_RES_INVALID_PARMS);
  });
});

const arbObjReq = fc.record({
  protoVer: fc.integer({ min: 0, max: 255 }),
  opcode: fc.constantFrom(1, 2, 3, 4, 5, 0x16, 0xa3, 0xa4, 0xa5, 0xa6, 0xb4, 0xbd),
  flags: fc.integer({ min: 0, max: 0xffff }),
  epoch: fc.nat({ max: 0xffffffff }),
  id: fc.nat({ max: 0xffffffff }),
  dataLength: fc.nat({ max: 0xffffffff }),
  args: fc.record({
    kind: fc.constant('obj' as const),
    oid: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    cowOid: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    copies: fc.nat({ max: 255 }),
    copyPolicy: fc.nat({ max: 255 }),
    ecIndex: fc.nat({ max: 255 }),
    tgtEpoch: fc.nat({ max: 0xffffffff }),
    offset: fc.nat({ max: 0xffffffff }),
  }),
});

describe('sheepdog headers: properties', () => {
  it('object requests round-trip', () => {
    fc.assert(
      fc.property(arbObjReq, (req) => {
        expect(decodeRequestHeader(encodeRequestHeader(req as SdRequest))).toEqual(req);
      }),
    );
  });

  it('any 48 bytes decode and re-encode to a header that decodes the same (no throw, stable)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 48, maxLength: 48 }), (bytes) => {
        const d = decodeRequestHeader(Buffer.from(bytes));
        expect(decodeRequestHeader(encodeRequestHeader(d))).toEqual(d);
      }),
    );
  });
});

describe('frame decoders', () => {
  it('an oversize write payload is refused before any allocation', () => {
    const h = hex(R.R7);
    h.writeUInt32LE(0xfffffff0, 12);
    const d = new SdRequestDecoder({ maxPayload: 1 << 20 });
    d.push(h);
    expect(() => d.next()).toThrow(SdProtocolError);
  });

  it('a large data_length without the WRITE flag is a read buffer size, not a payload', () => {
    const d = new SdRequestDecoder({ maxPayload: 16 });
    d.push(hex(R.R2));
    const m = d.next();
    expect(m?.payload).toBeNull();
    expect(m?.header.dataLength).toBe(C.TGT_INODE_SIZE);
  });
});
