// iSCSI PDU codec (RFC 7143 §11): typed views of every PDU an initiator or a target sends, decoded from and
// encoded to the 48-byte Basic Header Segment. Data segments and AHS travel beside the BHS, never copied here.
// Field offsets follow the RFC's figures; every multi-byte field is big-endian. LUN is the raw 8-byte field.
import {
  BHS_SIZE,
  ISCSI_FLAG_CMD_ATTR_MASK,
  ISCSI_FLAG_CMD_READ,
  ISCSI_FLAG_CMD_WRITE,
  ISCSI_FLAG_CONTINUE,
  ISCSI_FLAG_FINAL,
  ISCSI_OP_ASYNC_EVENT,
  ISCSI_OP_IMMEDIATE,
  ISCSI_OP_LOGIN,
  ISCSI_OP_LOGIN_RSP,
  ISCSI_OP_LOGOUT,
  ISCSI_OP_LOGOUT_RSP,
  ISCSI_OP_NOOP_IN,
  ISCSI_OP_NOOP_OUT,
  ISCSI_OP_R2T,
  ISCSI_OP_REJECT,
  ISCSI_OP_SCSI_CMD,
  ISCSI_OP_SCSI_CMD_RSP,
  ISCSI_OP_SCSI_DATA_IN,
  ISCSI_OP_SCSI_DATA_OUT,
  ISCSI_OP_SCSI_TMFUNC,
  ISCSI_OP_SCSI_TMFUNC_RSP,
  ISCSI_OP_SNACK,
  ISCSI_OP_TEXT,
  ISCSI_OP_TEXT_RSP,
  ISCSI_OPCODE_MASK,
} from './constants.js';
import { SheepfoldError } from '../../util/errors.js';

/** Offsets common to every BHS (§11.2.1). */
export const BHS_OPCODE = 0;
export const BHS_FLAGS = 1;
export const BHS_TOTAL_AHS_LENGTH = 4;
export const BHS_DATA_SEGMENT_LENGTH = 5;
export const BHS_LUN = 8;
export const BHS_ITT = 16;

export interface NopOut {
  kind: 'nop-out';
  immediate: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
  data: Buffer;
}
export interface ScsiCommand {
  kind: 'scsi-cmd';
  immediate: boolean;
  final: boolean;
  read: boolean;
  write: boolean;
  attr: number;
  lun: bigint;
  itt: number;
  expectedDataTransferLength: number;
  cmdSN: number;
  expStatSN: number;
  /** The 16-byte CDB field (an extended CDB AHS, if any, is in `ahs`). */
  cdb: Buffer;
  ahs: Buffer;
  data: Buffer;
}
export interface TaskMgmtRequest {
  kind: 'tmf-req';
  immediate: boolean;
  func: number;
  lun: bigint;
  itt: number;
  referencedTaskTag: number;
  cmdSN: number;
  expStatSN: number;
  refCmdSN: number;
  expDataSN: number;
}
export interface LoginRequest {
  kind: 'login-req';
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionMin: number;
  /** 48-bit ISID (type/A, B, C, D fields together). */
  isid: number;
  tsih: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
  data: Buffer;
}
export interface TextRequest {
  kind: 'text-req';
  immediate: boolean;
  final: boolean;
  cont: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  cmdSN: number;
  expStatSN: number;
  data: Buffer;
}
export interface DataOut {
  kind: 'data-out';
  final: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  expStatSN: number;
  dataSN: number;
  bufferOffset: number;
  data: Buffer;
}
export interface LogoutRequest {
  kind: 'logout-req';
  immediate: boolean;
  reason: number;
  itt: number;
  cid: number;
  cmdSN: number;
  expStatSN: number;
}
export interface Snack {
  kind: 'snack';
  type: number;
  lun: bigint;
  itt: number;
  ttt: number;
  expStatSN: number;
  begRun: number;
  runLength: number;
}

/** Fields every target PDU carries in the same place (StatSN at 24, ExpCmdSN 28, MaxCmdSN 32). */
interface TargetSeq {
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}
export interface NopIn extends TargetSeq {
  kind: 'nop-in';
  lun: bigint;
  itt: number;
  ttt: number;
  data: Buffer;
}
export interface ScsiResponse extends TargetSeq {
  kind: 'scsi-rsp';
  /** o/u/O/U flags (byte 1 low bits). */
  flags: number;
  response: number;
  status: number;
  itt: number;
  snackTag: number;
  expDataSN: number;
  bidiResidualCount: number;
  residualCount: number;
  data: Buffer;
}
export interface TaskMgmtResponse extends TargetSeq {
  kind: 'tmf-rsp';
  response: number;
  itt: number;
}
export interface LoginResponse extends TargetSeq {
  kind: 'login-rsp';
  transit: boolean;
  cont: boolean;
  csg: number;
  nsg: number;
  versionMax: number;
  versionActive: number;
  isid: number;
  tsih: number;
  itt: number;
  statusClass: number;
  statusDetail: number;
  data: Buffer;
}
export interface TextResponse extends TargetSeq {
  kind: 'text-rsp';
  final: boolean;
  cont: boolean;
  lun: bigint;
  itt: number;
  ttt: number;
  data: Buffer;
}
export interface DataIn extends TargetSeq {
  kind: 'data-in';
  /** F, A, O, U, S flag bits (byte 1). */
  flags: number;
  status: number;
  lun: bigint;
  itt: number;
  ttt: number;
  dataSN: number;
  bufferOffset: number;
  residualCount: number;
  data: Buffer;
}
export interface LogoutResponse extends TargetSeq {
  kind: 'logout-rsp';
  response: number;
  itt: number;
  time2Wait: number;
  time2Retain: number;
}
export interface R2T extends TargetSeq {
  kind: 'r2t';
  lun: bigint;
  itt: number;
  ttt: number;
  r2tSN: number;
  bufferOffset: number;
  desiredDataTransferLength: number;
}
export interface AsyncMessage extends TargetSeq {
  kind: 'async';
  lun: bigint;
  asyncEvent: number;
  asyncVCode: number;
  parameter1: number;
  parameter2: number;
  parameter3: number;
  data: Buffer;
}
export interface Reject extends TargetSeq {
  kind: 'reject';
  reason: number;
  dataSN: number;
  /** The offending BHS (plus digest if any). */
  data: Buffer;
}

export type InitiatorPdu =
  | NopOut
  | ScsiCommand
  | TaskMgmtRequest
  | LoginRequest
  | TextRequest
  | DataOut
  | LogoutRequest
  | Snack;
export type TargetPdu =
  | NopIn
  | ScsiResponse
  | TaskMgmtResponse
  | LoginResponse
  | TextResponse
  | DataIn
  | LogoutResponse
  | R2T
  | AsyncMessage
  | Reject;
export type Pdu = InitiatorPdu | TargetPdu;

/** Error raised for a BHS that cannot be decoded (unknown opcode, reserved bits); the caller sends Reject. */
export class PduError extends SheepfoldError<'EBADOPCODE' | 'EBADPDU'> {}

/** The opcode (6 bits) of a BHS. */
export function bhsOpcode(bhs: Buffer): number {
  return (bhs[BHS_OPCODE] ?? 0) & ISCSI_OPCODE_MASK;
}
/** TotalAHSLength in bytes (the field counts 4-byte words). */
export function bhsAhsLength(bhs: Buffer): number {
  return (bhs[BHS_TOTAL_AHS_LENGTH] ?? 0) * 4;
}
/** DataSegmentLength (24 bits), without padding. */
export function bhsDataLength(bhs: Buffer): number {
  return bhs.readUIntBE(BHS_DATA_SEGMENT_LENGTH, 3);
}
/** Bytes of padding after a data segment of `len` bytes. */
export function pad4(len: number): number {
  return (4 - (len & 3)) & 3;
}

function u32(b: Buffer, off: number): number {
  return b.readUInt32BE(off);
}
function lun(b: Buffer): bigint {
  return b.readBigUInt64BE(BHS_LUN);
}

/** Decode a BHS (plus its AHS and data segment) into a typed PDU. */
export function decodePdu(bhs: Buffer, ahs: Buffer, data: Buffer): Pdu {
  const op = bhsOpcode(bhs);
  const immediate = ((bhs[0] ?? 0) & ISCSI_OP_IMMEDIATE) !== 0;
  const f = bhs[1] ?? 0;
  const itt = u32(bhs, BHS_ITT);
  switch (op) {
    case ISCSI_OP_NOOP_OUT:
      return { kind: 'nop-out', immediate, lun: lun(bhs), itt, ttt: u32(bhs, 20), cmdSN: u32(bhs, 24), expStatSN: u32(bhs, 28), data };
    case ISCSI_OP_SCSI_CMD:
      return {
        kind: 'scsi-cmd',
        immediate,
        final: (f & ISCSI_FLAG_FINAL) !== 0,
        read: (f & ISCSI_FLAG_CMD_READ) !== 0,
        write: (f & ISCSI_FLAG_CMD_WRITE) !== 0,
        attr: f & ISCSI_FLAG_CMD_ATTR_MASK,
        lun: lun(bhs),
        itt,
        expectedDataTransferLength: u32(bhs, 20),
        cmdSN: u32(bhs, 24),
        expStatSN: u32(bhs, 28),
        cdb: bhs.subarray(32, 48),
        ahs,
        data,
      };
    case ISCSI_OP_SCSI_TMFUNC:
      return {
        kind: 'tmf-req',
        immediate,
        func: f & 0x7f,
        lun: lun(bhs),
        itt,
        referencedTaskTag: u32(bhs, 20),
        cmdSN: u32(bhs, 24),
        expStatSN: u32(bhs, 28),
        refCmdSN: u32(bhs, 32),
        expDataSN: u32(bhs, 36),
      };
    case ISCSI_OP_LOGIN:
      return {
        kind: 'login-req',
        transit: (f & 0x80) !== 0,
        cont: (f & ISCSI_FLAG_CONTINUE) !== 0,
        csg: (f >> 2) & 3,
        nsg: f & 3,
        versionMax: bhs[2] ?? 0,
        versionMin: bhs[3] ?? 0,
        isid: bhs.readUIntBE(8, 6),
        tsih: bhs.readUInt16BE(14),
        itt,
        cid: bhs.readUInt16BE(20),
        cmdSN: u32(bhs, 24),
        expStatSN: u32(bhs, 28),
        data,
      };
    case ISCSI_OP_TEXT:
      return {
        kind: 'text-req',
        immediate,
        final: (f & ISCSI_FLAG_FINAL) !== 0,
        cont: (f & ISCSI_FLAG_CONTINUE) !== 0,
        lun: lun(bhs),
        itt,
        ttt: u32(bhs, 20),
        cmdSN: u32(bhs, 24),
        expStatSN: u32(bhs, 28),
        data,
      };
    case ISCSI_OP_SCSI_DATA_OUT:
      return {
        kind: 'data-out',
        final: (f & ISCSI_FLAG_FINAL) !== 0,
        lun: lun(bhs),
        itt,
        ttt: u32(bhs, 20),
        expStatSN: u32(bhs, 28),
        dataSN: u32(bhs, 36),
        bufferOffset: u32(bhs, 40),
        data,
      };
    case ISCSI_OP_LOGOUT:
      return { kind: 'logout-req', immediate, reason: f & 0x7f, itt, cid: bhs.readUInt16BE(20), cmdSN: u32(bhs, 24), expStatSN: u32(bhs, 28) };
    case ISCSI_OP_SNACK:
      return { kind: 'snack', type: f & 0x0f, lun: lun(bhs), itt, ttt: u32(bhs, 20), expStatSN: u32(bhs, 28), begRun: u32(bhs, 40), runLength: u32(bhs, 44) };
    default:
      return decodeTargetPdu(op, bhs, data);
  }
}

function seq(bhs: Buffer): TargetSeq {
  return { statSN: u32(bhs, 24), expCmdSN: u32(bhs, 28), maxCmdSN: u32(bhs, 32) };
}

function decodeTargetPdu(op: number, bhs: Buffer, data: Buffer): Pdu {
  const f = bhs[1] ?? 0;
  const itt = u32(bhs, BHS_ITT);
  switch (op) {
    case ISCSI_OP_NOOP_IN:
      return { kind: 'nop-in', lun: lun(bhs), itt, ttt: u32(bhs, 20), ...seq(bhs), data };
    case ISCSI_OP_SCSI_CMD_RSP:
      return {
        kind: 'scsi-rsp',
        flags: f & 0x1e,
        response: bhs[2] ?? 0,
        status: bhs[3] ?? 0,
        itt,
        snackTag: u32(bhs, 20),
        ...seq(bhs),
        expDataSN: u32(bhs, 36),
        bidiResidualCount: u32(bhs, 40),
        residualCount: u32(bhs, 44),
        data,
      };
    case ISCSI_OP_SCSI_TMFUNC_RSP:
      return { kind: 'tmf-rsp', response: bhs[2] ?? 0, itt, ...seq(bhs) };
    case ISCSI_OP_LOGIN_RSP:
      return {
        kind: 'login-rsp',
        transit: (f & 0x80) !== 0,
        cont: (f & ISCSI_FLAG_CONTINUE) !== 0,
        csg: (f >> 2) & 3,
        nsg: f & 3,
        versionMax: bhs[2] ?? 0,
        versionActive: bhs[3] ?? 0,
        isid: bhs.readUIntBE(8, 6),
        tsih: bhs.readUInt16BE(14),
        itt,
        ...seq(bhs),
        statusClass: bhs[36] ?? 0,
        statusDetail: bhs[37] ?? 0,
        data,
      };
    case ISCSI_OP_TEXT_RSP:
      return {
        kind: 'text-rsp',
        final: (f & ISCSI_FLAG_FINAL) !== 0,
        cont: (f & ISCSI_FLAG_CONTINUE) !== 0,
        lun: lun(bhs),
        itt,
        ttt: u32(bhs, 20),
        ...seq(bhs),
        data,
      };
    case ISCSI_OP_SCSI_DATA_IN:
      return {
        kind: 'data-in',
        flags: f,
        status: bhs[3] ?? 0,
        lun: lun(bhs),
        itt,
        ttt: u32(bhs, 20),
        ...seq(bhs),
        dataSN: u32(bhs, 36),
        bufferOffset: u32(bhs, 40),
        residualCount: u32(bhs, 44),
        data,
      };
    case ISCSI_OP_LOGOUT_RSP:
      return { kind: 'logout-rsp', response: bhs[2] ?? 0, itt, ...seq(bhs), time2Wait: bhs.readUInt16BE(40), time2Retain: bhs.readUInt16BE(42) };
    case ISCSI_OP_R2T:
      return {
        kind: 'r2t',
        lun: lun(bhs),
        itt,
        ttt: u32(bhs, 20),
        ...seq(bhs),
        r2tSN: u32(bhs, 36),
        bufferOffset: u32(bhs, 40),
        desiredDataTransferLength: u32(bhs, 44),
      };
    case ISCSI_OP_ASYNC_EVENT:
      return {
        kind: 'async',
        lun: lun(bhs),
        ...seq(bhs),
        asyncEvent: bhs[36] ?? 0,
        asyncVCode: bhs[37] ?? 0,
        parameter1: bhs.readUInt16BE(38),
        parameter2: bhs.readUInt16BE(40),
        parameter3: bhs.readUInt16BE(42),
        data,
      };
    case ISCSI_OP_REJECT:
      return { kind: 'reject', reason: bhs[2] ?? 0, ...seq(bhs), dataSN: u32(bhs, 36), data };
    default:
      throw new PduError('EBADOPCODE', `unknown iSCSI opcode 0x${op.toString(16)}`);
  }
}

/** Start a BHS: opcode byte, flags byte, AHS length words and DataSegmentLength filled in. */
function header(opByte: number, flags: number, dataLength: number, ahsLength = 0): Buffer {
  const b = Buffer.alloc(BHS_SIZE);
  b[0] = opByte;
  b[1] = flags;
  b[4] = ahsLength / 4;
  b.writeUIntBE(dataLength, BHS_DATA_SEGMENT_LENGTH, 3);
  return b;
}
function putSeq(b: Buffer, s: TargetSeq): void {
  b.writeUInt32BE(s.statSN >>> 0, 24);
  b.writeUInt32BE(s.expCmdSN >>> 0, 28);
  b.writeUInt32BE(s.maxCmdSN >>> 0, 32);
}
const imm = (i: boolean): number => (i ? ISCSI_OP_IMMEDIATE : 0);
const bit = (on: boolean, v: number): number => (on ? v : 0);

/**
 * Encode a PDU's 48-byte BHS. DataSegmentLength comes from `data` (and TotalAHSLength from `ahs`) where the
 * PDU has them; the caller writes AHS, data, padding and digests after it.
 */
export function encodeBhs(p: Pdu): Buffer {
  let b: Buffer;
  switch (p.kind) {
    case 'nop-out':
      b = header(ISCSI_OP_NOOP_OUT | imm(p.immediate), ISCSI_FLAG_FINAL, p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case 'scsi-cmd':
      b = header(
        ISCSI_OP_SCSI_CMD | imm(p.immediate),
        bit(p.final, ISCSI_FLAG_FINAL) | bit(p.read, ISCSI_FLAG_CMD_READ) | bit(p.write, ISCSI_FLAG_CMD_WRITE) | (p.attr & 7),
        p.data.length,
        p.ahs.length,
      );
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.expectedDataTransferLength >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      p.cdb.copy(b, 32, 0, 16);
      break;
    case 'tmf-req':
      b = header(ISCSI_OP_SCSI_TMFUNC | imm(p.immediate), ISCSI_FLAG_FINAL | (p.func & 0x7f), 0);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.referencedTaskTag >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.refCmdSN >>> 0, 32);
      b.writeUInt32BE(p.expDataSN >>> 0, 36);
      break;
    case 'login-req':
      b = header(
        ISCSI_OP_LOGIN | ISCSI_OP_IMMEDIATE,
        bit(p.transit, 0x80) | bit(p.cont, ISCSI_FLAG_CONTINUE) | ((p.csg & 3) << 2) | (p.nsg & 3),
        p.data.length,
      );
      b[2] = p.versionMax;
      b[3] = p.versionMin;
      b.writeUIntBE(p.isid, 8, 6);
      b.writeUInt16BE(p.tsih, 14);
      b.writeUInt16BE(p.cid, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case 'text-req':
      b = header(ISCSI_OP_TEXT | imm(p.immediate), bit(p.final, ISCSI_FLAG_FINAL) | bit(p.cont, ISCSI_FLAG_CONTINUE), p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case 'data-out':
      b = header(ISCSI_OP_SCSI_DATA_OUT, bit(p.final, ISCSI_FLAG_FINAL), p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      break;
    case 'logout-req':
      b = header(ISCSI_OP_LOGOUT | imm(p.immediate), ISCSI_FLAG_FINAL | (p.reason & 0x7f), 0);
      b.writeUInt16BE(p.cid, 20);
      b.writeUInt32BE(p.cmdSN >>> 0, 24);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      break;
    case 'snack':
      b = header(ISCSI_OP_SNACK, ISCSI_FLAG_FINAL | (p.type & 0x0f), 0);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      b.writeUInt32BE(p.expStatSN >>> 0, 28);
      b.writeUInt32BE(p.begRun >>> 0, 40);
      b.writeUInt32BE(p.runLength >>> 0, 44);
      break;
    case 'nop-in':
      b = header(ISCSI_OP_NOOP_IN, ISCSI_FLAG_FINAL, p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      putSeq(b, p);
      break;
    case 'scsi-rsp':
      b = header(ISCSI_OP_SCSI_CMD_RSP, ISCSI_FLAG_FINAL | (p.flags & 0x1e), p.data.length);
      b[2] = p.response;
      b[3] = p.status;
      b.writeUInt32BE(p.snackTag >>> 0, 20);
      putSeq(b, p);
      b.writeUInt32BE(p.expDataSN >>> 0, 36);
      b.writeUInt32BE(p.bidiResidualCount >>> 0, 40);
      b.writeUInt32BE(p.residualCount >>> 0, 44);
      break;
    case 'tmf-rsp':
      b = header(ISCSI_OP_SCSI_TMFUNC_RSP, ISCSI_FLAG_FINAL, 0);
      b[2] = p.response;
      putSeq(b, p);
      break;
    case 'login-rsp':
      b = header(
        ISCSI_OP_LOGIN_RSP,
        bit(p.transit, 0x80) | bit(p.cont, ISCSI_FLAG_CONTINUE) | ((p.csg & 3) << 2) | (p.nsg & 3),
        p.data.length,
      );
      b[2] = p.versionMax;
      b[3] = p.versionActive;
      b.writeUIntBE(p.isid, 8, 6);
      b.writeUInt16BE(p.tsih, 14);
      putSeq(b, p);
      b[36] = p.statusClass;
      b[37] = p.statusDetail;
      break;
    case 'text-rsp':
      b = header(ISCSI_OP_TEXT_RSP, bit(p.final, ISCSI_FLAG_FINAL) | bit(p.cont, ISCSI_FLAG_CONTINUE), p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      putSeq(b, p);
      break;
    case 'data-in':
      b = header(ISCSI_OP_SCSI_DATA_IN, p.flags & 0xc7, p.data.length);
      b[3] = p.status;
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      putSeq(b, p);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      b.writeUInt32BE(p.residualCount >>> 0, 44);
      break;
    case 'logout-rsp':
      b = header(ISCSI_OP_LOGOUT_RSP, ISCSI_FLAG_FINAL, 0);
      b[2] = p.response;
      putSeq(b, p);
      b.writeUInt16BE(p.time2Wait, 40);
      b.writeUInt16BE(p.time2Retain, 42);
      break;
    case 'r2t':
      b = header(ISCSI_OP_R2T, ISCSI_FLAG_FINAL, 0);
      b.writeBigUInt64BE(p.lun, 8);
      b.writeUInt32BE(p.ttt >>> 0, 20);
      putSeq(b, p);
      b.writeUInt32BE(p.r2tSN >>> 0, 36);
      b.writeUInt32BE(p.bufferOffset >>> 0, 40);
      b.writeUInt32BE(p.desiredDataTransferLength >>> 0, 44);
      break;
    case 'async':
      b = header(ISCSI_OP_ASYNC_EVENT, ISCSI_FLAG_FINAL, p.data.length);
      b.writeBigUInt64BE(p.lun, 8);
      putSeq(b, p);
      b[36] = p.asyncEvent;
      b[37] = p.asyncVCode;
      b.writeUInt16BE(p.parameter1, 38);
      b.writeUInt16BE(p.parameter2, 40);
      b.writeUInt16BE(p.parameter3, 42);
      b.writeUInt32BE(0xffffffff, BHS_ITT);
      return b;
    case 'reject':
      b = header(ISCSI_OP_REJECT, ISCSI_FLAG_FINAL, p.data.length);
      b[2] = p.reason;
      putSeq(b, p);
      b.writeUInt32BE(p.dataSN >>> 0, 36);
      b.writeUInt32BE(0xffffffff, BHS_ITT);
      return b;
  }
  b.writeUInt32BE(p.itt >>> 0, BHS_ITT);
  return b;
}

/** LUN number from the 8-byte LUN field (SAM-5 peripheral and flat addressing, first level only). */
export function lunNumber(lunField: bigint): number {
  const first = Number((lunField >> 48n) & 0xffffn);
  const method = first >> 14;
  return method === 0 || method === 1 ? first & 0x3fff : -1;
}
/** The 8-byte LUN field for a LUN number (peripheral addressing below 256, flat space above). */
export function lunField(n: number): bigint {
  const first = n < 256 ? n : 0x4000 | (n & 0x3fff);
  return BigInt(first) << 48n;
}
