// The journal store over CrashFs: group commit (one sync for many writes), reads of data still in the log,
// replay after a power cut, a full log that makes writers wait, a damaged record behind later synced batches
// never applied (its object reads EIO) while a torn last batch is simply dropped, a damaged record whose
// length is unknown refusing the open, disk full on the log device and on the object disk, versions kept
// durably, per-block checksums on the written-back files, and the store kind chosen for a directory.
import fs_ from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SD_RES_EIO, SD_RES_NO_OBJ, SD_RES_NO_SPACE } from '../../../../src/proto/sheepdog/constants.js';
import { componentLogger } from '../../../../src/obs/log.js';
import { CrashFs } from '../../../../src/sheep/store/crashfs.js';
import { JournalStore, type JournalStoreOptions } from '../../../../src/sheep/store/journal.js';
import { detectStoreKind, openStoreKind } from '../../../../src/sheep/store/select.js';
import { DATA_START, REC_ALIGN, REC_HEADER } from '../../../../src/sheep/store/wal.js';

const OID = 0x007c2b2500000003n;
const SIZE = 64 * 1024;
const WAL = '/s/journal/wal';
/** The version test writes carry (what versions mean is tested elsewhere). */
const V = { epoch: 1, gen: 1, current: 1 };
const log = componentLogger('journal-test').child({}, { level: 'silent' });

async function open(fs: CrashFs, opts: JournalStoreOptions = {}): Promise<JournalStore> {
  const s = new JournalStore('/s', { fs, log, journalBytes: 1 << 20, checkpointIntervalMs: 60_000, ...opts });
  await s.open();
  return s;
}

/** Overwrite bytes of a file behind the store's back. */
async function damage(fs: CrashFs, file: string, pos: number, bytes: Buffer): Promise<void> {
  const f = await fs.open(file, 'r+');
  await f.write(bytes, 0, bytes.length, pos);
  await f.close();
}

/** Offsets of the records in the log whose payload starts with `tag` (a 4 KiB block filled with it). */
function recordsWith(fs: CrashFs, tag: number): number[] {
  const wal = fs.peek(WAL)!;
  const out: number[] = [];
  for (let at = DATA_START; at + REC_HEADER + 8 <= wal.length; at += REC_ALIGN) {
    if (wal.readUInt32LE(at) === 0x524a4653 && wal.subarray(at + REC_HEADER, at + REC_HEADER + 8).every((b) => b === tag)) out.push(at);
  }
  return out;
}

describe('JournalStore', () => {
  it('covers concurrent writes with one sync, serves them from the log before write-back, replays them after a power cut', async () => {
    const fs = new CrashFs();
    const s = await open(fs);
    await s.create(OID, SIZE, Buffer.alloc(0), 0, V);
    const before = s.walStats.batches;
    await Promise.all(Array.from({ length: 16 }, (_, i) => s.write(OID, Buffer.alloc(4096, i + 1), i * 4096, V)));
    // 16 writes issued together: far fewer batches (syncs) than writes.
    expect(s.walStats.batches - before).toBeLessThanOrEqual(2);
    for (let i = 0; i < 16; i++) expect((await s.read(OID, i * 4096, 4096)).equals(Buffer.alloc(4096, i + 1))).toBe(true);
    // Power cut now: only what was synced survives; nothing was checkpointed, so everything comes from the log.
    const crashed = fs.crashAt(fs.clock - 1, 'synced');
    const r = await open(crashed);
    expect(r.stats.replayed).toBeGreaterThanOrEqual(17);
    for (let i = 0; i < 16; i++) expect((await r.read(OID, i * 4096, 4096)).equals(Buffer.alloc(4096, i + 1))).toBe(true);
    await r.close();
    await s.close();
  });

  it('makes writers wait for a checkpoint when the log is full, and loses nothing', async () => {
    const fs = new CrashFs();
    // 64 KiB of log: about a dozen 4 KiB records.
    const s = await open(fs, { journalBytes: 64 * 1024 + DATA_START });
    for (let o = 0n; o < 4n; o++) await s.create(OID + o, SIZE, Buffer.alloc(0), 0, V);
    const want = new Map<string, number>();
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => {
        const oid = OID + BigInt(i % 4);
        const off = ((i * 7) % 16) * 4096;
        want.set(`${oid}:${off}`, i & 0xff);
        return s.write(oid, Buffer.alloc(4096, i & 0xff), off, V);
      }),
    );
    expect(s.stats.waits).toBeGreaterThan(0);
    expect(s.stats.checkpoints).toBeGreaterThan(1);
    const check = async (t: JournalStore): Promise<void> => {
      for (const [k, v] of want) {
        const [oid, off] = k.split(':');
        expect((await t.read(BigInt(oid!), Number(off), 4096)).equals(Buffer.alloc(4096, v))).toBe(true);
      }
    };
    await check(s);
    const r = await open(fs.crashAt(fs.clock - 1, 'synced'), { journalBytes: 64 * 1024 + DATA_START });
    await check(r);
    await r.close();
    await s.close();
  });

  it('never applies a damaged record behind later synced batches: its object reads EIO; later records are applied', async () => {
    const fs = new CrashFs();
    const s = await open(fs);
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.write(OID, Buffer.alloc(4096, 0xa1), 4096, V);
    await s.write(OID + 1n, Buffer.alloc(4096, 0xb2), 8192, V);
    const crashed = fs.crashAt(fs.clock - 1, 'synced');
    const [rec] = recordsWith(crashed, 0xa1);
    expect(rec).toBeDefined();
    await damage(crashed, WAL, rec! + REC_HEADER + 100, Buffer.from([0x00]));
    const r = await open(crashed);
    expect(r.stats.badRecords).toBe(1);
    await expect(r.read(OID, 4096, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    await expect(r.hash(OID, SIZE)).rejects.toMatchObject({ result: SD_RES_EIO });
    expect((await r.read(OID + 1n, 8192, 4096)).equals(Buffer.alloc(4096, 0xb2))).toBe(true);
    // The mark is durable: a restart still refuses the object; re-creating it (repair) clears it.
    await r.close();
    const again = await open(crashed);
    await expect(again.read(OID, 0, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    await again.create(OID, SIZE, Buffer.alloc(SIZE, 7), 0, V);
    expect((await again.read(OID, 4096, 4096)).equals(Buffer.alloc(4096, 7))).toBe(true);
    await again.close();
    await s.close();
  });

  it('drops a damaged last batch (never acknowledged) and refuses to replay past a damaged header', async () => {
    const fs = new CrashFs();
    const s = await open(fs);
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.write(OID, Buffer.alloc(4096, 0xc3), 0, V);
    const torn = fs.crashAt(fs.clock - 1, 'synced');
    const [last] = recordsWith(torn, 0xc3);
    await damage(torn, WAL, last! + REC_HEADER + 5, Buffer.from([0xff]));
    const r = await open(torn);
    expect(r.stats.badRecords).toBe(0);
    expect((await r.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 1))).toBe(true);
    await r.close();

    await s.write(OID, Buffer.alloc(4096, 0xd4), 8192, V);
    const broken = fs.crashAt(fs.clock - 1, 'synced');
    const [mid] = recordsWith(broken, 0xc3);
    await damage(broken, WAL, mid! + 8, Buffer.from([0xee]));
    await expect(open(broken)).rejects.toThrow(/damaged and later synced records follow/);
    await s.close();
  });

  it('answers NO_SPACE when the log device is full, and fails the store (no further acks) when a log write fails', async () => {
    const full = new CrashFs();
    full.inject = (op, file) => (op === 'write' && file.startsWith('/j/') ? 'ENOSPC' : null);
    await expect(open(full, { journalPath: '/j/wal' })).rejects.toMatchObject({ result: SD_RES_NO_SPACE });

    const fs = new CrashFs();
    const s = await open(fs, { journalPath: '/j/wal' });
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.write(OID, Buffer.alloc(4096, 2), 0, V);
    fs.inject = (op, file) => (op === 'write' && file.startsWith('/j/') ? 'ENOSPC' : null);
    await expect(s.write(OID, Buffer.alloc(4096, 3), 4096, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    fs.inject = null;
    // Once a log write failed nothing more is acknowledged until the sheep restarts and replays.
    await expect(s.write(OID, Buffer.alloc(4096, 4), 8192, V)).rejects.toThrow(/restart the sheep/);
    await s.close();
    const r = await open(fs.crashAt(fs.clock - 1, 'synced'), { journalPath: '/j/wal' });
    expect((await r.read(OID, 0, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    const b = await r.read(OID, 4096, 4096);
    expect(b.equals(Buffer.alloc(4096, 1)) || b.equals(Buffer.alloc(4096, 3))).toBe(true);
    await r.close();
  });

  it('answers NO_SPACE for a create the object disk has no room for (nothing logged), and at the capacity limit', async () => {
    const fs = new CrashFs();
    let free = BigInt(SIZE - 1);
    fs.statfs = () => Promise.resolve({ size: 1n << 20n, free });
    const s = await open(fs, { capacityBytes: 10 * SIZE });
    await expect(s.create(OID, SIZE, Buffer.alloc(10, 2), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    expect(s.exists(OID)).toBe(false);
    expect(recordsWith(fs, 2)).toEqual([]);
    free = BigInt(SIZE);
    await s.create(OID, SIZE, Buffer.alloc(10, 2), 0, V);
    expect((await s.read(OID, 0, 10)).equals(Buffer.alloc(10, 2))).toBe(true);
    await s.close();
    const fs2 = new CrashFs();
    const c = await open(fs2, { capacityBytes: SIZE });
    await c.create(OID, SIZE, Buffer.alloc(10, 1), 0, V);
    await expect(c.create(OID + 1n, SIZE, Buffer.alloc(10, 2), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    await c.remove(OID);
    await c.create(OID + 1n, SIZE, Buffer.alloc(10, 2), 0, V);
    await c.close();
  });

  it('keeps object versions durably (create, write, setVersion) and checks written-back blocks', async () => {
    const fs = new CrashFs();
    const s = await open(fs);
    await s.create(OID, SIZE, Buffer.alloc(100, 1), 0, { epoch: 3, gen: 1, current: 1 });
    expect(s.version(OID)).toEqual({ epoch: 3, gen: 1, current: 1 });
    await s.write(OID, Buffer.alloc(4096, 2), 4096, { epoch: 3, gen: 1, current: 2 });
    await s.create(OID + 1n, SIZE, Buffer.alloc(0), 0, V);
    await s.setVersion(OID + 1n, { epoch: 4, gen: 2, current: 9 });
    expect(s.version(OID + 9n)).toBeNull();
    // Power cut before any checkpoint: versions come back from the log.
    const r = await open(fs.crashAt(fs.clock - 1, 'synced'));
    expect(r.version(OID)).toEqual({ epoch: 3, gen: 1, current: 2 });
    expect(r.version(OID + 1n)).toEqual({ epoch: 4, gen: 2, current: 9 });
    await r.close();
    // After a clean close they are in the checksum files; a flipped bit in a written-back block is EIO.
    await s.close();
    const c = await open(fs);
    expect(c.version(OID)).toEqual({ epoch: 3, gen: 1, current: 2 });
    await damage(fs, '/s/obj/007c2b2500000003', 5000, Buffer.from([0x77]));
    await expect(c.read(OID, 4096, 4096)).rejects.toMatchObject({ result: SD_RES_EIO });
    expect((await c.read(OID, 0, 100)).equals(Buffer.alloc(100, 1))).toBe(true);
    expect(c.stats.detected).toBe(1);
    await c.remove(OID);
    await expect(c.read(OID, 0, 1)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await c.close();
  });

  it('refuses another store\'s journal or a missing one', async () => {
    const fs = new CrashFs();
    const s = await open(fs);
    await s.create(OID, SIZE, Buffer.alloc(1), 0, V);
    await s.close();
    await expect(open(fs, { journalPath: '/elsewhere/wal' })).rejects.toThrow(/journal \/elsewhere\/wal is missing/);
  });
});

describe('store kind of a directory', () => {
  it('gives new stores the journal, keeps a plain store plain, refuses journal options for it', async () => {
    const dir = fs_.mkdtempSync(path.join(os.tmpdir(), 'store-kind-'));
    try {
      expect(await detectStoreKind(dir)).toBeNull();
      const plainDir = path.join(dir, 'p');
      fs_.mkdirSync(path.join(plainDir, 'obj'), { recursive: true });
      fs_.writeFileSync(path.join(plainDir, 'obj', '007c2b2500000003'), 'x');
      expect(await detectStoreKind(plainDir)).toBe('plain');
      expect((await openStoreKind({ dir: plainDir, log })).kind).toBe('plain');
      await expect(openStoreKind({ dir: plainDir, log, kind: 'journal' })).rejects.toThrow(/holds a plain store/);
      await expect(openStoreKind({ dir: plainDir, log, journalPath: '/x' })).rejects.toThrow(/need the journal store backend/);
      const newDir = path.join(dir, 'n');
      const { kind, store } = await openStoreKind({ dir: newDir, log, journalBytes: 1 << 20 });
      expect(kind).toBe('journal');
      await store.open();
      await store.close();
      expect(await detectStoreKind(newDir)).toBe('journal');
    } finally {
      fs_.rmSync(dir, { recursive: true, force: true });
    }
  });
});
