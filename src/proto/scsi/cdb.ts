// SCSI CDB parsing (SPC-4 §4.2, SBC-3 §5): one parse per CDB into the fields a device server needs —
// LBA, transfer length (blocks), allocation / parameter list length, service action and the flag bits —
// for every operation code the Sheepfold target implements. Unknown opcodes parse to kind 'unknown'.
import * as C from './constants.js';

/** CDB length from the group code in the top 3 bits of the operation code (SPC-4 §4.2.5.1). */
export function cdbLength(opcode: number): number {
  const group = opcode >> 5;
  switch (group) {
    case 0:
      return 6;
    case 1:
    case 2:
      return 10;
    case 4:
      return 16;
    case 5:
      return 12;
    default:
      return 16;
  }
}

/** Block I/O CDB (READ/WRITE/VERIFY/WRITE AND VERIFY/WRITE SAME/PRE-FETCH/SYNC CACHE/COMPARE AND WRITE/ORWRITE/WRITE ATOMIC). */
export interface BlockCdb {
  kind: 'block';
  opcode: number;
  lba: bigint;
  /** NUMBER OF LOGICAL BLOCKS / TRANSFER LENGTH (0 for READ/WRITE 6 means 256). */
  blocks: number;
  /** RDPROTECT / WRPROTECT / VRPROTECT / ORPROTECT (bits 7..5 of byte 1). */
  protect: number;
  dpo: boolean;
  fua: boolean;
  /** VERIFY/WRITE AND VERIFY BYTCHK (2 bits). */
  bytchk: number;
  /** PRE-FETCH / SYNCHRONIZE CACHE IMMED. */
  immed: boolean;
  /** WRITE SAME UNMAP / ANCHOR / NDOB. */
  unmap: boolean;
  anchor: boolean;
  ndob: boolean;
  group: number;
  /** The raw flag byte (byte 1), for reserved-bit checks. */
  flags: number;
}

/** Any other implemented CDB: lengths and the service action, with the raw bytes for the rest. */
export interface OtherCdb {
  kind: 'other';
  opcode: number;
  serviceAction: number;
  /** ALLOCATION LENGTH (data-in commands) or 0. */
  allocationLength: number;
  /** PARAMETER LIST LENGTH (data-out commands) or 0. */
  parameterListLength: number;
  cdb: Buffer;
}
export interface UnknownCdb {
  kind: 'unknown';
  opcode: number;
  cdb: Buffer;
}
export type ParsedCdb = BlockCdb | OtherCdb | UnknownCdb;

function block(cdb: Buffer, lba: bigint, blocks: number, group: number): BlockCdb {
  const f = cdb[1] ?? 0;
  return {
    kind: 'block',
    opcode: cdb[0] ?? 0,
    lba,
    blocks,
    protect: f >> 5,
    dpo: (f & 0x10) !== 0,
    fua: (f & 0x08) !== 0,
    bytchk: (f >> 1) & 3,
    immed: (f & 0x02) !== 0,
    unmap: (f & 0x08) !== 0,
    anchor: (f & 0x10) !== 0,
    ndob: (f & 0x01) !== 0,
    group,
    flags: f,
  };
}

function other(cdb: Buffer, sa: number, alloc: number, plist: number): OtherCdb {
  return { kind: 'other', opcode: cdb[0] ?? 0, serviceAction: sa, allocationLength: alloc, parameterListLength: plist, cdb };
}

/** Parse a CDB (at least 16 bytes are present in an iSCSI command; shorter buffers parse what they can). */
export function parseCdb(raw: Buffer): ParsedCdb {
  const cdb = raw.length >= 16 ? raw : Buffer.concat([raw, Buffer.alloc(16 - raw.length)]);
  const op = cdb[0] ?? 0;
  const u16 = (o: number): number => cdb.readUInt16BE(o);
  const u24 = (o: number): number => cdb.readUIntBE(o, 3);
  const u32 = (o: number): number => cdb.readUInt32BE(o);
  const lba10 = (): bigint => BigInt(u32(2));
  const lba16 = (): bigint => cdb.readBigUInt64BE(2);
  switch (op) {
    case C.READ_6:
    case C.WRITE_6: {
      const b = block(cdb, BigInt(u24(1) & 0x1fffff), cdb[4] === 0 ? 256 : (cdb[4] ?? 0), 0);
      b.protect = 0;
      b.dpo = false;
      b.fua = false;
      b.flags = 0;
      return b;
    }
    case C.READ_10:
    case C.WRITE_10:
    case C.WRITE_VERIFY_10:
    case C.VERIFY_10:
    case C.PRE_FETCH_10:
    case C.SYNCHRONIZE_CACHE_10:
    case C.WRITE_SAME_10:
      return block(cdb, lba10(), u16(7), (cdb[6] ?? 0) & 0x3f);
    case C.READ_12:
    case C.WRITE_12:
    case C.WRITE_VERIFY_12:
    case C.VERIFY_12:
      return block(cdb, lba10(), u32(6), (cdb[10] ?? 0) & 0x3f);
    case C.READ_16:
    case C.WRITE_16:
    case C.WRITE_VERIFY_16:
    case C.VERIFY_16:
    case C.PRE_FETCH_16:
    case C.SYNCHRONIZE_CACHE_16:
    case C.WRITE_SAME_16:
    case C.ORWRITE_16:
      return block(cdb, lba16(), u32(10), (cdb[14] ?? 0) & 0x3f);
    case C.WRITE_ATOMIC_16:
      return block(cdb, lba16(), u16(12), (cdb[14] ?? 0) & 0x3f);
    case C.COMPARE_AND_WRITE:
      return block(cdb, lba16(), cdb[13] ?? 0, (cdb[14] ?? 0) & 0x3f);
    case C.TEST_UNIT_READY:
    case C.START_STOP_UNIT:
    case C.PREVENT_ALLOW_MEDIUM_REMOVAL:
    case C.RESERVE_6:
    case C.RELEASE_6:
    case C.READ_CAPACITY_10:
    case C.RESERVE_10:
    case C.RELEASE_10:
      return other(cdb, 0, 0, 0);
    case C.REQUEST_SENSE:
    case C.MODE_SENSE_6:
      return other(cdb, 0, cdb[4] ?? 0, 0);
    case C.INQUIRY:
      return other(cdb, 0, u16(3), 0);
    case C.MODE_SELECT_6:
      return other(cdb, 0, 0, cdb[4] ?? 0);
    case C.MODE_SENSE_10:
    case C.PERSISTENT_RESERVE_IN:
    case C.READ_DEFECT_DATA_10:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, u16(7), 0);
    case C.MODE_SELECT_10:
    case C.UNMAP:
      return other(cdb, 0, 0, u16(7));
    case C.SANITIZE:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, 0, u16(7));
    case C.PERSISTENT_RESERVE_OUT:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, 0, u32(5));
    case C.SERVICE_ACTION_IN_16:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, u32(10), 0);
    case C.REPORT_LUNS:
    case C.MAINTENANCE_IN:
    case C.READ_DEFECT_DATA_12:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, u32(6), 0);
    case C.EXTENDED_COPY:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, 0, u32(10));
    case C.RECEIVE_COPY_RESULTS:
      return other(cdb, (cdb[1] ?? 0) & 0x1f, u32(10), 0);
    default:
      return { kind: 'unknown', opcode: op, cdb };
  }
}
