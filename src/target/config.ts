// Target configuration: the schema of the config file (a TOML subset, see toml.ts) and its translation into a
// TargetConfig. Sections: top-level keys, `[nbd]`, `[iscsi]` and repeated `[[export]]` tables. Every key is
// declared in TARGET_CONFIG_SCHEMA; anything else is an error naming FILE:LINE. Relative paths are resolved
// against the config file's directory. Front ends add their keys to the schema (the iSCSI section is open for
// the iSCSI engineer: declare keys in ISCSI_KEYS and read them from `TargetConfig.iscsi.values`).
import fs from 'node:fs';
import path from 'node:path';
import { defaultTargetId } from '../client/hello.js';
import { checkTargetId } from '../proto/sheepdog/target-id.js';
import type { NbdTlsOptions } from '../nbd/server.js';
import { parseSize } from '../util/size.js';
import { ISCSI_CONFIG_KEYS } from '../iscsi/frontend.js';
import { checkExportName, type ExportSpec } from './exports.js';
import { parseToml, TomlError, type TomlTable, type TomlValue } from './toml.js';

export type KeyType = 'string' | 'integer' | 'boolean' | 'size' | 'address' | 'path';

/** Keys allowed per section, with their types. */
export type SectionSchema = Readonly<Record<string, KeyType>>;

/** `target-id`: this target's lock identity in the cluster (docs/fencing.md §3); default: targetIdOf(). */
export const ROOT_KEYS: SectionSchema = { sheep: 'address', 'log-level': 'string', 'target-id': 'string' };

export const NBD_KEYS: SectionSchema = {
  enabled: 'boolean',
  listen: 'address',
  tls: 'string',
  'tls-cert': 'path',
  'tls-key': 'path',
  'max-in-flight': 'integer',
  'max-connections': 'integer',
};

/** Keys of `[iscsi]`; the iSCSI front end extends this. */
export const ISCSI_KEYS: Record<string, KeyType> = { ...ISCSI_CONFIG_KEYS };

export const EXPORT_KEYS: SectionSchema = {
  name: 'string',
  type: 'string',
  size: 'size',
  path: 'path',
  vdi: 'string',
  tag: 'string',
  'read-only': 'boolean',
  /** VDI exports: take the SHARED (multipath) lock instead of the exclusive one. */
  shared: 'boolean',
  description: 'string',
};

export const NBD_DEFAULT_LISTEN = '127.0.0.1:10809';

export interface NbdConfig {
  enabled: boolean;
  listen: string;
  tls: NbdTlsOptions;
  maxInFlight?: number;
  maxConnections?: number;
}

export interface TargetConfig {
  sheep?: string;
  /** Lock identity announced to sheep (HELLO); a restart with the same id takes this target's locks back. */
  targetId?: string;
  logLevel?: string;
  nbd: NbdConfig;
  /** `[iscsi]` as validated values, for the iSCSI front end to interpret. */
  iscsi?: { values: Record<string, string | number | boolean> };
  exports: ExportSpec[];
}

/** A config with defaults and no exports (what the CLI starts from without --config). */
export function defaultTargetConfig(): TargetConfig {
  return { nbd: { enabled: true, listen: NBD_DEFAULT_LISTEN, tls: { mode: 'off' } }, exports: [] };
}

/**
 * The target id of a config: `target-id` if set, else the host name plus a digest of the listen addresses,
 * the sheep gateways and the exports — the same after a restart with the same configuration, different for
 * two targets on one host (they cannot listen on the same addresses).
 */
export function targetIdOf(cfg: TargetConfig): string {
  if (cfg.targetId !== undefined) return cfg.targetId;
  const iscsi = cfg.iscsi?.values;
  return defaultTargetId([
    `nbd=${cfg.nbd.enabled ? cfg.nbd.listen : ''}`,
    `iscsi=${iscsi?.enabled === true ? String(iscsi.listen ?? '') : ''}`,
    `sheep=${cfg.sheep ?? ''}`,
    ...cfg.exports.map((e) => `export=${e.name}=${e.kind === 'vdi' ? `${e.vdi}:${e.tag ?? ''}` : e.kind}`),
  ]);
}

/** Check HOST:PORT; returns it unchanged. */
export function checkAddress(text: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (m === null || Number(m[2]) > 65535) throw new Error(`invalid address '${text}' (expected HOST:PORT)`);
  return text;
}

/** Split a checked HOST:PORT. */
export function splitAddress(text: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(text.slice(i + 1)) };
}

/** Read and validate a config file; throws TomlError naming FILE:LINE. */
export function loadTargetConfig(file: string): TargetConfig {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new Error(`cannot read config ${file}: ${err instanceof Error ? err.message : String(err)}`, {
      cause: err,
    });
  }
  return parseTargetConfig(text, file);
}

/** Validate config text (from `file`, for messages and relative paths). */
export function parseTargetConfig(text: string, file: string): TargetConfig {
  const doc = parseToml(text, file);
  const base = path.dirname(path.resolve(file));
  const cfg = defaultTargetConfig();
  for (const [name, t] of doc.tables) {
    if (name !== 'nbd' && name !== 'iscsi') {
      throw new TomlError(file, t.line, `unknown table [${name}] (expected [nbd], [iscsi] or [[export]])`);
    }
  }
  for (const [name, ts] of doc.arrays) {
    if (name !== 'export') {
      throw new TomlError(file, ts[0]?.line ?? 0, `unknown table [[${name}]] (expected [[export]])`);
    }
  }
  const root = readSection(doc.root, ROOT_KEYS, '', file, base);
  if (typeof root.sheep === 'string') cfg.sheep = root.sheep;
  if (typeof root['log-level'] === 'string') cfg.logLevel = root['log-level'];
  if (typeof root['target-id'] === 'string') {
    try {
      cfg.targetId = checkTargetId(root['target-id']);
    } catch (err) {
      throw new TomlError(file, doc.root.entries.get('target-id')?.line ?? 0, `target-id: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  const nbdT = doc.tables.get('nbd');
  if (nbdT !== undefined) {
    const v = readSection(nbdT, NBD_KEYS, 'nbd', file, base);
    if (typeof v.enabled === 'boolean') cfg.nbd.enabled = v.enabled;
    if (typeof v.listen === 'string') cfg.nbd.listen = v.listen;
    if (typeof v.tls === 'string') {
      if (v.tls !== 'off' && v.tls !== 'on' && v.tls !== 'require') {
        throw new TomlError(file, nbdT.entries.get('tls')?.line ?? nbdT.line, `tls must be "off", "on" or "require"`);
      }
      cfg.nbd.tls.mode = v.tls;
    }
    if (typeof v['tls-cert'] === 'string') cfg.nbd.tls.certFile = v['tls-cert'];
    if (typeof v['tls-key'] === 'string') cfg.nbd.tls.keyFile = v['tls-key'];
    if (cfg.nbd.tls.mode !== 'off' && (cfg.nbd.tls.certFile === undefined || cfg.nbd.tls.keyFile === undefined)) {
      throw new TomlError(file, nbdT.line, `[nbd] tls = "${cfg.nbd.tls.mode}" needs tls-cert and tls-key`);
    }
    if (typeof v['max-in-flight'] === 'number') cfg.nbd.maxInFlight = positive(v['max-in-flight'], nbdT, 'max-in-flight', file);
    if (typeof v['max-connections'] === 'number') {
      cfg.nbd.maxConnections = positive(v['max-connections'], nbdT, 'max-connections', file);
    }
  }
  const iscsiT = doc.tables.get('iscsi');
  if (iscsiT !== undefined) cfg.iscsi = { values: readSection(iscsiT, ISCSI_KEYS, 'iscsi', file, base) };

  const seen = new Set<string>();
  for (const t of doc.arrays.get('export') ?? []) {
    const spec = exportFromTable(t, file, base);
    if (seen.has(spec.name)) throw new TomlError(file, t.line, `export '${spec.name}' defined twice`);
    seen.add(spec.name);
    cfg.exports.push(spec);
  }
  return cfg;
}

function positive(n: number, t: TomlTable, key: string, file: string): number {
  if (n <= 0) throw new TomlError(file, t.entries.get(key)?.line ?? t.line, `${key} must be positive`);
  return n;
}

// Check every key of a section against its schema and convert typed values.
function readSection(
  t: TomlTable,
  schema: SectionSchema,
  section: string,
  file: string,
  base: string,
): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  const where = section === '' ? 'at top level' : `in [${section}]`;
  for (const [key, { value, line }] of t.entries) {
    const type = schema[key];
    if (type === undefined) throw new TomlError(file, line, `unknown key '${key}' ${where}`);
    out[key] = convert(value, type, key, file, line, base);
  }
  return out;
}

function convert(
  value: TomlValue,
  type: KeyType,
  key: string,
  file: string,
  line: number,
  base: string,
): string | number | boolean {
  const fail = (msg: string): never => {
    throw new TomlError(file, line, `${key}: ${msg}`);
  };
  switch (type) {
    case 'boolean':
      return typeof value === 'boolean' ? value : fail('expected true or false');
    case 'integer':
      return typeof value === 'number' ? value : fail('expected an integer');
    case 'string':
      return typeof value === 'string' ? value : fail('expected a "string"');
    case 'path':
      return typeof value === 'string' ? path.resolve(base, value) : fail('expected a "path"');
    case 'address':
      if (typeof value !== 'string') return fail('expected "HOST:PORT"');
      try {
        return checkAddress(value);
      } catch (err) {
        return fail(err instanceof Error ? err.message : String(err));
      }
    case 'size':
      if (typeof value === 'number') return value;
      if (typeof value !== 'string') return fail('expected a size like "1G" or a byte count');
      try {
        return parseSize(value);
      } catch (err) {
        return fail(err instanceof Error ? err.message : String(err));
      }
  }
}

function exportFromTable(t: TomlTable, file: string, base: string): ExportSpec {
  const v = readSection(t, EXPORT_KEYS, 'export', file, base);
  const fail = (msg: string, key?: string): never => {
    throw new TomlError(file, (key !== undefined ? t.entries.get(key)?.line : undefined) ?? t.line, msg);
  };
  const name = typeof v.name === 'string' ? v.name : fail('[[export]] needs name');
  try {
    checkExportName(name);
  } catch (err) {
    fail(err instanceof Error ? err.message : String(err), 'name');
  }
  const type = typeof v.type === 'string' ? v.type : fail(`export '${name}' needs type = "mem", "file" or "vdi"`);
  const readOnly = v['read-only'] === true;
  const description = typeof v.description === 'string' ? v.description : undefined;
  const only = (allowed: string[]): void => {
    for (const k of t.entries.keys()) {
      if (!['name', 'type', 'read-only', 'description', ...allowed].includes(k)) {
        fail(`key '${k}' does not apply to a ${type} export`, k);
      }
    }
  };
  const common = { name, readOnly, ...(description !== undefined ? { description } : {}) };
  switch (type) {
    case 'mem': {
      only(['size']);
      const size = typeof v.size === 'number' ? v.size : fail(`mem export '${name}' needs size`);
      if (size <= 0 || size % 512 !== 0) fail('size must be a positive multiple of 512', 'size');
      return { kind: 'mem', size, ...common };
    }
    case 'file': {
      only(['path', 'size']);
      const p = typeof v.path === 'string' ? v.path : fail(`file export '${name}' needs path`);
      if (typeof v.size === 'number') {
        if (v.size <= 0 || v.size % 512 !== 0) fail('size must be a positive multiple of 512', 'size');
        return { kind: 'file', path: p, size: v.size, ...common };
      }
      return { kind: 'file', path: p, ...common };
    }
    case 'vdi': {
      only(['vdi', 'tag', 'shared']);
      const vdi = typeof v.vdi === 'string' ? v.vdi : name;
      const shared = v.shared === true ? { shared: true } : {};
      return typeof v.tag === 'string' ? { kind: 'vdi', vdi, tag: v.tag, ...common, ...shared } : { kind: 'vdi', vdi, ...common, ...shared };
    }
    default:
      return fail(`unknown export type '${type}' (expected "mem", "file" or "vdi")`, 'type');
  }
}
