// The pino root logger: JSON by default, pretty when stderr is a terminal; components take children.
// Field names are stable across the project: vdi, oid, epoch, node, conn, op, err.
import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

let root: Logger | undefined;

export interface LogOptions {
  level?: LevelWithSilent;
  /** Force pretty (true) or JSON (false); default: pretty iff stderr is a TTY. */
  pretty?: boolean;
  /** Process name put in every line as `proc`. */
  name?: string;
}

/** Create (or replace) the root logger; logs go to stderr so stdout stays free for command output. */
export function initLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? (process.env.SHEEPFOLD_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const pretty = opts.pretty ?? process.stderr.isTTY === true;
  const base = opts.name ? { proc: opts.name, pid: process.pid } : { pid: process.pid };
  root = pretty
    ? pino({
        level,
        base,
        transport: { target: 'pino-pretty', options: { destination: 2, colorize: true } },
      })
    : pino({ level, base }, pino.destination({ fd: 2, sync: false }));
  return root;
}

/** The root logger; silent until initLogger is called (library use and unit tests stay quiet). */
export function rootLogger(): Logger {
  root ??= pino({ level: process.env.SHEEPFOLD_LOG_LEVEL ?? 'silent' });
  return root;
}

/** A child logger for one component (`sheep`, `gateway`, `nbd`, `iscsi`, ...). */
export function componentLogger(component: string, fields: Record<string, unknown> = {}): Logger {
  return rootLogger().child({ component, ...fields });
}
