// What an export is before it is opened: the spec from `--export` or an `[[export]]` table, and what openers may
// need from the process. Types only, shared by the generic openers and the VDI opener.

export type ExportSpec =
  | { kind: 'mem'; name: string; size: number; readOnly: boolean; description?: string }
  | { kind: 'file'; name: string; path: string; size?: number; readOnly: boolean; description?: string }
  | { kind: 'vdi'; name: string; vdi: string; tag?: string; readOnly: boolean; shared?: boolean; description?: string };

export type ExportKind = ExportSpec['kind'];

/** What openers may need from the process (e.g. the sheep gateway address for VDI exports). */
export interface OpenContext {
  /** HOST:PORT of a sheep gateway (`--sheep`), if given. */
  sheep?: string;
  /** This target's lock identity (HELLO, docs/fencing.md §3), announced by VDI exports. */
  targetId?: string;
}
