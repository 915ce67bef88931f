// The initiator's error hierarchy: transport errors (the path is bad: timeout, connection lost, login refused,
// protocol violation) versus SCSI status errors (the command reached the LU and got CHECK CONDITION or another
// non-GOOD status, decoded from sense into a stable `kind`). MultipathDevice retries transport errors on another
// path; SCSI errors are classified in one table (scsiDisposition) and mapped to BlockError codes at its edge.
import * as S from '../proto/scsi/constants.js';
import { decodeSense, type Sense } from '../proto/scsi/sense.js';
import { SheepfoldError } from '../util/errors.js';

export type TransportErrorCode =
  | 'ETIMEDOUT' // a command or login got no answer in time
  | 'ECONNRESET' // the connection closed or failed while the command was outstanding
  | 'ENOTCONN' // no connection and reconnecting failed or is disabled
  | 'ELOGIN' // the target refused the login (status class/detail in the error)
  | 'EAUTH' // CHAP failed (either direction)
  | 'EPROTO' // the target broke the protocol (bad PDU, Reject, digest error)
  | 'ESHUTDOWN' // the session was closed by the caller
  | 'ETMF' // a task management function was refused
  | 'EABORTED'; // the command was aborted by ABORT TASK / LUN RESET from this initiator

/** A failure of the path or session, not of the command: the command may be retried elsewhere. */
export class IscsiTransportError extends SheepfoldError<TransportErrorCode> {
  /** Login status class and detail (ELOGIN/EAUTH). */
  readonly statusClass: number | undefined;
  readonly statusDetail: number | undefined;
  /** Login redirection (status class 1): where the target sent us. */
  readonly redirect: { host: string; port: number } | undefined;
  constructor(
    code: TransportErrorCode,
    message: string,
    opts: { cause?: unknown; statusClass?: number; statusDetail?: number; redirect?: { host: string; port: number } } = {},
  ) {
    super(code, message, { cause: opts.cause });
    this.statusClass = opts.statusClass;
    this.statusDetail = opts.statusDetail;
    this.redirect = opts.redirect;
  }
}

/** Stable classification of a non-GOOD SCSI status (SAM-5 status, SPC-4 sense key / ASC). */
export type ScsiErrorKind =
  | 'unit-attention'
  | 'not-ready'
  | 'alua-transitioning' // NOT READY 04/0A
  | 'alua-standby' // NOT READY 04/0B
  | 'alua-unavailable' // NOT READY 04/0C
  | 'medium-error'
  | 'hardware-error'
  | 'illegal-request'
  | 'lba-out-of-range'
  | 'invalid-opcode'
  | 'data-protect'
  | 'space-allocation-failed'
  | 'aborted-command'
  | 'miscompare'
  | 'reservation-conflict'
  | 'busy'
  | 'task-set-full'
  | 'task-aborted'
  | 'other';

/** A command that completed with a status other than GOOD / CONDITION MET. */
export class ScsiStatusError extends SheepfoldError<'ESCSI'> {
  readonly status: number;
  readonly sense: Sense | undefined;
  readonly kind: ScsiErrorKind;
  constructor(status: number, senseBytes: Buffer | undefined, what: string) {
    const sense = senseBytes && senseBytes.length > 0 ? decodeSense(senseBytes) : undefined;
    const kind = classifyScsi(status, sense);
    const sk = sense ? ` key=0x${sense.key.toString(16)} asc/ascq=0x${sense.ascq.toString(16).padStart(4, '0')}` : '';
    super('ESCSI', `${what}: SCSI status 0x${status.toString(16)} (${kind})${sk}`);
    this.status = status;
    this.sense = sense;
    this.kind = kind;
  }
  /** ASC (high byte of sense.ascq), or -1 without sense. */
  get asc(): number {
    return this.sense ? this.sense.ascq >> 8 : -1;
  }
}

export const ASC_ASYMMETRIC_ACCESS_STATE_CHANGED = 0x2a06;
export const ASC_IMPLICIT_ALUA_TRANSITION_FAILED = 0x2a07;
export const ASC_LUN_NOT_ACCESSIBLE_TRANSITIONING = 0x040a;
export const ASC_LUN_NOT_ACCESSIBLE_STANDBY = 0x040b;
export const ASC_LUN_NOT_ACCESSIBLE_UNAVAILABLE = 0x040c;
export const ASC_REPORTED_LUNS_DATA_CHANGED = 0x3f0e;
export const ASC_CAPACITY_DATA_CHANGED = 0x2a09;

/** One table from status + sense to a kind. */
export function classifyScsi(status: number, sense: Sense | undefined): ScsiErrorKind {
  switch (status) {
    case S.SAM_STAT_RESERVATION_CONFLICT:
      return 'reservation-conflict';
    case S.SAM_STAT_BUSY:
      return 'busy';
    case S.SAM_STAT_TASK_SET_FULL:
      return 'task-set-full';
    case S.SAM_STAT_TASK_ABORTED:
      return 'task-aborted';
    case S.SAM_STAT_CHECK_CONDITION:
      break;
    default:
      return 'other';
  }
  if (!sense) return 'other';
  switch (sense.key) {
    case S.UNIT_ATTENTION:
      return 'unit-attention';
    case S.NOT_READY:
      if (sense.ascq === ASC_LUN_NOT_ACCESSIBLE_TRANSITIONING) return 'alua-transitioning';
      if (sense.ascq === ASC_LUN_NOT_ACCESSIBLE_STANDBY) return 'alua-standby';
      if (sense.ascq === ASC_LUN_NOT_ACCESSIBLE_UNAVAILABLE) return 'alua-unavailable';
      return 'not-ready';
    case S.MEDIUM_ERROR:
      return 'medium-error';
    case S.HARDWARE_ERROR:
      return 'hardware-error';
    case S.ILLEGAL_REQUEST:
      if (sense.ascq === S.ASC_LBA_OUT_OF_RANGE) return 'lba-out-of-range';
      if (sense.ascq === S.ASC_INVALID_OPERATION_CODE) return 'invalid-opcode';
      return 'illegal-request';
    case S.DATA_PROTECT:
      return sense.ascq === S.ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT ? 'space-allocation-failed' : 'data-protect';
    case S.ABORTED_COMMAND:
      return 'aborted-command';
    case S.MISCOMPARE:
      return 'miscompare';
    case S.NO_SENSE:
    case S.RECOVERED_ERROR:
      return 'other';
    default:
      return 'other';
  }
}

/** Parse a TargetAddress value: "host:port,tpgt", "[v6]:port,tpgt" or "host" (port 3260). */
export function parseTargetAddress(v: string): { host: string; port: number; portalGroupTag: number | undefined } {
  const m = /^(\[[^\]]+\]|[^:,]+)(?::(\d+))?(?:,(\d+))?$/.exec(v);
  let host = m?.[1] ?? v;
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: m?.[2] ? Number(m[2]) : 3260, portalGroupTag: m?.[3] ? Number(m[3]) : undefined };
}

/** Parse the SCSI Response data segment: SenseLength (2 bytes) then sense data (RFC 7143 §11.4.7). */
export function senseFromResponseData(data: Buffer): Buffer | undefined {
  if (data.length < 2) return undefined;
  const len = data.readUInt16BE(0);
  return data.subarray(2, Math.min(data.length, 2 + len));
}

export { decodeSense };
