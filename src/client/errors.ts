// Errors raised by the sheep client. Two families with stable codes:
// - SheepError: the sheep answered with a non-success SD_RES_* result (`result`, `resultName`, `resultMessage`);
// - SheepNetError: the transport failed (cannot connect, connection lost, timeout, client closed, or a
//   non-idempotent request whose reply was lost so its effect is unknown).
import { opName, resultMessage, resultName } from '../proto/sheepdog/index.js';
import { SheepfoldError } from '../util/errors.js';

/** The sheep answered a request with a non-success result. */
export class SheepError extends SheepfoldError<'ESHEEP'> {
  /** SD_RES_* code. */
  readonly result: number;
  readonly resultName: string;
  readonly resultMessage: string;
  readonly opcode: number;

  constructor(opcode: number, result: number, context?: string) {
    const msg = resultMessage(result);
    super('ESHEEP', context !== undefined ? `${context}: ${msg}` : `${opName(opcode)}: ${msg}`);
    this.result = result;
    this.resultName = resultName(result);
    this.resultMessage = msg;
    this.opcode = opcode;
  }
}

export type SheepNetErrorCode =
  /** no gateway accepted a connection */
  | 'ECONNECT'
  /** the connection died with the request in flight */
  | 'ECONNLOST'
  /** no reply within the request timeout */
  | 'ETIMEDOUT'
  /** the client was closed */
  | 'ECLOSED'
  /** a non-idempotent request was sent but its reply was lost: its effect is unknown */
  | 'EUNCERTAIN'
  /** the peer violated the protocol (the connection was closed) */
  | 'EPROTO';

/** A transport-level failure. */
export class SheepNetError extends SheepfoldError<SheepNetErrorCode> {
  /** Gateway address the failure concerns (`host:port` or a unix path). */
  readonly gateway: string;
  constructor(code: SheepNetErrorCode, gateway: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.gateway = gateway;
  }
}

/** Short human text for a socket errno ("connection refused"). */
export function describeSocketError(err: unknown): string {
  const code = typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : '';
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused';
    case 'ENOENT':
      return 'no such socket file';
    case 'ETIMEDOUT':
      return 'connection timed out';
    case 'EHOSTUNREACH':
      return 'host unreachable';
    case 'ENETUNREACH':
      return 'network unreachable';
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'EPIPE':
      return 'broken pipe';
    case 'EACCES':
      return 'permission denied';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'unknown host';
    default:
      return err instanceof Error ? err.message : String(err);
  }
}

/** True if `err` is a SheepError with one of the given results. */
export function isSheepResult(err: unknown, ...results: number[]): err is SheepError {
  return err instanceof SheepError && results.includes(err.result);
}
