// Golden byte vectors for the initiator's CDB builders and data-in decoders (src/proto/scsi/cdbs.ts, pages.ts),
// written out by hand from the SPC-4 / SBC-3 tables, never produced by our own encoders.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as B from '../../../src/proto/scsi/cdbs.js';
import * as P from '../../../src/proto/scsi/pages.js';
import { parseCdb } from '../../../src/proto/scsi/cdb.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('CDB builders', () => {
  it('encode the SBC-3 / SPC-4 layouts', () => {
    expect(B.read16Cdb(0x0102030405060708n, 0x10, { fua: true })).toEqual(hex('88 08 0102030405060708 00000010 00 00'));
    expect(B.write16Cdb(5n, 8)).toEqual(hex('8a 00 0000000000000005 00000008 00 00'));
    expect(B.testUnitReadyCdb()).toEqual(Buffer.alloc(16));
    expect(B.inquiryCdb(255)).toEqual(hex('12 00 00 00ff 00 00000000000000000000'));
    expect(B.inquiryCdb(1024, 0x83)).toEqual(hex('12 01 83 0400 00 00000000000000000000'));
    expect(B.readCapacity16Cdb(32)).toEqual(hex('9e 10 0000000000000000 00000020 00 00'));
    expect(B.synchronizeCache16Cdb()).toEqual(hex('91 00 0000000000000000 00000000 00 00'));
    expect(B.writeSame16Cdb(16n, 32, { unmap: true })).toEqual(hex('93 08 0000000000000010 00000020 00 00'));
    expect(B.unmapCdb(24)).toEqual(hex('42 00 00000000 00 0018 00 000000000000'));
    expect(B.reportTargetPortGroupsCdb(1024)).toEqual(hex('a3 2a 00000000 00000400 00 00 00000000'));
    expect(B.persistentReserveInCdb(1, 1024)).toEqual(hex('5e 01 0000000000 0400 00 000000000000'));
    expect(B.persistentReserveOutCdb(1, 3)).toEqual(hex('5f 01 03 0000 00000018 00 000000000000'));
    expect(B.getLbaStatusCdb(7n, 4096)).toEqual(hex('9e 12 0000000000000007 00001000 00 00'));
  });

  it('build parameter lists', () => {
    expect(B.unmapParameterList([{ lba: 0x10n, blocks: 0x20 }])).toEqual(hex('0016 0010 00000000 0000000000000010 00000020 00000000'));
    expect(B.persistentReserveOutParameters({ reservationKey: 1n, serviceActionReservationKey: 2n, aptpl: true })).toEqual(
      hex('0000000000000001 0000000000000002 00000000 01 00 0000'),
    );
  });

  it('round-trip READ/WRITE (16) through the target-side parser', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.integer({ min: 0, max: 0xffffffff }), fc.boolean(), (lba, n, fua) => {
        for (const cdb of [B.read16Cdb(lba, n, { fua }), B.write16Cdb(lba, n, { fua })]) {
          const p = parseCdb(cdb);
          expect(p.kind).toBe('block');
          if (p.kind === 'block') expect([p.lba, p.blocks, p.fua]).toEqual([lba, n, fua]);
        }
      }),
    );
  });
});

describe('data-in decoders', () => {
  it('decode READ CAPACITY (16)', () => {
    const c = P.decodeCapacity16(hex('00000000 0000ffff 00000200 00 03 c0 00 0000000000000000000000000000'));
    expect(c).toEqual({ lastLba: 0xffffn, blockLength: 512, lbppbe: 3, lbpme: true, lbprz: true, lowestAlignedLba: 0 });
  });

  it('decode standard INQUIRY', () => {
    const b = Buffer.alloc(36, 0x20);
    hex('00 00 06 12 1f 10 00 02').copy(b, 0);
    b.write('VENDOR', 8, 'ascii');
    b.write('PRODUCT', 16, 'ascii');
    b.write('0001', 32, 'ascii');
    expect(P.decodeStandardInquiry(b)).toEqual({
      peripheralQualifier: 0,
      peripheralDeviceType: 0,
      tpgs: 1,
      vendor: 'VENDOR',
      product: 'PRODUCT',
      revision: '0001',
      cmdque: true,
    });
  });

  it('decode VPD 0x83 with NAA-6, relative port, port group and SCSI name', () => {
    const page = hex(
      '00 83 0034' +
        '01 03 0010 6123456789abcdef 0000000000000000' + // NAA-6, LU
        '51 94 0004 0000 0002' + // relative target port 2 (PIV, iSCSI, target port)
        '51 95 0004 0000 0007' + // target port group 7
        '53 a8 0008 6971 6e2e 7800 0000', // SCSI name "iqn.x"
    );
    const id = P.luIdentity(P.decodeDeviceIdentification(page));
    expect(id.naa).toBe('6123456789abcdef0000000000000000');
    expect(id.naaId).toBe(0x123456789abcdef0n);
    expect(id.relativeTargetPort).toBe(2);
    expect(id.targetPortGroup).toBe(7);
    expect(id.scsiName).toBe('iqn.x');
  });

  it('prefer a registered NAA over a locally assigned one (tgtd sends both)', () => {
    const page = hex('00 83 0024 01 03 0008 3000000100000001 01 03 0010 6000000000000000000000000000000d');
    expect(P.luIdentity(P.decodeDeviceIdentification(page)).naa).toBe('6000000000000000000000000000000d');
  });

  it('decode an 8-byte NAA-5 designator', () => {
    const id = P.luIdentity(P.decodeDeviceIdentification(hex('00 83 000c 01 03 0008 5001405abcdef012')));
    expect(id.naaId).toBe(0x001405abcdef012n);
  });

  it('decode REPORT TARGET PORT GROUPS in both header formats', () => {
    const desc = '80 8f 0001 00 02 00 01 0000 0001' + '01 8f 0002 00 00 00 01 0000 0002';
    const extended = hex('0000001c 10 00 0000' + desc.replace(/ /g, ''));
    const short = hex('00000018' + desc.replace(/ /g, ''));
    for (const b of [extended, short]) {
      expect(P.decodeTargetPortGroups(b)).toEqual([
        { preferred: true, state: 'active/optimized', stateCode: 0, supported: 0x8f, id: 1, statusCode: 2, relativeTargetPorts: [1] },
        { preferred: false, state: 'active/non-optimized', stateCode: 1, supported: 0x8f, id: 2, statusCode: 0, relativeTargetPorts: [2] },
      ]);
    }
    expect(P.decodeTargetPortGroups(hex('00000008 0e000003 00000000'))[0]?.state).toBe('offline');
  });

  it('decode PR IN, GET LBA STATUS, REPORT LUNS, block limits, provisioning and truncated pages', () => {
    expect(P.decodePrReadKeys(hex('00000003 00000010 0000000000001234 0000000000005678'))).toEqual({ generation: 3, keys: [0x1234n, 0x5678n] });
    expect(P.decodePrReadReservation(hex('00000004 00000010 0000000000001234 00000000 00 01 0000'))).toEqual({
      generation: 4,
      reservation: { key: 0x1234n, scope: 0, type: 1 },
    });
    expect(P.decodePrReadReservation(hex('00000004 00000000')).reservation).toBeUndefined();
    expect(P.decodeLbaStatus(hex('00000024 00000000 0000000000000000 00000010 00 000000 0000000000000010 00000020 01 000000'))).toEqual([
      { lba: 0n, blocks: 16, provisioningStatus: 0 },
      { lba: 16n, blocks: 32, provisioningStatus: 1 },
    ]);
    expect(P.decodeReportLuns(hex('00000010 00000000 0000000000000000 0001000000000000'))).toEqual([0n, 1n << 48n]);
    const bl = Buffer.alloc(64);
    hex('00 b0 003c 00 01 0008 00000800 00000800').copy(bl);
    bl.writeUInt32BE(0xffffffff, 20);
    bl.writeUInt32BE(16, 24);
    bl.writeBigUInt64BE(65535n, 36);
    expect(P.decodeBlockLimits(bl)).toMatchObject({ maxCompareAndWriteBlocks: 1, optimalTransferGranularityBlocks: 8, maxTransferBlocks: 2048, maxUnmapBlocks: 0xffffffff, maxUnmapDescriptors: 16, maxWriteSameBlocks: 65535n });
    expect(P.decodeLogicalBlockProvisioning(hex('00 b2 0004 00 e4 02 00'))).toEqual({ lbpu: true, lbpws: true, lbpws10: true, lbprz: true, provisioningType: 2 });
    expect(P.decodeModeSense6Header(hex('03 00 80 00'))).toEqual({ writeProtected: true, blockDescriptorLength: 0 });
    // Truncated data never throws past the buffer.
    expect(P.decodeDeviceIdentification(hex('00 83 0020 01 03 0010 61'))).toEqual([]);
    expect(P.decodeTargetPortGroups(hex('000000ff 80'))).toEqual([]);
    expect(() => P.decodeCapacity16(hex('0000'))).toThrow(RangeError);
  });
});
