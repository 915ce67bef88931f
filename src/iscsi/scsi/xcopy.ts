// EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 §6.3, §6.18; SPC-3 layout): block-to-block copies
// (segment descriptor 02h) between LUs named by Identification Descriptor CSCDs (E4h) that carry one of our
// NAA designators. Copies run inside the device server (read then write in 1 MiB pieces), so an initiator can
// clone ranges without moving the data over the wire.
import type { BlockDevice } from '../../block/device.js';
import * as C from '../../proto/scsi/constants.js';
import type { Sense } from '../../proto/scsi/sense.js';
import { naa6 } from './inquiry.js';

export const XCOPY_MAX_CSCD_DESCRIPTORS = 2;
export const XCOPY_MAX_SEGMENT_DESCRIPTORS = 8;
export const XCOPY_MAX_DESCRIPTOR_LIST_LENGTH = 1024;
export const XCOPY_MAX_SEGMENT_BYTES = 32 * 1024 * 1024;

const HEADER = 16;
const CSCD_IDENT = 0xe4;
const CSCD_LENGTH = 32;
const SEG_BLOCK_TO_BLOCK = 0x02;
const SEG_B2B_LENGTH = 28;

/** A copy target: the device and its block size. */
export interface CopyTarget {
  device: BlockDevice;
  blockSize: number;
}

/** Last copy status per list identifier, for RECEIVE COPY RESULTS / COPY STATUS. */
export interface CopyStatus {
  segmentsProcessed: number;
  bytes: number;
  ok: boolean;
}

type Outcome = { ok: true; status: CopyStatus; listId: number; hold: boolean } | { ok: false; sense: Sense };

const illegal = (ascq: number, byte?: number): Outcome => ({
  ok: false,
  sense: byte === undefined ? { key: C.ILLEGAL_REQUEST, ascq } : { key: C.ILLEGAL_REQUEST, ascq, fieldPointer: { cd: false, byte } },
});
const aborted = (ascq: number): Outcome => ({ ok: false, sense: { key: C.COPY_ABORTED, ascq } });

/** Resolve an Identification Descriptor CSCD (its designator) to one of our LUs. */
export type CscdResolver = (designator: Buffer) => CopyTarget | undefined;

/** Parse and run one EXTENDED COPY (LID1) parameter list. */
export async function extendedCopy(params: Buffer, resolve: CscdResolver): Promise<Outcome> {
  if (params.length === 0) return { ok: true, status: { segmentsProcessed: 0, bytes: 0, ok: true }, listId: 0, hold: false };
  if (params.length < HEADER) return illegal(C.ASC_PARAMETER_LIST_LENGTH_ERROR);
  const listId = params[0] ?? 0;
  const listIdUsage = ((params[1] ?? 0) >> 3) & 3;
  const cscdLen = params.readUInt16BE(2);
  const segLen = params.readUInt32BE(8);
  const inlineLen = params.readUInt32BE(12);
  if (HEADER + cscdLen + segLen + inlineLen > params.length) return illegal(C.ASC_PARAMETER_LIST_LENGTH_ERROR);
  if (cscdLen + segLen > XCOPY_MAX_DESCRIPTOR_LIST_LENGTH) return illegal(C.ASC_PARAMETER_LIST_LENGTH_ERROR);
  if (inlineLen !== 0) return illegal(C.ASC_INVALID_FIELD_IN_PARAMETER_LIST, 12);
  if (cscdLen % CSCD_LENGTH !== 0) return illegal(C.ASC_PARAMETER_LIST_LENGTH_ERROR);
  if (cscdLen / CSCD_LENGTH > XCOPY_MAX_CSCD_DESCRIPTORS) return illegal(C.ASC_TOO_MANY_TARGET_DESCRIPTORS);
  // Segment descriptors have their own lengths: count them before looking inside.
  const segs: Buffer[] = [];
  for (let off = HEADER + cscdLen; off < HEADER + cscdLen + segLen; ) {
    if (off + 4 > HEADER + cscdLen + segLen) return illegal(C.ASC_PARAMETER_LIST_LENGTH_ERROR);
    const len = 4 + params.readUInt16BE(off + 2);
    segs.push(params.subarray(off, off + len));
    off += len;
  }
  if (segs.length > XCOPY_MAX_SEGMENT_DESCRIPTORS) return illegal(C.ASC_TOO_MANY_SEGMENT_DESCRIPTORS);

  const targets: Array<CopyTarget | undefined> = [];
  for (let i = 0; i < cscdLen / CSCD_LENGTH; i++) {
    const d = params.subarray(HEADER + i * CSCD_LENGTH, HEADER + (i + 1) * CSCD_LENGTH);
    if (d[0] !== CSCD_IDENT) return illegal(C.ASC_UNSUPPORTED_TARGET_DESCRIPTOR_TYPE_CODE, HEADER + i * CSCD_LENGTH);
    if (((d[1] ?? 0) & 0x1f) !== C.TYPE_DISK) return illegal(C.ASC_INVALID_FIELD_IN_PARAMETER_LIST, HEADER + i * CSCD_LENGTH + 1);
    const idLen = d[7] ?? 0;
    const t = idLen <= 20 ? resolve(d.subarray(4, 8 + idLen)) : undefined;
    if (t && d.readUIntBE(29, 3) !== t.blockSize) {
      targets.push(undefined);
      continue;
    }
    targets.push(t);
  }
  for (const s of segs) {
    if (s[0] !== SEG_BLOCK_TO_BLOCK) return illegal(C.ASC_UNSUPPORTED_SEGMENT_DESCRIPTOR_TYPE_CODE);
    if (s.length !== SEG_B2B_LENGTH) return illegal(C.ASC_INVALID_FIELD_IN_PARAMETER_LIST);
  }
  let bytes = 0;
  let done = 0;
  for (const s of segs) {
    const src = targets[s.readUInt16BE(4)];
    const dst = targets[s.readUInt16BE(6)];
    if (!src || !dst) return aborted(C.ASC_COPY_TARGET_DEVICE_NOT_REACHABLE);
    const blocks = s.readUInt16BE(10);
    const srcLba = s.readBigUInt64BE(12);
    const dstLba = s.readBigUInt64BE(20);
    const len = blocks * src.blockSize;
    const srcOff = srcLba * BigInt(src.blockSize);
    const dstOff = dstLba * BigInt(dst.blockSize);
    if (srcOff + BigInt(len) > BigInt(src.device.size) || dstOff + BigInt(len) > BigInt(dst.device.size)) {
      return aborted(C.ASC_NO_ADDITIONAL_SENSE);
    }
    if (len > XCOPY_MAX_SEGMENT_BYTES) return aborted(C.ASC_NO_ADDITIONAL_SENSE);
    if (dst.device.readOnly) return { ok: false, sense: { key: C.DATA_PROTECT, ascq: C.ASC_WRITE_PROTECTED } };
    const step = 1024 * 1024;
    for (let o = 0; o < len; o += step) {
      const n = Math.min(step, len - o);
      const data = await src.device.read(Number(srcOff) + o, n);
      await dst.device.write(Number(dstOff) + o, data);
    }
    bytes += len;
    done++;
  }
  return { ok: true, status: { segmentsProcessed: done, bytes, ok: true }, listId, hold: listIdUsage !== 3 };
}

/** RECEIVE COPY RESULTS / OPERATING PARAMETERS data. */
export function copyOperatingParameters(): Buffer {
  const impl = [SEG_BLOCK_TO_BLOCK, CSCD_IDENT];
  const b = Buffer.alloc(44 + impl.length);
  b.writeUInt32BE(b.length - 4, 0);
  b[4] = 0x01; // SNLID: list identifiers are held per I_T nexus
  b.writeUInt16BE(XCOPY_MAX_CSCD_DESCRIPTORS, 8);
  b.writeUInt16BE(XCOPY_MAX_SEGMENT_DESCRIPTORS, 10);
  b.writeUInt32BE(XCOPY_MAX_DESCRIPTOR_LIST_LENGTH, 12);
  b.writeUInt32BE(XCOPY_MAX_SEGMENT_BYTES, 16);
  b.writeUInt16BE(1, 34); // TOTAL CONCURRENT COPIES
  b[36] = 1; // MAXIMUM CONCURRENT COPIES
  b[37] = 9; // DATA SEGMENT GRANULARITY: 2^9 bytes
  b[43] = impl.length;
  Buffer.from(impl).copy(b, 44);
  return b;
}

/** RECEIVE COPY RESULTS / COPY STATUS data for a finished copy. */
export function copyStatusData(s: CopyStatus): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(8, 0);
  b[4] = s.ok ? 0x01 : 0x02; // COPY MANAGER STATUS: completed without / with errors
  b.writeUInt16BE(Math.min(s.segmentsProcessed, 0xffff), 5);
  b[7] = 0x00; // TRANSFER COUNT UNITS: bytes
  b.writeUInt32BE(Math.min(s.bytes, 0xffffffff), 8);
  return b;
}

/** The CSCD designator bytes (designator header + NAA-6) this LU answers to. */
export function cscdDesignator(naaId: bigint): Buffer {
  const id = naa6(naaId);
  const h = Buffer.from([0x01, 0x03, 0x00, id.length]);
  return Buffer.concat([h, id]);
}
