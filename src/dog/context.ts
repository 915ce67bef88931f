// The per-invocation context of a dog command: the sheep client for `-a ADDR -p PORT`, output in human or
// `--json` form, and the error type commands throw (one line on stderr, dog's exit codes from exits.h).
import * as C from '../proto/sheepdog/constants.js';
import { SheepClient, SheepError, SheepNetError } from '../client/index.js';
import { toJson } from './format.js';

export const EXIT_SUCCESS = 0;
export const EXIT_FAILURE = 1;
export const EXIT_SYSFAIL = 2;
export const EXIT_EXISTS = 3;
export const EXIT_FULL = 4;
export const EXIT_MISSING = 5;
export const EXIT_USAGE = 64;

/** A command failure: `message` goes to stderr as one line, the process exits with `exitCode`. */
export class DogError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = EXIT_FAILURE, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'DogError';
    this.exitCode = exitCode;
  }
}

export interface CommonOptions {
  address?: string;
  port?: string;
  json?: boolean;
  raw?: boolean;
  verbose?: boolean;
}

export interface Output {
  write(text: string): void;
  isTTY: boolean;
}

export class DogContext {
  readonly json: boolean;
  readonly raw: boolean;
  readonly verbose: boolean;
  readonly address: string;
  readonly port: number;
  private clientInstance: SheepClient | null = null;

  constructor(
    opts: CommonOptions,
    readonly out: Output = { write: (t) => void process.stdout.write(t), isTTY: process.stdout.isTTY === true },
    readonly err: Output = { write: (t) => void process.stderr.write(t), isTTY: process.stderr.isTTY === true },
  ) {
    this.json = opts.json === true;
    this.raw = opts.raw === true;
    this.verbose = opts.verbose === true;
    this.address = opts.address ?? '127.0.0.1';
    const port = opts.port === undefined ? C.SD_LISTEN_PORT : Number(opts.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new DogError(`invalid port '${opts.port}'`, EXIT_USAGE);
    this.port = port;
  }

  /** The client for the sheep given by -a/-p (no failover: dog talks to one sheep and fails fast). */
  get client(): SheepClient {
    if (this.clientInstance === null) {
      const host = this.address.includes(':') ? `[${this.address}]` : this.address;
      this.clientInstance = new SheepClient({
        gateways: `${host}:${this.port}`,
        reconnectTimeoutMs: 0,
        maxResends: 1,
        poolSize: 2,
        requestTimeoutMs: 120_000,
      });
    }
    return this.clientInstance;
  }

  /** Print the JSON value (with --json) or the human text. */
  output(json: unknown, human: string | (() => string)): void {
    if (this.json) this.out.write(`${toJson(json)}\n`);
    else this.out.write(typeof human === 'string' ? human : human());
  }

  close(): void {
    this.clientInstance?.close();
  }
}

/** Exit code and one-line message for any error a command threw. */
export function describeFailure(err: unknown): { message: string; exitCode: number } {
  if (err instanceof DogError) return { message: err.message, exitCode: err.exitCode };
  if (err instanceof SheepNetError) return { message: err.message, exitCode: EXIT_SYSFAIL };
  if (err instanceof SheepError) {
    switch (err.result) {
      case C.SD_RES_VDI_EXIST:
        return { message: err.message, exitCode: EXIT_EXISTS };
      case C.SD_RES_NO_SPACE:
      case C.SD_RES_FULL_VDI:
        return { message: err.message, exitCode: EXIT_FULL };
      case C.SD_RES_WAIT_FOR_FORMAT:
      case C.SD_RES_WAIT_FOR_JOIN:
      case C.SD_RES_SHUTDOWN:
        return { message: err.message, exitCode: EXIT_SYSFAIL };
      default:
        return { message: err.message, exitCode: EXIT_FAILURE };
    }
  }
  return { message: err instanceof Error ? err.message : String(err), exitCode: EXIT_FAILURE };
}
