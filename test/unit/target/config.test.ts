// Target configuration: sizes, export specs, the TOML subset and the schema (errors name FILE:LINE).
import { describe, it, expect } from 'vitest';
import { parseSize, formatSize } from '../../../src/util/size.js';
import { parseExportArg, openExport } from '../../../src/target/exports.js';
import { parseToml } from '../../../src/target/toml.js';
import { parseTargetConfig } from '../../../src/target/config.js';
import { buildTargetConfig } from '../../../src/cli/target.js';

describe('parseSize', () => {
  it('parses binary suffixes exactly', () => {
    expect(parseSize('512')).toBe(512);
    expect(parseSize('4k')).toBe(4096);
    expect(parseSize('512M')).toBe(512 * 2 ** 20);
    expect(parseSize('1G')).toBe(2 ** 30);
    expect(parseSize('1GiB')).toBe(2 ** 30);
    expect(parseSize('1.5G')).toBe(1.5 * 2 ** 30);
    expect(parseSize('2T')).toBe(2 * 2 ** 40);
    expect(formatSize(2 ** 30)).toBe('1G');
    expect(formatSize(1536 * 2 ** 20)).toBe('1536M');
    expect(formatSize(4097)).toBe('4097');
  });
  it('rejects garbage and fractions of a byte', () => {
    for (const bad of ['', 'G', '1X', '-1', '0.1', '1e3', '99999999P']) expect(() => parseSize(bad)).toThrow(/size/);
  });
});

describe('parseExportArg', () => {
  it('parses mem, file and VDI specs with ,ro', () => {
    expect(parseExportArg('a=mem:1G')).toEqual({ kind: 'mem', name: 'a', size: 2 ** 30, readOnly: false });
    expect(parseExportArg('b=file:/tmp/x.img,ro')).toEqual({ kind: 'file', name: 'b', path: '/tmp/x.img', readOnly: true });
    expect(parseExportArg('c=vm1')).toEqual({ kind: 'vdi', name: 'c', vdi: 'vm1', readOnly: false });
    expect(parseExportArg('c=vm1:snap')).toEqual({ kind: 'vdi', name: 'c', vdi: 'vm1', tag: 'snap', readOnly: false });
  });
  it('rejects bad specs', () => {
    expect(() => parseExportArg('noequals')).toThrow(/NAME=/);
    expect(() => parseExportArg('a=mem:1000')).toThrow(/multiple of 512/);
    expect(() => parseExportArg('a b=mem:1M')).toThrow(/invalid export name/);
    expect(() => parseExportArg('a=file:')).toThrow(/empty file path/);
  });
  it('VDI exports need --sheep', async () => {
    await expect(openExport(parseExportArg('v=vm1'))).rejects.toThrow(/VDI exports need --sheep/);
    const e = await openExport(parseExportArg('m=mem:1M,ro'));
    expect(e.readOnly).toBe(true);
    expect(e.device.size).toBe(2 ** 20);
    await e.device.close();
  });
});

describe('TOML subset', () => {
  it('parses tables, arrays of tables, strings, integers, booleans, arrays and comments', () => {
    const doc = parseToml(
      [
        'top = "x # not a comment" # comment',
        '[nbd]',
        "listen = '127.0.0.1:1'",
        'n = 1_000',
        'on = true',
        'list = ["a", 2, false]',
        '[[export]]',
        'name = "e\\u0041\\n"',
        '[[export]]',
        'name = "f"',
      ].join('\n'),
      'f.toml',
    );
    expect(doc.root.entries.get('top')?.value).toBe('x # not a comment');
    expect(doc.tables.get('nbd')?.entries.get('n')).toEqual({ value: 1000, line: 4 });
    expect(doc.tables.get('nbd')?.entries.get('list')?.value).toEqual(['a', 2, false]);
    expect(doc.arrays.get('export')?.map((t) => t.entries.get('name')?.value)).toEqual(['eA\n', 'f']);
  });
  it('names FILE:LINE in errors', () => {
    expect(() => parseToml('a = 1\nb = bare', 'c.toml')).toThrow('c.toml:2: invalid value');
    expect(() => parseToml('a = 1\na = 2', 'c.toml')).toThrow('c.toml:2: duplicate key');
    expect(() => parseToml('[x]\n[x]', 'c.toml')).toThrow('c.toml:2: table [x] defined twice');
    expect(() => parseToml('s = "open', 'c.toml')).toThrow('c.toml:1: unterminated string');
    expect(() => parseToml('just words', 'c.toml')).toThrow('c.toml:1:');
  });
});

describe('target config schema', () => {
  const good = [
    'log-level = "warn"',
    '[nbd]',
    'listen = "127.0.0.1:10809"',
    'max-in-flight = 32',
    '[iscsi]',
    'listen = "127.0.0.1:3260"',
    '[[export]]',
    'name = "mem0"',
    'type = "mem"',
    'size = "64M"',
    '[[export]]',
    'name = "disk"',
    'type = "file"',
    'path = "disk.img"',
    'read-only = true',
  ].join('\n');

  it('builds a TargetConfig with resolved paths', () => {
    const cfg = parseTargetConfig(good, '/etc/sheepfold/t.toml');
    expect(cfg.logLevel).toBe('warn');
    expect(cfg.nbd).toMatchObject({ enabled: true, listen: '127.0.0.1:10809', maxInFlight: 32, tls: { mode: 'off' } });
    expect(cfg.iscsi?.values.listen).toBe('127.0.0.1:3260');
    expect(cfg.exports).toEqual([
      { kind: 'mem', name: 'mem0', size: 64 * 2 ** 20, readOnly: false },
      { kind: 'file', name: 'disk', path: '/etc/sheepfold/disk.img', readOnly: true },
    ]);
  });

  it('rejects unknown keys, tables and bad values with FILE:LINE', () => {
    expect(() => parseTargetConfig('[nbd]\nlisten = "a:1"\nx = 1', 't.toml')).toThrow("t.toml:3: unknown key 'x' in [nbd]");
    expect(() => parseTargetConfig('[foo]', 't.toml')).toThrow('t.toml:1: unknown table [foo]');
    expect(() => parseTargetConfig('bogus = 1', 't.toml')).toThrow("t.toml:1: unknown key 'bogus' at top level");
    expect(() => parseTargetConfig('[nbd]\nlisten = "nope"', 't.toml')).toThrow('t.toml:2: listen: invalid address');
    expect(() => parseTargetConfig('[nbd]\ntls = "maybe"', 't.toml')).toThrow('t.toml:2: tls must be');
    expect(() => parseTargetConfig('[nbd]\ntls = "on"', 't.toml')).toThrow('needs tls-cert and tls-key');
    expect(() => parseTargetConfig('[[export]]\nname = "a"\ntype = "mem"\npath = "/x"\nsize = 512', 't.toml')).toThrow(
      "t.toml:4: key 'path' does not apply to a mem export",
    );
    expect(() => parseTargetConfig('[[export]]\nname = "a"\ntype = "disk"', 't.toml')).toThrow('t.toml:3: unknown export type');
    expect(() => parseTargetConfig('[[export]]\nname = "a"\ntype = "mem"\nsize = "1X"', 't.toml')).toThrow('t.toml:4: size:');
    expect(() =>
      parseTargetConfig('[[export]]\nname = "a"\ntype = "mem"\nsize = 512\n[[export]]\nname = "a"\ntype = "mem"\nsize = 512', 't.toml'),
    ).toThrow("t.toml:5: export 'a' defined twice");
  });

  it('merges command-line flags over defaults', () => {
    const cfg = buildTargetConfig({ export: ['a=mem:1M', 'b=file:/tmp/b.img'], nbd: '127.0.0.1:1234', logLevel: 'debug' });
    expect(cfg.nbd.listen).toBe('127.0.0.1:1234');
    expect(cfg.exports.map((e) => e.name)).toEqual(['a', 'b']);
    expect(() => buildTargetConfig({ export: [] })).toThrow(/no exports/);
    expect(() => buildTargetConfig({ export: ['a=mem:1M', 'a=mem:1M'] })).toThrow(/twice/);
    expect(() => buildTargetConfig({ export: ['a=mem:1M'], nbdTls: 'require' })).toThrow(/tls-cert/);
  });
});
