// Every SCSI sense this target sends, built in one place: the table from BlockError codes to sense (per data
// direction), the named conditions the command engine and the session raise, and the encoder call itself
// (fixed or descriptor format, SPC-4 §4.5).
import { BlockError, type BlockErrorCode } from '../../block/device.js';
import * as C from '../../proto/scsi/constants.js';
import { encodeSense, type Sense } from '../../proto/scsi/sense.js';

/** BlockError code → sense for reads and writes, in one place. */
export const BLOCK_ERROR_SENSE: Record<BlockErrorCode, { read: Sense; write: Sense }> = {
  EIO: {
    read: { key: C.MEDIUM_ERROR, ascq: C.ASC_UNRECOVERED_READ_ERROR },
    write: { key: C.MEDIUM_ERROR, ascq: C.ASC_WRITE_ERROR },
  },
  ENOSPC: {
    read: { key: C.MEDIUM_ERROR, ascq: C.ASC_UNRECOVERED_READ_ERROR },
    write: { key: C.DATA_PROTECT, ascq: C.ASC_SPACE_ALLOC_FAILED_WRITE_PROTECT },
  },
  EROFS: {
    read: { key: C.DATA_PROTECT, ascq: C.ASC_WRITE_PROTECTED },
    write: { key: C.DATA_PROTECT, ascq: C.ASC_WRITE_PROTECTED },
  },
  EINVAL: {
    read: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_LBA_OUT_OF_RANGE },
    write: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_LBA_OUT_OF_RANGE },
  },
  ENOTSUP: {
    read: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB },
    write: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB },
  },
  ESHUTDOWN: {
    read: { key: C.NOT_READY, ascq: C.ASC_LUN_NOT_READY_MANUAL_INTERVENTION },
    write: { key: C.NOT_READY, ascq: C.ASC_LUN_NOT_READY_MANUAL_INTERVENTION },
  },
  ECONFLICT: {
    read: { key: C.ABORTED_COMMAND, ascq: C.ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR },
    write: { key: C.ABORTED_COMMAND, ascq: C.ASC_COMMANDS_CLEARED_BY_ANOTHER_INITIATOR },
  },
};

/** Map a device error to sense (a non-BlockError is an internal target failure). */
export function senseForError(err: unknown, writing: boolean): Sense {
  if (err instanceof BlockError) {
    const e = BLOCK_ERROR_SENSE[err.code];
    return writing ? e.write : e.read;
  }
  return { key: C.HARDWARE_ERROR, ascq: C.ASC_INTERNAL_TARGET_FAILURE };
}

/** Named conditions raised outside the LU's own handlers. */
export const SENSE = {
  lunNotSupported: { key: C.ILLEGAL_REQUEST, ascq: C.ASC_LUN_NOT_SUPPORTED },
  dataPhaseError: { key: C.ABORTED_COMMAND, ascq: C.ASC_DATA_PHASE_ERROR },
  internalTargetFailure: { key: C.HARDWARE_ERROR, ascq: C.ASC_INTERNAL_TARGET_FAILURE },
  /** INVALID FIELD IN CDB, pointing at `byte` of the CDB when given. */
  invalidFieldInCdb: (byte?: number): Sense =>
    byte === undefined
      ? { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB }
      : { key: C.ILLEGAL_REQUEST, ascq: C.ASC_INVALID_FIELD_IN_CDB, fieldPointer: { cd: true, byte } },
} as const;

/** The sense bytes of a condition (descriptor format when the LU's D_SENSE bit asks for it). */
export function senseBytes(sense: Sense, descriptor = false): Buffer {
  return encodeSense(sense, descriptor);
}

/** A CHECK CONDITION status with its sense data. */
export function checkCondition(sense: Sense, descriptor = false): { status: number; sense: Buffer } {
  return { status: C.SAM_STAT_CHECK_CONDITION, sense: encodeSense(sense, descriptor) };
}
