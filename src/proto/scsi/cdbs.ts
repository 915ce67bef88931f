// SCSI CDB encoders for an initiator (SPC-4 §6, SBC-3 §5): the commands Sheepfold's initiator sends, each built
// into a 16-byte buffer (the iSCSI CDB field; shorter CDBs are zero-padded), plus the parameter lists of UNMAP and
// PERSISTENT RESERVE OUT. The target side parses these with cdb.ts; both follow the same spec tables.
import * as C from './constants.js';

/** A 16-byte CDB buffer with the operation code set. */
function cdb(opcode: number): Buffer {
  const b = Buffer.alloc(16);
  b[0] = opcode;
  return b;
}

export function testUnitReadyCdb(): Buffer {
  return cdb(C.TEST_UNIT_READY);
}

export function requestSenseCdb(allocationLength = 252, descriptor = false): Buffer {
  const b = cdb(C.REQUEST_SENSE);
  b[1] = descriptor ? 1 : 0;
  b[4] = Math.min(allocationLength, 255);
  return b;
}

/** INQUIRY (SPC-4 §6.6): standard data, or the VPD page `page` when `page` is given. */
export function inquiryCdb(allocationLength: number, page?: number): Buffer {
  const b = cdb(C.INQUIRY);
  if (page !== undefined) {
    b[1] = 1; // EVPD
    b[2] = page;
  }
  b.writeUInt16BE(Math.min(allocationLength, 0xffff), 3);
  return b;
}

/** READ CAPACITY (16) (SBC-3 §5.16). */
export function readCapacity16Cdb(allocationLength = 32): Buffer {
  const b = cdb(C.SERVICE_ACTION_IN_16);
  b[1] = C.SAI_READ_CAPACITY_16;
  b.writeUInt32BE(allocationLength, 10);
  return b;
}

/** READ (16) / WRITE (16) (SBC-3 §5.11, §5.40). */
export function read16Cdb(lba: bigint, blocks: number, opts: { fua?: boolean } = {}): Buffer {
  const b = cdb(C.READ_16);
  b[1] = opts.fua ? 0x08 : 0;
  b.writeBigUInt64BE(lba, 2);
  b.writeUInt32BE(blocks, 10);
  return b;
}
export function write16Cdb(lba: bigint, blocks: number, opts: { fua?: boolean } = {}): Buffer {
  const b = cdb(C.WRITE_16);
  b[1] = opts.fua ? 0x08 : 0;
  b.writeBigUInt64BE(lba, 2);
  b.writeUInt32BE(blocks, 10);
  return b;
}

/** SYNCHRONIZE CACHE (16) (SBC-3 §5.23); blocks 0 = to the end of the medium. */
export function synchronizeCache16Cdb(lba = 0n, blocks = 0): Buffer {
  const b = cdb(C.SYNCHRONIZE_CACHE_16);
  b.writeBigUInt64BE(lba, 2);
  b.writeUInt32BE(blocks, 10);
  return b;
}

/** WRITE SAME (16) (SBC-3 §5.42): one block of data-out repeated over `blocks`; UNMAP bit may deallocate. */
export function writeSame16Cdb(lba: bigint, blocks: number, opts: { unmap?: boolean } = {}): Buffer {
  const b = cdb(C.WRITE_SAME_16);
  b[1] = opts.unmap ? 0x08 : 0;
  b.writeBigUInt64BE(lba, 2);
  b.writeUInt32BE(blocks, 10);
  return b;
}

/** UNMAP (SBC-3 §5.28) CDB for a parameter list of `parameterListLength` bytes. */
export function unmapCdb(parameterListLength: number): Buffer {
  const b = cdb(C.UNMAP);
  b.writeUInt16BE(parameterListLength, 7);
  return b;
}

/** UNMAP parameter list: an 8-byte header and one 16-byte descriptor per (lba, blocks) range. */
export function unmapParameterList(ranges: Array<{ lba: bigint; blocks: number }>): Buffer {
  const b = Buffer.alloc(8 + 16 * ranges.length);
  b.writeUInt16BE(6 + 16 * ranges.length, 0);
  b.writeUInt16BE(16 * ranges.length, 2);
  ranges.forEach((r, i) => {
    b.writeBigUInt64BE(r.lba, 8 + 16 * i);
    b.writeUInt32BE(r.blocks, 16 + 16 * i);
  });
  return b;
}

/** GET LBA STATUS (SBC-3 §5.7). */
export function getLbaStatusCdb(lba: bigint, allocationLength: number): Buffer {
  const b = cdb(C.SERVICE_ACTION_IN_16);
  b[1] = C.SAI_GET_LBA_STATUS;
  b.writeBigUInt64BE(lba, 2);
  b.writeUInt32BE(allocationLength, 10);
  return b;
}

/** REPORT TARGET PORT GROUPS (SPC-4 §6.36), asking for the extended header format. */
export function reportTargetPortGroupsCdb(allocationLength: number): Buffer {
  const b = cdb(C.MAINTENANCE_IN);
  b[1] = (0x1 << 5) | C.MI_REPORT_TARGET_PORT_GROUPS; // PARAMETER DATA FORMAT 001b: extended header
  b.writeUInt32BE(allocationLength, 6);
  return b;
}

/** REPORT LUNS (SPC-4 §6.33). */
export function reportLunsCdb(allocationLength: number): Buffer {
  const b = cdb(C.REPORT_LUNS);
  b.writeUInt32BE(allocationLength, 6);
  return b;
}

/** PERSISTENT RESERVE IN (SPC-4 §6.15). */
export function persistentReserveInCdb(serviceAction: number, allocationLength: number): Buffer {
  const b = cdb(C.PERSISTENT_RESERVE_IN);
  b[1] = serviceAction & 0x1f;
  b.writeUInt16BE(Math.min(allocationLength, 0xffff), 7);
  return b;
}

/** PERSISTENT RESERVE OUT (SPC-4 §6.16) with the basic 24-byte parameter list. */
export function persistentReserveOutCdb(serviceAction: number, type: number, parameterListLength = 24): Buffer {
  const b = cdb(C.PERSISTENT_RESERVE_OUT);
  b[1] = serviceAction & 0x1f;
  b[2] = type & 0x0f; // SCOPE 0 (LU)
  b.writeUInt32BE(parameterListLength, 5);
  return b;
}

export interface ProutParameters {
  reservationKey: bigint;
  serviceActionReservationKey: bigint;
  /** SPEC_I_PT, ALL_TG_PT, APTPL flag bits. */
  aptpl?: boolean;
  allTgPt?: boolean;
}

/** The basic PERSISTENT RESERVE OUT parameter list (SPC-4 §6.16.3). */
export function persistentReserveOutParameters(p: ProutParameters): Buffer {
  const b = Buffer.alloc(24);
  b.writeBigUInt64BE(p.reservationKey, 0);
  b.writeBigUInt64BE(p.serviceActionReservationKey, 8);
  b[20] = (p.allTgPt ? 0x04 : 0) | (p.aptpl ? 0x01 : 0);
  return b;
}

/** MODE SENSE (6) (SPC-4 §6.11) for one page, current values, block descriptors disabled. */
export function modeSense6Cdb(page: number, allocationLength = 255): Buffer {
  const b = cdb(C.MODE_SENSE_6);
  b[1] = 0x08; // DBD
  b[2] = page & 0x3f;
  b[4] = Math.min(allocationLength, 255);
  return b;
}
