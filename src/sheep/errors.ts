// Operation errors inside the sheep: each carries the SD_RES code the client sees. Handlers throw them and
// the op dispatcher maps them to the reply at one edge; anything else becomes SD_RES_EIO and is logged.

export class SdError extends Error {
  readonly result: number;
  constructor(result: number, message: string) {
    super(message);
    this.name = 'SdError';
    this.result = result;
  }
}

/** The SD_RES code carried by an error, or null if it is not an operation error. */
export function resultOf(err: unknown): number | null {
  if (err instanceof SdError) return err.result;
  if (typeof err === 'object' && err !== null && 'result' in err && typeof err.result === 'number') return err.result;
  return null;
}
