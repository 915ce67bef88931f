// The object stores (plain and journal, the same tests for both): full-size objects, durable atomic create that
// replaces, writes only to existing objects, zero-filled holes, leftover temporaries dropped at open, object
// list, SHA-1 of the whole object, versions kept across a restart.
import { afterEach, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SD_RES_NO_OBJ } from '../../../../src/proto/sheepdog/constants.js';
import { JournalStore } from '../../../../src/sheep/store/journal.js';
import { PlainStore } from '../../../../src/sheep/store/plain.js';
import { StoreError, type ObjectStore } from '../../../../src/sheep/store/store.js';
import { componentLogger } from '../../../../src/obs/log.js';

const log = componentLogger('store-test').child({}, { level: 'silent' });
type AnyStore = ObjectStore & { readonly objDir: string };
const kinds: [string, (dir: string, maxOpenFiles?: number) => AnyStore][] = [
  ['PlainStore', (dir, n) => new PlainStore(dir, { log }, n)],
  ['JournalStore', (dir, n) => new JournalStore(dir, { log, journalBytes: 32 << 20, ...(n === undefined ? {} : { maxOpenFiles: n }) })],
];

/** Make the object files current (the journal store writes them back at a checkpoint; close checkpoints). */
async function settle(s: AnyStore): Promise<void> {
  if (s instanceof JournalStore) {
    await s.close();
    await s.open();
  }
}

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'plain-store-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const OID = 0x007c2b2500000003n;

describe.each(kinds)('%s', (_name, make) => {
  it('creates sparse full-size objects, reads holes as zeros, replaces on create', async () => {
    const s = make(tmp());
    await s.open();
    await s.create(OID, 1 << 22, Buffer.alloc(100, 7), 4096);
    await settle(s);
    expect(fs.statSync(path.join(s.objDir, '007c2b2500000003')).size).toBe(1 << 22);
    const r = await s.read(OID, 4000, 300);
    expect(r.subarray(0, 96).equals(Buffer.alloc(96))).toBe(true);
    expect(r.subarray(96, 196).equals(Buffer.alloc(100, 7))).toBe(true);
    expect(r.subarray(196).equals(Buffer.alloc(104))).toBe(true);
    await s.create(OID, 1 << 22, Buffer.alloc(10, 1), 0);
    expect((await s.read(OID, 4096, 10)).equals(Buffer.alloc(10))).toBe(true);
    expect(s.list()).toEqual([OID]);
  });

  it('copies a base object first for copy-on-write', async () => {
    const s = make(tmp());
    await s.open();
    const base = crypto.randomBytes(8192);
    await s.create(OID, 8192, Buffer.alloc(512, 0xee), 1024, base);
    const got = await s.read(OID, 0, 8192);
    const want = Buffer.from(base);
    want.fill(0xee, 1024, 1536);
    expect(got.equals(want)).toBe(true);
  });

  it('writes existing objects only; reads of missing ones are NO_OBJ', async () => {
    const s = make(tmp());
    await s.open();
    await expect(s.write(OID, Buffer.alloc(1), 0)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.read(OID, 0, 1)).rejects.toBeInstanceOf(StoreError);
    await s.create(OID, 4096, Buffer.alloc(0), 0);
    await s.write(OID, Buffer.from('abc'), 10);
    expect((await s.read(OID, 9, 5)).toString('latin1')).toBe('\0abc\0');
    await s.remove(OID);
    expect(s.exists(OID)).toBe(false);
    await expect(s.remove(OID)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
  });

  it('drops leftover temporaries at open and rebuilds the object list', async () => {
    const d = tmp();
    const s = make(d);
    await s.open();
    await s.create(OID, 4096, Buffer.alloc(1, 1), 0);
    await s.create(OID + 1n, 4096, Buffer.alloc(1, 1), 0);
    fs.writeFileSync(path.join(s.objDir, '007c2b2500000009.tmp.123.4'), 'half');
    await s.close();
    const s2 = make(d);
    await s2.open();
    expect(s2.list()).toEqual([OID, OID + 1n]);
    expect(fs.readdirSync(s2.objDir).filter((n) => n.includes('.tmp'))).toEqual([]);
  });

  it('hashes the whole object zero-padded to its size', async () => {
    const s = make(tmp());
    await s.open();
    await s.create(OID, 3 << 20, Buffer.from('hello'), 0);
    const want = Buffer.alloc(3 << 20);
    want.write('hello');
    expect((await s.hash(OID, 3 << 20)).equals(crypto.createHash('sha1').update(want).digest())).toBe(true);
  });

  it('serializes concurrent mutations of one object', async () => {
    const s = make(tmp());
    await s.open();
    await Promise.all([
      s.create(OID, 4096, Buffer.alloc(4096, 1), 0),
      s.write(OID, Buffer.alloc(10, 2), 0).catch(() => undefined),
      s.create(OID, 4096, Buffer.alloc(4096, 3), 0),
    ]);
    expect((await s.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 3))).toBe(true);
  });
});

describe.each(kinds)('%s open-file cache', (_name, make) => {
  it('never serves a replaced or removed object from a cached handle', async () => {
    const s = make(tmp(), 2);
    await s.open();
    await s.create(OID, 4096, Buffer.alloc(4096, 1), 0);
    expect((await s.read(OID, 0, 4))[0]).toBe(1);
    // A read racing a create that replaces the object.
    const [r] = await Promise.all([s.read(OID, 0, 4), s.create(OID, 4096, Buffer.alloc(4096, 2), 0)]);
    expect([1, 2]).toContain(r[0]);
    expect((await s.read(OID, 0, 4))[0]).toBe(2);
    await s.write(OID, Buffer.alloc(4, 3), 0);
    expect((await s.read(OID, 0, 4))[0]).toBe(3);
    // A read racing a remove: afterwards the object is gone for reads and writes.
    await Promise.all([s.read(OID, 0, 4), s.remove(OID)]);
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.write(OID, Buffer.alloc(1), 0)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    // More objects than cache slots.
    for (let i = 0n; i < 5n; i++) await s.create(OID + i, 512, Buffer.alloc(512, Number(i) + 10), 0);
    for (let i = 0n; i < 5n; i++) expect((await s.read(OID + i, 0, 1))[0]).toBe(Number(i) + 10);
    await s.close();
  });
});
