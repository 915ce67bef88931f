// iSCSI PDU codec: golden BHS bytes written by hand from RFC 7143 §11 figures, and a property round trip of
// every PDU kind through encodeBhs/decodePdu.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { decodePdu, encodeBhs, lunField, lunNumber, type Pdu } from '../../../../src/proto/iscsi/pdu.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('golden BHS vectors', () => {
  it('decodes the RFC 3720 B.4 READ(10) command', () => {
    const bhs = hex(`01 c0 00 00 00 00 00 00 00 00 00 00 00 00 00 00
                     14 00 00 00 00 00 04 00 00 00 00 14 00 00 00 18
                     28 00 00 00 00 00 00 00 02 00 00 00 00 00 00 00`);
    const p = decodePdu(bhs, Buffer.alloc(0), Buffer.alloc(0));
    expect(p).toMatchObject({
      kind: 'scsi-cmd',
      immediate: false,
      final: true,
      read: true,
      write: false,
      itt: 0x14000000,
      expectedDataTransferLength: 1024,
      cmdSN: 0x14,
      expStatSN: 0x18,
    });
    if (p.kind === 'scsi-cmd') expect(p.cdb.subarray(0, 10)).toEqual(hex('28 00 00 00 00 00 00 00 02 00'));
    expect(encodeBhs(p)).toEqual(bhs);
  });

  it('encodes a final Login Response (T=1, CSG=1, NSG=3) with TSIH and status', () => {
    const bhs = encodeBhs({
      kind: 'login-rsp',
      transit: true,
      cont: false,
      csg: 1,
      nsg: 3,
      versionMax: 0,
      versionActive: 0,
      isid: 0x23d000000001,
      tsih: 0x0005,
      itt: 0x11223344,
      statSN: 7,
      expCmdSN: 9,
      maxCmdSN: 136,
      statusClass: 0,
      statusDetail: 0,
      data: Buffer.alloc(13),
    });
    expect(bhs).toEqual(
      hex(`23 87 00 00 00 00 00 0d 23 d0 00 00 00 01 00 05
           11 22 33 44 00 00 00 00 00 00 00 07 00 00 00 09
           00 00 00 88 00 00 00 00 00 00 00 00 00 00 00 00`),
    );
  });

  it('encodes a Data-In with status (phase collapse) and underflow residual', () => {
    const bhs = encodeBhs({
      kind: 'data-in',
      flags: 0x80 | 0x02 | 0x01,
      status: 0,
      lun: lunField(0),
      itt: 1,
      ttt: 0xffffffff,
      statSN: 2,
      expCmdSN: 3,
      maxCmdSN: 4,
      dataSN: 5,
      bufferOffset: 0x1000,
      residualCount: 0x200,
      data: Buffer.alloc(512),
    });
    expect(bhs).toEqual(
      hex(`25 83 00 00 00 00 02 00 00 00 00 00 00 00 00 00
           00 00 00 01 ff ff ff ff 00 00 00 02 00 00 00 03
           00 00 00 04 00 00 00 05 00 00 10 00 00 00 02 00`),
    );
  });

  it('decodes a Data-Out (opcode 0x05) and a NOP-Out ping reply', () => {
    const d = decodePdu(
      hex(`05 80 00 00 00 00 02 00 00 01 00 00 00 00 00 00
           00 00 00 07 00 00 00 09 00 00 00 00 00 00 00 04
           00 00 00 00 00 00 00 01 00 00 02 00 00 00 00 00`),
      Buffer.alloc(0),
      Buffer.alloc(512),
    );
    expect(d).toMatchObject({ kind: 'data-out', final: true, itt: 7, ttt: 9, expStatSN: 4, dataSN: 1, bufferOffset: 512 });
    expect(lunNumber((d as { lun: bigint }).lun)).toBe(1);
    const n = decodePdu(
      hex(`40 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00
           ff ff ff ff 00 00 00 2a 00 00 00 10 00 00 00 11
           00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00`),
      Buffer.alloc(0),
      Buffer.alloc(0),
    );
    expect(n).toMatchObject({ kind: 'nop-out', immediate: true, itt: 0xffffffff, ttt: 42, cmdSN: 16, expStatSN: 17 });
  });

  it('maps LUN numbers to peripheral and flat addressing', () => {
    expect(lunField(0)).toBe(0n);
    expect(lunField(5)).toBe(0x0005n << 48n);
    expect(lunField(300)).toBe(0x412cn << 48n);
    expect(lunNumber(0x412cn << 48n)).toBe(300);
  });
});

const u32 = fc.nat({ max: 0xffffffff });
const u16 = fc.nat({ max: 0xffff });
const u8 = fc.nat({ max: 0xff });
const bool = fc.boolean();
const lun = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const data = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a));
const seq = { statSN: u32, expCmdSN: u32, maxCmdSN: u32 };
const empty = fc.constant(Buffer.alloc(0));

const pdus: fc.Arbitrary<Pdu> = fc.oneof(
  fc.record({ kind: fc.constant('nop-out' as const), immediate: bool, lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data }),
  fc.record({
    kind: fc.constant('scsi-cmd' as const),
    immediate: bool,
    final: bool,
    read: bool,
    write: bool,
    attr: fc.nat({ max: 7 }),
    lun,
    itt: u32,
    expectedDataTransferLength: u32,
    cmdSN: u32,
    expStatSN: u32,
    cdb: fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a)),
    ahs: empty,
    data,
  }),
  fc.record({
    kind: fc.constant('tmf-req' as const),
    immediate: bool,
    func: fc.nat({ max: 127 }),
    lun,
    itt: u32,
    referencedTaskTag: u32,
    cmdSN: u32,
    expStatSN: u32,
    refCmdSN: u32,
    expDataSN: u32,
  }),
  fc.record({
    kind: fc.constant('login-req' as const),
    transit: bool,
    cont: bool,
    csg: fc.nat({ max: 3 }),
    nsg: fc.nat({ max: 3 }),
    versionMax: u8,
    versionMin: u8,
    isid: fc.nat({ max: 2 ** 48 - 1 }),
    tsih: u16,
    itt: u32,
    cid: u16,
    cmdSN: u32,
    expStatSN: u32,
    data,
  }),
  fc.record({ kind: fc.constant('text-req' as const), immediate: bool, final: bool, cont: bool, lun, itt: u32, ttt: u32, cmdSN: u32, expStatSN: u32, data }),
  fc.record({ kind: fc.constant('data-out' as const), final: bool, lun, itt: u32, ttt: u32, expStatSN: u32, dataSN: u32, bufferOffset: u32, data }),
  fc.record({ kind: fc.constant('logout-req' as const), immediate: bool, reason: fc.nat({ max: 127 }), itt: u32, cid: u16, cmdSN: u32, expStatSN: u32 }),
  fc.record({ kind: fc.constant('snack' as const), type: fc.nat({ max: 15 }), lun, itt: u32, ttt: u32, expStatSN: u32, begRun: u32, runLength: u32 }),
  fc.record({ kind: fc.constant('nop-in' as const), lun, itt: u32, ttt: u32, ...seq, data }),
  fc.record({
    kind: fc.constant('scsi-rsp' as const),
    flags: fc.constantFrom(0, 0x02, 0x04, 0x08, 0x10, 0x12),
    response: u8,
    status: u8,
    itt: u32,
    snackTag: u32,
    ...seq,
    expDataSN: u32,
    bidiResidualCount: u32,
    residualCount: u32,
    data,
  }),
  fc.record({ kind: fc.constant('tmf-rsp' as const), response: u8, itt: u32, ...seq }),
  fc.record({
    kind: fc.constant('login-rsp' as const),
    transit: bool,
    cont: bool,
    csg: fc.nat({ max: 3 }),
    nsg: fc.nat({ max: 3 }),
    versionMax: u8,
    versionActive: u8,
    isid: fc.nat({ max: 2 ** 48 - 1 }),
    tsih: u16,
    itt: u32,
    ...seq,
    statusClass: u8,
    statusDetail: u8,
    data,
  }),
  fc.record({ kind: fc.constant('text-rsp' as const), final: bool, cont: bool, lun, itt: u32, ttt: u32, ...seq, data }),
  fc.record({
    kind: fc.constant('data-in' as const),
    flags: fc.constantFrom(0x80, 0x81, 0x83, 0x85, 0xc0, 0x00),
    status: u8,
    lun,
    itt: u32,
    ttt: u32,
    ...seq,
    dataSN: u32,
    bufferOffset: u32,
    residualCount: u32,
    data,
  }),
  fc.record({ kind: fc.constant('logout-rsp' as const), response: u8, itt: u32, ...seq, time2Wait: u16, time2Retain: u16 }),
  fc.record({ kind: fc.constant('r2t' as const), lun, itt: u32, ttt: u32, ...seq, r2tSN: u32, bufferOffset: u32, desiredDataTransferLength: u32 }),
  fc.record({
    kind: fc.constant('async' as const),
    lun,
    ...seq,
    asyncEvent: u8,
    asyncVCode: u8,
    parameter1: u16,
    parameter2: u16,
    parameter3: u16,
    data,
  }),
  fc.record({ kind: fc.constant('reject' as const), reason: u8, ...seq, dataSN: u32, data }),
);

describe('PDU round trip', () => {
  it('decode(encode(p)) == p for every PDU kind', () => {
    fc.assert(
      fc.property(pdus, (p) => {
        const bhs = encodeBhs(p);
        expect(bhs.length).toBe(48);
        const d = 'data' in p ? p.data : Buffer.alloc(0);
        expect(bhs.readUIntBE(5, 3)).toBe(d.length);
        expect(decodePdu(bhs, Buffer.alloc(0), d)).toEqual(p);
      }),
      { numRuns: 2000 },
    );
  });
});
