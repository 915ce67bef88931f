// The SCSI logical unit on a MemoryDevice: data path, sense for every error class, VPD identity, mode pages,
// thin provisioning, COMPARE AND WRITE atomicity and reservations between two I_T nexuses.
import { describe, it, expect } from 'vitest';
import { BlockError, type BlockDevice } from '../../../../src/block/device.js';
import { MemoryDevice } from '../../../../src/block/memory.js';
import { LogicalUnit, type ScsiResult } from '../../../../src/iscsi/scsi/lu.js';
import { cscdDesignator } from '../../../../src/iscsi/scsi/xcopy.js';
import { decodeSense } from '../../../../src/proto/scsi/sense.js';
import * as C from '../../../../src/proto/scsi/constants.js';

const A = 'iqn.a,i,0x000000000001';
const B = 'iqn.b,i,0x000000000002';
const BS = 512;

function lu(opts: { size?: number; readOnly?: boolean; capacityBytes?: number } = {}): { lu: LogicalUnit; dev: MemoryDevice } {
  const dev = new MemoryDevice({ name: 'disk', size: opts.size ?? 1024 * BS, readOnly: opts.readOnly ?? false, ...(opts.capacityBytes ? { capacityBytes: opts.capacityBytes } : {}) });
  return { lu: new LogicalUnit(dev, { targetName: 'iqn.2026-11.org.sheepfold:disk' }), dev };
}
function cdb(...bytes: number[]): Buffer {
  const b = Buffer.alloc(16);
  Buffer.from(bytes).copy(b);
  return b;
}
const rw10 = (op: number, lba: number, blocks: number, flags = 0): Buffer =>
  cdb(op, flags, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (blocks >> 8) & 0xff, blocks & 0xff, 0);
const run = (l: LogicalUnit, c: Buffer, dataOut?: Buffer, nexus = A, expectedLength = 0): Promise<ScsiResult> =>
  l.execute({ cdb: c, dataOut, expectedLength: expectedLength || dataOut?.length || 0, nexus });
function sense(r: ScsiResult): { key: number; ascq: number } {
  expect(r.status).toBe(C.SAM_STAT_CHECK_CONDITION);
  const s = decodeSense(r.sense as Buffer);
  return { key: s?.key ?? -1, ascq: s?.ascq ?? -1 };
}

describe('LogicalUnit data path', () => {
  it('writes and reads back through READ/WRITE 10', async () => {
    const { lu: l } = lu();
    const data = Buffer.alloc(2 * BS, 0xa5);
    expect((await run(l, rw10(C.WRITE_10, 10, 2), data)).status).toBe(C.SAM_STAT_GOOD);
    const r = await run(l, rw10(C.READ_10, 10, 2));
    expect(r.data).toEqual(data);
  });
  it('reports LBA OUT OF RANGE past the end and INVALID OPERATION CODE for unknown opcodes', async () => {
    const { lu: l } = lu();
    expect(sense(await run(l, rw10(C.READ_10, 1023, 2)))).toEqual({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_LBA_OUT_OF_RANGE });
    expect(sense(await run(l, cdb(0xc7)))).toEqual({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_OPERATION_CODE });
  });
  it('rejects RDPROTECT with INVALID FIELD IN CDB', async () => {
    const { lu: l } = lu();
    expect(sense(await run(l, rw10(C.READ_10, 0, 1, 0x20)))).toEqual({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB });
  });
  it('refuses writes to a read-only LU with DATA PROTECT / WRITE PROTECTED', async () => {
    const { lu: l } = lu({ readOnly: true });
    expect(sense(await run(l, rw10(C.WRITE_10, 0, 1), Buffer.alloc(BS)))).toEqual({ key: C.DATA_PROTECT, ascq: C.ASC_WRITE_PROTECTED });
  });
  it('maps ENOSPC to DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT', async () => {
    const { lu: l } = lu({ capacityBytes: 64 * 1024 });
    const r = await run(l, rw10(C.WRITE_10, 512, 1), Buffer.alloc(BS, 1));
    await run(l, rw10(C.WRITE_10, 0, 1), Buffer.alloc(BS, 1));
    const r2 = r.status === C.SAM_STAT_GOOD ? await run(l, rw10(C.WRITE_10, 900, 1), Buffer.alloc(BS, 1)) : r;
    expect(sense(r2)).toEqual({ key: C.DATA_PROTECT, ascq: C.ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT });
  });
  it('maps EIO to MEDIUM ERROR on read (11/00) and write (0C/00)', async () => {
    const dev = new MemoryDevice({ name: 'bad', size: 64 * BS });
    const broken: BlockDevice = Object.assign(Object.create(dev) as BlockDevice, {
      read: () => Promise.reject(new BlockError('EIO', 'boom')),
      readInto: () => Promise.reject(new BlockError('EIO', 'boom')),
      write: () => Promise.reject(new BlockError('EIO', 'boom')),
    });
    const l = new LogicalUnit(broken);
    expect(sense(await run(l, rw10(C.READ_10, 0, 1)))).toEqual({ key: C.MEDIUM_ERROR, ascq: C.ASC_UNRECOVERED_READ_ERROR });
    expect(sense(await run(l, rw10(C.WRITE_10, 0, 1), Buffer.alloc(BS)))).toEqual({ key: C.MEDIUM_ERROR, ascq: C.ASC_WRITE_ERROR });
  });
  it('writes only the whole blocks sent when EDTL is shorter than the CDB asks', async () => {
    const { lu: l } = lu();
    await run(l, rw10(C.WRITE_10, 0, 2), Buffer.alloc(2 * BS, 0x61));
    const r = await run(l, rw10(C.WRITE_10, 0, 2), Buffer.alloc(BS, 0x62));
    expect(r).toMatchObject({ status: C.SAM_STAT_GOOD, dataOutWanted: 2 * BS });
    const back = (await run(l, rw10(C.READ_10, 0, 2))).data as Buffer;
    expect(back.subarray(0, BS)).toEqual(Buffer.alloc(BS, 0x62));
    expect(back.subarray(BS)).toEqual(Buffer.alloc(BS, 0x61));
  });
});

describe('LogicalUnit commands', () => {
  it('INQUIRY VPD 0x80 and 0x83 carry the device identity', async () => {
    const { lu: l, dev } = lu();
    const serial = (await run(l, cdb(C.INQUIRY, 1, 0x80, 0, 255))).data as Buffer;
    expect(serial.subarray(4).toString('ascii')).toBe(dev.identity.serial);
    const ids = (await run(l, cdb(C.INQUIRY, 1, 0x83, 0, 255))).data as Buffer;
    expect(ids[4 + 1]! & 0x0f).toBe(3); // first designator: NAA
    expect(ids[8]! >> 4).toBe(6); // NAA-6
  });
  it('READ CAPACITY(16) reports size, block length and LBPME for a thin device', async () => {
    const { lu: l } = lu();
    const d = (await run(l, cdb(C.SERVICE_ACTION_IN_16, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 32))).data as Buffer;
    expect(d.readBigUInt64BE(0)).toBe(1023n);
    expect(d.readUInt32BE(8)).toBe(BS);
    expect(d[14]! & 0x80).toBe(0x80);
  });
  it('COMPARE AND WRITE writes on match and reports MISCOMPARE with the offset otherwise', async () => {
    const { lu: l } = lu();
    await run(l, rw10(C.WRITE_10, 5, 1), Buffer.alloc(BS, 1));
    const caw = cdb(C.COMPARE_AND_WRITE, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 1);
    const ok = await run(l, caw, Buffer.concat([Buffer.alloc(BS, 1), Buffer.alloc(BS, 2)]));
    expect(ok.status).toBe(C.SAM_STAT_GOOD);
    const verify = Buffer.alloc(BS, 2);
    verify[27] = 9;
    const bad = await run(l, caw, Buffer.concat([verify, Buffer.alloc(BS, 3)]));
    expect(decodeSense(bad.sense as Buffer)).toMatchObject({ key: C.MISCOMPARE, ascq: C.ASC_MISCOMPARE_DURING_VERIFY, information: 27n });
    expect((await run(l, rw10(C.READ_10, 5, 1))).data).toEqual(Buffer.alloc(BS, 2));
  });
  it('UNMAP deallocates and GET LBA STATUS reports it', async () => {
    const { lu: l } = lu();
    await run(l, rw10(C.WRITE_10, 0, 256), Buffer.alloc(256 * BS, 7));
    const plist = Buffer.alloc(24);
    plist.writeUInt16BE(22, 0);
    plist.writeUInt16BE(16, 2);
    plist.writeBigUInt64BE(128n, 8);
    plist.writeUInt32BE(128, 16);
    expect((await run(l, cdb(C.UNMAP, 0, 0, 0, 0, 0, 0, 0, 24), plist)).status).toBe(C.SAM_STAT_GOOD);
    const st = (await run(l, cdb(C.SERVICE_ACTION_IN_16, 0x12, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0, 24))).data as Buffer;
    expect(st.readBigUInt64BE(8)).toBe(128n);
    expect(st[8 + 12]).toBe(1); // deallocated
    expect((await run(l, rw10(C.READ_10, 128, 1))).data).toEqual(Buffer.alloc(BS));
  });
  it('MODE SELECT sets D_SENSE and later errors use descriptor sense', async () => {
    const { lu: l } = lu();
    const ms = (await run(l, cdb(C.MODE_SENSE_6, 0x08, C.MODE_PAGE_CONTROL, 0, 255))).data as Buffer;
    const page = Buffer.from(ms.subarray(4));
    page[2] = (page[2] ?? 0) | 0x04;
    const params = Buffer.concat([Buffer.alloc(4), page]);
    expect((await run(l, cdb(C.MODE_SELECT_6, 0x10, 0, 0, params.length), params)).status).toBe(C.SAM_STAT_GOOD);
    const r = await run(l, rw10(C.READ_10, 5000, 1));
    expect(r.sense?.[0]).toBe(0x72);
  });
  it('MODE SELECT refuses to change a non-changeable bit', async () => {
    const { lu: l } = lu();
    const ms = (await run(l, cdb(C.MODE_SENSE_6, 0x08, C.MODE_PAGE_CONTROL, 0, 255))).data as Buffer;
    const page = Buffer.from(ms.subarray(4));
    page[3] = 0x00; // QUEUE ALGORITHM MODIFIER is not changeable
    const params = Buffer.concat([Buffer.alloc(4), page]);
    expect(sense(await run(l, cdb(C.MODE_SELECT_6, 0x10, 0, 0, params.length), params)).ascq).toBe(C.ASC_INVALID_FIELD_IN_PARAMETER_LIST);
  });
  it('RESERVE(6) from one nexus makes the other see RESERVATION CONFLICT until RELEASE', async () => {
    const { lu: l } = lu();
    expect((await run(l, cdb(C.RESERVE_6), undefined, A)).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, rw10(C.READ_10, 0, 1), undefined, B)).status).toBe(C.SAM_STAT_RESERVATION_CONFLICT);
    expect((await run(l, cdb(C.INQUIRY, 0, 0, 0, 36), undefined, B)).status).toBe(C.SAM_STAT_GOOD);
    await run(l, cdb(C.RELEASE_6), undefined, A);
    expect((await run(l, rw10(C.READ_10, 0, 1), undefined, B)).status).toBe(C.SAM_STAT_GOOD);
  });
  it('PERSISTENT RESERVE: register, reserve WRITE EXCLUSIVE, other nexus may read but not write', async () => {
    const { lu: l } = lu();
    const reg = (key: bigint): Buffer => {
      const p = Buffer.alloc(24);
      p.writeBigUInt64BE(key, 8);
      return p;
    };
    const prout = (sa: number, type: number): Buffer => cdb(C.PERSISTENT_RESERVE_OUT, sa, type, 0, 0, 0, 0, 0, 24);
    expect((await run(l, prout(0, 0), reg(0xaan), A)).status).toBe(C.SAM_STAT_GOOD);
    const res = Buffer.alloc(24);
    res.writeBigUInt64BE(0xaan, 0);
    expect((await run(l, prout(1, 1), res, A)).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, rw10(C.READ_10, 0, 1), undefined, B)).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, rw10(C.WRITE_10, 0, 1), Buffer.alloc(BS), B)).status).toBe(C.SAM_STAT_RESERVATION_CONFLICT);
    const keys = (await run(l, cdb(C.PERSISTENT_RESERVE_IN, 0, 0, 0, 0, 0, 0, 0, 255), undefined, B)).data as Buffer;
    expect(keys.readUInt32BE(4)).toBe(8);
    expect(keys.readBigUInt64BE(8)).toBe(0xaan);
  });
  it('REPORT SUPPORTED OPERATION CODES lists READ(10) with its CDB usage', async () => {
    const { lu: l } = lu();
    const one = (await run(l, cdb(C.MAINTENANCE_IN, 0x0c, 1, C.READ_10, 0, 0, 0, 0, 1, 0))).data as Buffer;
    expect(one[1]! & 0x07).toBe(3);
    expect(one.readUInt16BE(2)).toBe(10);
    expect(one[4]).toBe(C.READ_10);
  });
  it('raises a unit attention once after a reset', async () => {
    const { lu: l } = lu();
    l.raiseUnitAttention(C.ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED, [A]);
    expect(sense(await run(l, cdb(C.TEST_UNIT_READY)))).toEqual({ key: C.UNIT_ATTENTION, ascq: C.ASC_BUS_DEVICE_RESET_FUNCTION_OCCURRED });
    expect((await run(l, cdb(C.TEST_UNIT_READY))).status).toBe(C.SAM_STAT_GOOD);
  });
  it('a removable LU ejects and loads with START STOP UNIT, unless removal is prevented', async () => {
    const dev = new MemoryDevice({ name: 'rm', size: 64 * BS });
    const l = new LogicalUnit(dev, { removable: true });
    expect(((await run(l, cdb(C.INQUIRY, 0, 0, 0, 36))).data as Buffer)[1]).toBe(0x80);
    expect((await run(l, cdb(C.START_STOP_UNIT, 0, 0, 0, 0x02))).status).toBe(C.SAM_STAT_GOOD);
    expect(sense(await run(l, rw10(C.READ_10, 0, 1)))).toEqual({ key: C.NOT_READY, ascq: C.ASC_MEDIUM_NOT_PRESENT });
    expect((await run(l, cdb(C.START_STOP_UNIT, 0, 0, 0, 0x03))).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, cdb(C.PREVENT_ALLOW_MEDIUM_REMOVAL, 0, 0, 0, 1))).status).toBe(C.SAM_STAT_GOOD);
    expect(sense(await run(l, cdb(C.START_STOP_UNIT, 0, 0, 0, 0x02)))).toEqual({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_MEDIUM_REMOVAL_PREVENTED });
    l.nexusLost(A);
    expect((await run(l, cdb(C.START_STOP_UNIT, 0, 0, 0, 0x02))).status).toBe(C.SAM_STAT_GOOD);
  });
  it('SANITIZE OVERWRITE fills every block with the pattern; BLOCK ERASE deallocates', async () => {
    const { lu: l } = lu({ size: 64 * BS });
    const p = Buffer.alloc(8);
    p[0] = 1;
    p.writeUInt16BE(4, 2);
    p.write('abcd', 4, 'latin1');
    expect((await run(l, cdb(C.SANITIZE, C.SANITIZE_OVERWRITE, 0, 0, 0, 0, 0, 0, 8), p)).status).toBe(C.SAM_STAT_GOOD);
    expect(((await run(l, rw10(C.READ_10, 63, 1))).data as Buffer).toString('latin1', 0, 8)).toBe('abcdabcd');
    expect((await run(l, cdb(C.SANITIZE, C.SANITIZE_BLOCK_ERASE))).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, rw10(C.READ_10, 0, 64))).data).toEqual(Buffer.alloc(64 * BS));
    expect(sense(await run(l, cdb(C.SANITIZE, 0x05)))).toEqual({ key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB });
  });
  it('EXTENDED COPY copies blocks within the LU named by its NAA designator, and reports the copy status', async () => {
    const { lu: l, dev } = lu();
    await run(l, rw10(C.WRITE_10, 0, 4), Buffer.alloc(4 * BS, 0x41));
    const p = Buffer.alloc(16 + 32 + 28);
    p[0] = 7; // list id
    p.writeUInt16BE(32, 2);
    p.writeUInt32BE(28, 8);
    const t = p.subarray(16, 48);
    t[0] = 0xe4;
    cscdDesignator(dev.identity.naaId).copy(t, 4);
    t.writeUIntBE(BS, 29, 3);
    const s = p.subarray(48);
    s[0] = 0x02;
    s.writeUInt16BE(24, 2);
    s.writeUInt16BE(4, 10);
    s.writeBigUInt64BE(0n, 12);
    s.writeBigUInt64BE(100n, 20);
    const xcopy = cdb(C.EXTENDED_COPY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, p.length);
    expect((await run(l, xcopy, p)).status).toBe(C.SAM_STAT_GOOD);
    expect((await run(l, rw10(C.READ_10, 100, 4))).data).toEqual(Buffer.alloc(4 * BS, 0x41));
    const st = (await run(l, cdb(C.RECEIVE_COPY_RESULTS, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 64))).data as Buffer;
    expect(st[4]).toBe(0x01);
    expect(st.readUInt32BE(8)).toBe(4 * BS);
    s.writeBigUInt64BE(1023n, 20); // beyond the end
    expect(sense(await run(l, xcopy, p)).key).toBe(C.COPY_ABORTED);
    t[0] = 0xe0;
    expect(sense(await run(l, xcopy, p)).ascq).toBe(C.ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE);
  });
});
