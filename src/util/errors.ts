// The one base of every error Sheepfold raises on purpose. `code` is stable (an E-name): callers, front ends and
// the edge tables (NBD errno in src/nbd/errors.ts, SCSI sense in src/iscsi/scsi/sense-table.ts, SD_RES results
// in src/block/vdi.ts) switch on it, never on the message; `name` is the concrete class.
export class SheepfoldError<C extends string = string> extends Error {
  readonly code: C;
  constructor(code: C, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** True for an error Sheepfold raised on purpose, optionally with one of the given codes. */
export function isSheepfoldError(err: unknown, ...codes: string[]): err is SheepfoldError {
  return err instanceof SheepfoldError && (codes.length === 0 || codes.includes(err.code));
}
