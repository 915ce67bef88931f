// A small TOML subset parser for target config files, so every error can name FILE:LINE.
// Supported: `# comments`, `[table]`, `[[array-of-tables]]`, `key = value` with bare keys
// ([A-Za-z0-9_-]+), values: "basic strings" (escapes \" \\ \n \t \uXXXX), 'literal strings', integers
// (with optional _ separators), true/false, and one-line arrays of those. No dotted keys, no inline tables,
// no multi-line strings, no dates. Duplicate keys and redefined tables are errors.
import { SheepfoldError } from '../util/errors.js';

export type TomlValue = string | number | boolean | TomlValue[];

/** One key with the line it came from. */
export interface TomlEntry {
  value: TomlValue;
  line: number;
}

/** One table: its header line (0 for the root) and its keys. */
export interface TomlTable {
  line: number;
  entries: Map<string, TomlEntry>;
}

export interface TomlDocument {
  root: TomlTable;
  /** `[name]` tables. */
  tables: Map<string, TomlTable>;
  /** `[[name]]` arrays of tables, in file order. */
  arrays: Map<string, TomlTable[]>;
}

export class TomlError extends SheepfoldError<'ECONFIG'> {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super('ECONFIG', `${file}:${line}: ${message}`);
  }
}

const KEY_RE = /^[A-Za-z0-9_-]+$/;

/** Parse `text` (from `file`, used in messages). */
export function parseToml(text: string, file: string): TomlDocument {
  const doc: TomlDocument = { root: { line: 0, entries: new Map() }, tables: new Map(), arrays: new Map() };
  let current = doc.root;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const lineNo = i + 1;
    const fail = (msg: string): never => {
      throw new TomlError(file, lineNo, msg);
    };
    const line = stripComment(raw, fail).trim();
    if (line === '') return;
    let m = /^\[\[\s*([^\]\s]+)\s*\]\]$/.exec(line);
    if (m !== null) {
      const name = m[1] ?? '';
      if (!KEY_RE.test(name)) fail(`invalid table name '${name}'`);
      if (doc.tables.has(name)) fail(`'${name}' is already a table, not an array of tables`);
      const t: TomlTable = { line: lineNo, entries: new Map() };
      const arr = doc.arrays.get(name) ?? [];
      arr.push(t);
      doc.arrays.set(name, arr);
      current = t;
      return;
    }
    m = /^\[\s*([^\]\s]+)\s*\]$/.exec(line);
    if (m !== null) {
      const name = m[1] ?? '';
      if (!KEY_RE.test(name)) fail(`invalid table name '${name}'`);
      if (doc.tables.has(name) || doc.arrays.has(name)) fail(`table [${name}] defined twice`);
      const t: TomlTable = { line: lineNo, entries: new Map() };
      doc.tables.set(name, t);
      current = t;
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0) fail(`expected 'key = value', '[table]' or '[[table]]'`);
    const key = line.slice(0, eq).trim();
    if (!KEY_RE.test(key)) fail(`invalid key '${key}'`);
    if (current.entries.has(key)) fail(`duplicate key '${key}'`);
    const p = new ValueParser(line.slice(eq + 1).trim(), fail);
    const value = p.value();
    p.end();
    current.entries.set(key, { value, line: lineNo });
  });
  return doc;
}

// Remove a trailing # comment that is not inside a string.
function stripComment(line: string, fail: (m: string) => never): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === '\\' && quote === '"') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  if (quote !== undefined) fail('unterminated string');
  return line;
}

class ValueParser {
  private i = 0;
  constructor(
    private readonly s: string,
    private readonly fail: (m: string) => never,
  ) {}

  end(): void {
    this.ws();
    if (this.i !== this.s.length) this.fail(`unexpected '${this.s.slice(this.i)}' after value`);
  }

  value(): TomlValue {
    this.ws();
    const c = this.s[this.i];
    if (c === undefined) return this.fail('missing value');
    if (c === '"') return this.basicString();
    if (c === "'") return this.literalString();
    if (c === '[') return this.array();
    const m = /^(true|false|[+-]?[0-9][0-9_]*)(?=$|[\s,\]])/.exec(this.s.slice(this.i));
    if (m === null) return this.fail(`invalid value '${this.s.slice(this.i)}' (strings need quotes)`);
    const tok = m[1] ?? '';
    this.i += tok.length;
    if (tok === 'true') return true;
    if (tok === 'false') return false;
    if (/__|_$|^[+-]?_/.test(tok)) this.fail(`invalid integer '${tok}'`);
    const n = Number(tok.replace(/_/g, ''));
    if (!Number.isSafeInteger(n)) this.fail(`integer '${tok}' out of range`);
    return n;
  }

  private ws(): void {
    while (this.s[this.i] === ' ' || this.s[this.i] === '\t') this.i++;
  }

  private basicString(): string {
    let out = '';
    this.i++;
    for (;;) {
      const c = this.s[this.i++];
      if (c === undefined) return this.fail('unterminated string');
      if (c === '"') return out;
      if (c !== '\\') {
        out += c;
        continue;
      }
      const e = this.s[this.i++];
      if (e === 'n') out += '\n';
      else if (e === 't') out += '\t';
      else if (e === '"' || e === '\\') out += e;
      else if (e === 'u') {
        const hex = this.s.slice(this.i, this.i + 4);
        if (!/^[0-9A-Fa-f]{4}$/.test(hex)) this.fail('invalid \\u escape');
        out += String.fromCharCode(parseInt(hex, 16));
        this.i += 4;
      } else this.fail(`invalid escape '\\${e ?? ''}'`);
    }
  }

  private literalString(): string {
    const end = this.s.indexOf("'", this.i + 1);
    if (end < 0) return this.fail('unterminated string');
    const v = this.s.slice(this.i + 1, end);
    this.i = end + 1;
    return v;
  }

  private array(): TomlValue[] {
    const out: TomlValue[] = [];
    this.i++;
    for (;;) {
      this.ws();
      if (this.s[this.i] === ']') {
        this.i++;
        return out;
      }
      out.push(this.value());
      this.ws();
      const c = this.s[this.i];
      if (c === ',') this.i++;
      else if (c !== ']') this.fail("expected ',' or ']' in array");
    }
  }
}
