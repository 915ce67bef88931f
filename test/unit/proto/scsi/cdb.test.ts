// CDB parsing: LBA, transfer length, flags and lengths for each command family, from hand-built CDBs.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { cdbLength, parseCdb } from '../../../../src/proto/scsi/cdb.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('parseCdb', () => {
  it('READ(6): 21-bit LBA, 0 blocks means 256', () => {
    expect(parseCdb(hex('08 1f ff ff 00 00'))).toMatchObject({ kind: 'block', lba: 0x1fffffn, blocks: 256, fua: false });
  });
  it('WRITE(10) with DPO and FUA', () => {
    expect(parseCdb(hex('2a 18 00 00 01 00 00 00 08 00'))).toMatchObject({ lba: 256n, blocks: 8, dpo: true, fua: true, protect: 0 });
  });
  it('READ(12) with RDPROTECT', () => {
    expect(parseCdb(hex('a8 20 00 00 00 10 00 00 00 02 00 00'))).toMatchObject({ lba: 16n, blocks: 2, protect: 1 });
  });
  it('READ(16) with a 64-bit LBA', () => {
    expect(parseCdb(hex('88 00 80 00 00 00 00 00 00 01 00 00 00 04 00 00'))).toMatchObject({ lba: 0x8000000000000001n, blocks: 4 });
  });
  it('VERIFY(10) BYTCHK and WRITE SAME(16) UNMAP/ANCHOR/NDOB', () => {
    expect(parseCdb(hex('2f 02 00 00 00 00 00 00 01 00'))).toMatchObject({ bytchk: 1 });
    expect(parseCdb(hex('93 19 00 00 00 00 00 00 00 00 00 00 00 10 00 00'))).toMatchObject({ unmap: true, anchor: true, ndob: true, blocks: 16 });
  });
  it('COMPARE AND WRITE: NUMBER OF LOGICAL BLOCKS is byte 13', () => {
    expect(parseCdb(hex('89 00 00 00 00 00 00 00 00 07 00 00 00 03 00 00'))).toMatchObject({ lba: 7n, blocks: 3 });
  });
  it('INQUIRY allocation length, MODE SELECT(10) parameter list length, PR OUT service action', () => {
    expect(parseCdb(hex('12 01 80 01 04 00'))).toMatchObject({ kind: 'other', allocationLength: 0x104 });
    expect(parseCdb(hex('55 10 00 00 00 00 00 00 18 00'))).toMatchObject({ parameterListLength: 24 });
    expect(parseCdb(hex('5f 01 03 00 00 00 00 00 18 00'))).toMatchObject({ serviceAction: 1, parameterListLength: 24 });
  });
  it('SERVICE ACTION IN(16) READ CAPACITY(16) and REPORT LUNS', () => {
    expect(parseCdb(hex('9e 10 00 00 00 00 00 00 00 00 00 00 00 20 00 00'))).toMatchObject({ serviceAction: 0x10, allocationLength: 32 });
    expect(parseCdb(hex('a0 00 00 00 00 00 00 00 10 00 00 00'))).toMatchObject({ allocationLength: 4096 });
  });
  it('unknown opcodes parse as unknown', () => {
    expect(parseCdb(hex('ff 00 00 00 00 00'))).toMatchObject({ kind: 'unknown', opcode: 0xff });
  });
  it('group code gives the CDB length', () => {
    expect([0x00, 0x28, 0x5a, 0x88, 0xa0].map(cdbLength)).toEqual([6, 10, 10, 16, 12]);
  });
  it('never throws on arbitrary bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 32 }), (a) => void parseCdb(Buffer.from(a))));
  });
});
