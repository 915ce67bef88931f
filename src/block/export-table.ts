// The seam between the target process and its front ends (NBD, iSCSI): the target opens every export once into
// an ExportTable and hands the same table to each front end; a front end serves it until stop().
import type { BlockDevice } from './device.js';

/** One exported device as every front end sees it. */
export interface ExportEntry {
  /** Export name (NBD export name; iSCSI derives its target/LUN names from it). */
  readonly name: string;
  readonly device: BlockDevice;
  /** True if the export refuses writes (the device's own flag or configuration). */
  readonly readOnly: boolean;
  /** Human description (NBD_INFO_DESCRIPTION, logs). */
  readonly description: string;
}

/** Exports by name, in configuration order (the first is the NBD default export for an empty name). */
export type ExportTable = ReadonlyMap<string, ExportEntry>;

/** A protocol front end of the target. */
export interface Frontend {
  /** Short protocol name used in logs and the ready line (`nbd`, `iscsi`). */
  readonly name: string;
  /** Start listening; resolves with the bound address as HOST:PORT. */
  start(): Promise<string>;
  /** Stop accepting, let in-flight requests finish, close every connection. */
  stop(): Promise<void>;
}
