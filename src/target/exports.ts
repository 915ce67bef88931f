// Export specs and opening them into BlockDevices. A spec comes from `--export NAME=KIND:ARG[,ro]` or from an
// `[[export]]` table of the config file. Kinds: `mem:SIZE`, `file:PATH`, and anything else is a VDI name with
// an optional `:TAG` (`NAME=VDI[:TAG][,shared]`), opened by ./vdi-export.ts through the `--sheep` gateways
// (registerExportOpener can replace any kind's opener, e.g. in tests).
import type { BlockDevice } from '../block/device.js';
import { FileDevice } from '../block/file.js';
import { MemoryDevice } from '../block/memory.js';
import { parseSize } from '../util/size.js';
import type { ExportEntry } from '../block/export-table.js';
import type { ExportKind, ExportSpec, OpenContext } from './export-spec.js';
import { openVdiExport } from './vdi-export.js';
import { SheepfoldError } from '../util/errors.js';

export type { ExportSpec, ExportKind, OpenContext } from './export-spec.js';

export type ExportOpener<K extends ExportKind = ExportKind> = (
  spec: Extract<ExportSpec, { kind: K }>,
  ctx: OpenContext,
) => Promise<BlockDevice>;

export class ExportSpecError extends SheepfoldError<'EBADEXPORT'> {
  constructor(message: string) {
    super('EBADEXPORT', message);
  }
}

const NAME_RE = /^[A-Za-z0-9._+-][A-Za-z0-9._+:-]{0,255}$/;

/** Check an export name (printable, no spaces or '=', at most 256 bytes). */
export function checkExportName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw new ExportSpecError(`invalid export name '${name}' (letters, digits, . _ + - :, at most 256)`);
  }
}

/** Parse `NAME=mem:SIZE`, `NAME=file:PATH`, `NAME=VDI[:TAG]`, each optionally followed by `,ro` (VDIs also `,shared`: multipath lock). */
export function parseExportArg(arg: string): ExportSpec {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ExportSpecError(`invalid export '${arg}' (expected NAME=mem:SIZE, NAME=file:PATH or NAME=VDI[:TAG])`);
  const name = arg.slice(0, eq);
  checkExportName(name);
  let rest = arg.slice(eq + 1);
  let readOnly = false;
  let shared = false;
  for (;;) {
    if (rest.endsWith(',ro')) {
      readOnly = true;
      rest = rest.slice(0, -3);
    } else if (rest.endsWith(',shared')) {
      shared = true;
      rest = rest.slice(0, -7);
    } else break;
  }
  if (shared && (rest.startsWith('mem:') || rest.startsWith('file:'))) {
    throw new ExportSpecError(`export '${name}': only VDI exports can be ',shared'`);
  }
  if (rest.startsWith('mem:')) {
    return { kind: 'mem', name, size: parseSizeFor(name, rest.slice(4)), readOnly };
  }
  if (rest.startsWith('file:')) {
    const path = rest.slice(5);
    if (path === '') throw new ExportSpecError(`export '${name}': empty file path`);
    return { kind: 'file', name, path, readOnly };
  }
  if (rest === '') throw new ExportSpecError(`export '${name}': nothing after '='`);
  const colon = rest.indexOf(':');
  const vdi = colon < 0 ? rest : rest.slice(0, colon);
  const tag = colon < 0 ? undefined : rest.slice(colon + 1);
  if (vdi === '' || tag === '') throw new ExportSpecError(`export '${name}': invalid VDI '${rest}'`);
  return { kind: 'vdi', name, vdi, ...(tag !== undefined ? { tag } : {}), readOnly, ...(shared ? { shared } : {}) };
}

function parseSizeFor(name: string, text: string): number {
  try {
    const n = parseSize(text);
    if (n <= 0 || n % 512 !== 0) throw new ExportSpecError(`size must be a positive multiple of 512`);
    return n;
  } catch (err) {
    throw new ExportSpecError(`export '${name}': ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Describe a spec in one short line (logs, NBD descriptions). */
export function describeSpec(s: ExportSpec): string {
  if (s.description !== undefined) return s.description;
  switch (s.kind) {
    case 'mem':
      return `memory ${s.size} bytes`;
    case 'file':
      return `file ${s.path}`;
    case 'vdi':
      return s.tag === undefined ? `VDI ${s.vdi}` : `VDI ${s.vdi} tag ${s.tag}`;
  }
}

const openers: { [K in ExportKind]?: ExportOpener<K> } = {
  mem: async (s) => new MemoryDevice({ name: s.name, size: s.size, readOnly: s.readOnly }),
  file: (s) => FileDevice.open({ name: s.name, path: s.path, size: s.size, readOnly: s.readOnly }),
  vdi: openVdiExport,
};

/** Install (or replace) the opener for one export kind — the extension point for VDI exports. */
export function registerExportOpener<K extends ExportKind>(kind: K, opener: ExportOpener<K>): void {
  (openers as Record<string, unknown>)[kind] = opener;
}

/** Open one export spec into the entry every front end serves. */
export async function openExport(spec: ExportSpec, ctx: OpenContext = {}): Promise<ExportEntry> {
  checkExportName(spec.name);
  let device: BlockDevice;
  switch (spec.kind) {
    case 'mem':
      device = await (openers.mem as ExportOpener<'mem'>)(spec, ctx);
      break;
    case 'file':
      device = await (openers.file as ExportOpener<'file'>)(spec, ctx);
      break;
    case 'vdi': {
      const open = openers.vdi;
      if (ctx.sheep === undefined) {
        throw new ExportSpecError(`export '${spec.name}': VDI exports need --sheep (VDI '${spec.vdi}')`);
      }
      if (open === undefined) {
        throw new ExportSpecError(`export '${spec.name}': VDI exports are not available in this build`);
      }
      device = await open(spec, ctx);
      break;
    }
  }
  return {
    name: spec.name,
    device,
    readOnly: spec.readOnly || device.readOnly,
    description: describeSpec(spec),
  };
}
