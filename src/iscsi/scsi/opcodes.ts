// REPORT SUPPORTED OPERATION CODES and REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 §6.35, §6.36):
// the table of commands this LU implements, with CDB usage bitmaps (which CDB bits the device server looks at).
import * as C from '../../proto/scsi/constants.js';

interface OpEntry {
  op: number;
  sa?: number;
  /** CDB usage data; byte 0 is the opcode. */
  usage: number[];
}

const ctl = 0x07;
const rw10 = (op: number, f: number): number[] => [op, f, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, ctl];
const rw12 = (op: number, f: number): number[] => [op, f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, ctl];
const rw16 = (op: number, f: number): number[] => [op, f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, ctl];

const OPS: OpEntry[] = [
  { op: C.TEST_UNIT_READY, usage: [0x00, 0, 0, 0, 0, ctl] },
  { op: C.REQUEST_SENSE, usage: [0x03, 0x01, 0, 0, 0xff, ctl] },
  { op: C.READ_6, usage: [0x08, 0x1f, 0xff, 0xff, 0xff, ctl] },
  { op: C.WRITE_6, usage: [0x0a, 0x1f, 0xff, 0xff, 0xff, ctl] },
  { op: C.INQUIRY, usage: [0x12, 0x01, 0xff, 0xff, 0xff, ctl] },
  { op: C.MODE_SELECT_6, usage: [0x15, 0x11, 0, 0, 0xff, ctl] },
  { op: C.RESERVE_6, usage: [0x16, 0, 0, 0, 0, ctl] },
  { op: C.RELEASE_6, usage: [0x17, 0, 0, 0, 0, ctl] },
  { op: C.MODE_SENSE_6, usage: [0x1a, 0x08, 0xff, 0xff, 0xff, ctl] },
  { op: C.START_STOP_UNIT, usage: [0x1b, 0x01, 0, 0x0f, 0xf7, ctl] },
  { op: C.PREVENT_ALLOW_MEDIUM_REMOVAL, usage: [0x1e, 0, 0, 0, 0x03, ctl] },
  { op: C.READ_CAPACITY_10, usage: [0x25, 0, 0, 0, 0, 0, 0, 0, 0, ctl] },
  { op: C.READ_10, usage: rw10(C.READ_10, 0x18) },
  { op: C.WRITE_10, usage: rw10(C.WRITE_10, 0x18) },
  { op: C.WRITE_VERIFY_10, usage: rw10(C.WRITE_VERIFY_10, 0x12) },
  { op: C.VERIFY_10, usage: rw10(C.VERIFY_10, 0x16) },
  { op: C.PRE_FETCH_10, usage: rw10(C.PRE_FETCH_10, 0x02) },
  { op: C.SYNCHRONIZE_CACHE_10, usage: rw10(C.SYNCHRONIZE_CACHE_10, 0x02) },
  { op: C.READ_DEFECT_DATA_10, usage: [0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, ctl] },
  { op: C.WRITE_SAME_10, usage: rw10(C.WRITE_SAME_10, 0x08) },
  { op: C.UNMAP, usage: [0x42, 0, 0, 0, 0, 0, 0x3f, 0xff, 0xff, ctl] },
  ...[C.SANITIZE_OVERWRITE, C.SANITIZE_BLOCK_ERASE, C.SANITIZE_CRYPTO_ERASE, C.SANITIZE_EXIT_FAILURE_MODE].map((sa) => ({
    op: C.SANITIZE,
    sa,
    usage: [0x48, 0xa0 | sa, 0, 0, 0, 0, 0, 0xff, 0xff, ctl],
  })),
  { op: C.MODE_SELECT_10, usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, ctl] },
  { op: C.RESERVE_10, usage: [0x56, 0, 0, 0, 0, 0, 0, 0, 0, ctl] },
  { op: C.RELEASE_10, usage: [0x57, 0, 0, 0, 0, 0, 0, 0, 0, ctl] },
  { op: C.MODE_SENSE_10, usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, ctl] },
  ...[0, 1, 2, 3].map((sa) => ({ op: C.PERSISTENT_RESERVE_IN, sa, usage: [0x5e, sa, 0, 0, 0, 0, 0, 0xff, 0xff, ctl] })),
  ...[0, 1, 2, 3, 4, 5, 6].map((sa) => ({
    op: C.PERSISTENT_RESERVE_OUT,
    sa,
    usage: [0x5f, sa, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, ctl],
  })),
  { op: C.EXTENDED_COPY, sa: C.XCOPY_LID1, usage: [0x83, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl] },
  ...[C.RCR_COPY_STATUS, C.RCR_OPERATING_PARAMETERS].map((sa) => ({
    op: C.RECEIVE_COPY_RESULTS,
    sa,
    usage: [0x84, 0x1f, 0xff, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl],
  })),
  { op: C.READ_16, usage: rw16(C.READ_16, 0x18) },
  { op: C.COMPARE_AND_WRITE, usage: [0x89, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x3f, ctl] },
  { op: C.WRITE_16, usage: rw16(C.WRITE_16, 0x18) },
  { op: C.ORWRITE_16, usage: rw16(C.ORWRITE_16, 0x18) },
  { op: C.WRITE_VERIFY_16, usage: rw16(C.WRITE_VERIFY_16, 0x12) },
  { op: C.VERIFY_16, usage: rw16(C.VERIFY_16, 0x16) },
  { op: C.PRE_FETCH_16, usage: rw16(C.PRE_FETCH_16, 0x02) },
  { op: C.SYNCHRONIZE_CACHE_16, usage: rw16(C.SYNCHRONIZE_CACHE_16, 0x02) },
  { op: C.WRITE_SAME_16, usage: rw16(C.WRITE_SAME_16, 0x09) },
  { op: C.WRITE_ATOMIC_16, usage: [0x9c, 0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0xff, 0xff, 0x3f, ctl] },
  {
    op: C.SERVICE_ACTION_IN_16,
    sa: C.SAI_READ_CAPACITY_16,
    usage: [0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl],
  },
  {
    op: C.SERVICE_ACTION_IN_16,
    sa: C.SAI_GET_LBA_STATUS,
    usage: [0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, ctl],
  },
  { op: C.REPORT_LUNS, usage: [0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl] },
  {
    op: C.MAINTENANCE_IN,
    sa: C.MI_REPORT_SUPPORTED_OPERATION_CODES,
    usage: [0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, ctl],
  },
  {
    op: C.MAINTENANCE_IN,
    sa: C.MI_REPORT_SUPPORTED_TASK_MANAGEMENT_FUNCTIONS,
    usage: [0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl],
  },
  { op: C.READ_12, usage: rw12(C.READ_12, 0x18) },
  { op: C.WRITE_12, usage: rw12(C.WRITE_12, 0x18) },
  { op: C.WRITE_VERIFY_12, usage: rw12(C.WRITE_VERIFY_12, 0x12) },
  { op: C.VERIFY_12, usage: rw12(C.VERIFY_12, 0x16) },
  { op: C.READ_DEFECT_DATA_12, usage: [0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, ctl] },
];

const hasSa = (op: number): boolean => OPS.some((e) => e.op === op && e.sa !== undefined);

/** Command timeouts descriptor (no timeouts reported). */
function timeouts(): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16BE(10, 0);
  return b;
}

/** The parameter data for a REPORT SUPPORTED OPERATION CODES CDB, or undefined for an invalid CDB field. */
export function reportSupportedOpcodes(cdb: Buffer): Buffer | undefined {
  const rctd = ((cdb[2] ?? 0) & 0x80) !== 0;
  const opt = (cdb[2] ?? 0) & 0x07;
  const reqOp = cdb[3] ?? 0;
  const reqSa = cdb.readUInt16BE(4);
  if (opt === 0) {
    const descs = OPS.map((e) => {
      const d = Buffer.alloc(8);
      d[0] = e.op;
      d.writeUInt16BE(e.sa ?? 0, 2);
      d[5] = (rctd ? 0x02 : 0) | (e.sa !== undefined ? 0x01 : 0);
      d.writeUInt16BE(e.usage.length, 6);
      return rctd ? Buffer.concat([d, timeouts()]) : d;
    });
    const body = Buffer.concat(descs);
    const h = Buffer.alloc(4);
    h.writeUInt32BE(body.length, 0);
    return Buffer.concat([h, body]);
  }
  let entry: OpEntry | undefined;
  if (opt === 1) {
    if (hasSa(reqOp)) return undefined;
    entry = OPS.find((e) => e.op === reqOp);
  } else if (opt === 2) {
    if (!hasSa(reqOp) && OPS.some((e) => e.op === reqOp)) return undefined;
    entry = OPS.find((e) => e.op === reqOp && e.sa === reqSa);
  } else if (opt === 3) {
    entry = OPS.find((e) => e.op === reqOp && (e.sa === undefined || e.sa === reqSa));
  } else return undefined;
  if (!entry) {
    const b = Buffer.alloc(4);
    b[1] = 0x01; // not supported
    return b;
  }
  const h = Buffer.alloc(4);
  h[1] = (rctd ? 0x80 : 0) | 0x03;
  h.writeUInt16BE(entry.usage.length, 2);
  return Buffer.concat([h, Buffer.from(entry.usage), ...(rctd ? [timeouts()] : [])]);
}

/** REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS data (REPD selects the 16-byte extended format). */
export function reportSupportedTmf(repd: boolean): Buffer {
  const b = Buffer.alloc(repd ? 16 : 4);
  b[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02; // ATS, ATSS, CTSS, LURS, TRS
  if (repd) b[3] = 0x0c;
  return b;
}
