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
  ['JournalStore', (dir, n) => track(new JournalStore(dir, { log, journalBytes: 32 << 20, ...(n === undefined ? {} : { maxOpenFiles: n }) }))],
];

/** Journal stores write back in the background: each is closed before its directory is removed. */
const journals: JournalStore[] = [];
function track(s: JournalStore): JournalStore {
  journals.push(s);
  return s;
}

/** Make the object files current (the journal store writes them back at a checkpoint; close checkpoints). */
async function settle(s: AnyStore): Promise<void> {
  if (s instanceof JournalStore) {
    await s.close();
    await s.open();
  }
}

/** The version every test write carries (what versions mean is tested in currency and recovery tests). */
const V = { epoch: 1, gen: 1, current: 1 };

const dirs: string[] = [];
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'plain-store-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  for (const s of journals.splice(0)) await s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const OID = 0x007c2b2500000003n;

describe('PlainStore versions', () => {
  it('keeps each object\'s version in its sidecar trailer, durable across a reopen', async () => {
    const dir = tmp();
    const s = new PlainStore(dir);
    await s.open();
    await s.create(OID, 8192, Buffer.alloc(10, 1), 0, { epoch: 3, gen: 1, current: 3 });
    expect(s.version(OID)).toEqual({ epoch: 3, gen: 1, current: 3 });
    await s.write(OID, Buffer.alloc(4096, 2), 0, { epoch: 4, gen: 1, current: 4 });
    await s.setVersion(OID, { epoch: 4, gen: 1, current: 6 });
    expect(s.version(OID + 1n)).toBeNull();
    await expect(s.setVersion(OID + 1n, V)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await s.close();
    // The trailer sits right after the per-block entries: 16-byte header + 2 entries of 8 bytes.
    const sc = fs.readFileSync(path.join(dir, 'csum', '007c2b2500000003'));
    expect(sc.length).toBe(16 + 2 * 8 + 16);
    expect(sc.readUInt32LE(32)).toBe(0x52564653);
    expect([sc.readUInt32LE(36), sc.readUInt32LE(40), sc.readUInt32LE(44)]).toEqual([4, 1, 6]);
    const again = new PlainStore(dir);
    await again.open();
    expect(again.version(OID)).toEqual({ epoch: 4, gen: 1, current: 6 });
    expect((await again.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    // A sidecar from before versions (no trailer) reads as version unknown, and its object stays readable.
    fs.truncateSync(path.join(dir, 'csum', '007c2b2500000003'), 32);
    await again.close();
    const old = new PlainStore(dir);
    await old.open();
    expect(old.version(OID)).toEqual({ epoch: 0, gen: 0, current: 0 });
    expect((await old.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    await old.close();
  });
});

describe.each(kinds)('%s', (_name, make) => {
  it('creates sparse full-size objects, reads holes as zeros, replaces on create', async () => {
    const s = make(tmp());
    await s.open();
    await s.create(OID, 1 << 22, Buffer.alloc(100, 7), 4096, V);
    await settle(s);
    expect(fs.statSync(path.join(s.objDir, '007c2b2500000003')).size).toBe(1 << 22);
    const r = await s.read(OID, 4000, 300);
    expect(r.subarray(0, 96).equals(Buffer.alloc(96))).toBe(true);
    expect(r.subarray(96, 196).equals(Buffer.alloc(100, 7))).toBe(true);
    expect(r.subarray(196).equals(Buffer.alloc(104))).toBe(true);
    await s.create(OID, 1 << 22, Buffer.alloc(10, 1), 0, V);
    expect((await s.read(OID, 4096, 10)).equals(Buffer.alloc(10))).toBe(true);
    expect(s.list()).toEqual([OID]);
  });

  it('copies a base object first for copy-on-write', async () => {
    const s = make(tmp());
    await s.open();
    const base = crypto.randomBytes(8192);
    await s.create(OID, 8192, Buffer.alloc(512, 0xee), 1024, V, base);
    const got = await s.read(OID, 0, 8192);
    const want = Buffer.from(base);
    want.fill(0xee, 1024, 1536);
    expect(got.equals(want)).toBe(true);
  });

  it('writes existing objects only; reads of missing ones are NO_OBJ', async () => {
    const s = make(tmp());
    await s.open();
    await expect(s.write(OID, Buffer.alloc(1), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.read(OID, 0, 1)).rejects.toBeInstanceOf(StoreError);
    await s.create(OID, 4096, Buffer.alloc(0), 0, V);
    await s.write(OID, Buffer.from('abc'), 10, V);
    expect((await s.read(OID, 9, 5)).toString('latin1')).toBe('\0abc\0');
    await s.remove(OID);
    expect(s.exists(OID)).toBe(false);
    await expect(s.remove(OID)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
  });

  it('drops leftover temporaries at open and rebuilds the object list', async () => {
    const d = tmp();
    const s = make(d);
    await s.open();
    await s.create(OID, 4096, Buffer.alloc(1, 1), 0, V);
    await s.create(OID + 1n, 4096, Buffer.alloc(1, 1), 0, V);
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
    await s.create(OID, 3 << 20, Buffer.from('hello'), 0, V);
    const want = Buffer.alloc(3 << 20);
    want.write('hello');
    expect((await s.hash(OID, 3 << 20)).equals(crypto.createHash('sha1').update(want).digest())).toBe(true);
  });

  it('serializes concurrent mutations of one object', async () => {
    const s = make(tmp());
    await s.open();
    await Promise.all([
      s.create(OID, 4096, Buffer.alloc(4096, 1), 0, V),
      s.write(OID, Buffer.alloc(10, 2), 0, V).catch(() => undefined),
      s.create(OID, 4096, Buffer.alloc(4096, 3), 0, V),
    ]);
    expect((await s.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 3))).toBe(true);
  });
});

describe.each(kinds)('%s open-file cache', (_name, make) => {
  it('never serves a replaced or removed object from a cached handle', async () => {
    const s = make(tmp(), 2);
    await s.open();
    await s.create(OID, 4096, Buffer.alloc(4096, 1), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(1);
    // A read racing a create that replaces the object.
    const [r] = await Promise.all([s.read(OID, 0, 4), s.create(OID, 4096, Buffer.alloc(4096, 2), 0, V)]);
    expect([1, 2]).toContain(r[0]);
    expect((await s.read(OID, 0, 4))[0]).toBe(2);
    await s.write(OID, Buffer.alloc(4, 3), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(3);
    // A read racing a remove: afterwards the object is gone for reads and writes.
    await Promise.all([s.read(OID, 0, 4), s.remove(OID)]);
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.write(OID, Buffer.alloc(1), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    // More objects than cache slots.
    for (let i = 0n; i < 5n; i++) await s.create(OID + i, 512, Buffer.alloc(512, Number(i) + 10), 0, V);
    for (let i = 0n; i < 5n; i++) expect((await s.read(OID + i, 0, 1))[0]).toBe(Number(i) + 10);
    await s.close();
  });
});
