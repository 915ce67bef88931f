// The plain store's integrity features over an in-memory CrashFs: per-block checksums detect bit flips,
// zeroed blocks, truncation and a broken sidecar (EIO, never bad bytes), writes keep checksums in step,
// GET_HASH stays the SHA-1 of the data, the capacity limit answers NO_SPACE before writing, injected ENOSPC
// leaves nothing half-visible, scrub finds corrupt and missing objects, and CrashFs forgets unsynced data.
import { createHash } from 'node:crypto';
import fs_ from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SD_RES_EIO, SD_RES_NO_OBJ, SD_RES_NO_SPACE } from '../../../../src/proto/sheepdog/constants.js';
import { CrashFs } from '../../../../src/sheep/store/crashfs.js';
import { PlainStore } from '../../../../src/sheep/store/plain.js';
import { componentLogger } from '../../../../src/obs/log.js';

/** The version every test write carries (what versions mean is tested in currency and recovery tests). */
const V = { epoch: 1, gen: 1, current: 1 };

const OID = 0x007c2b2500000003n;
const FILE = '/s/obj/007c2b2500000003';
const SIZE = 64 * 1024;
const log = componentLogger('store-test').child({}, { level: 'silent' });

async function store(fs = new CrashFs(), opts: { capacityBytes?: number } = {}): Promise<{ s: PlainStore; fs: CrashFs }> {
  const s = new PlainStore('/s', { fs, log, ...opts });
  await s.open();
  return { s, fs };
}

/** Overwrite bytes of a file behind the store's back (a disk error). */
async function damage(fs: CrashFs, file: string, pos: number, bytes: Buffer): Promise<void> {
  const f = await fs.open(file, 'r+');
  await f.write(bytes, 0, bytes.length, pos);
  await f.close();
}

describe('PlainStore checksums', () => {
  it('serves good data and detects a bit flip, a zeroed block and truncation (EIO, counted)', async () => {
    const { s, fs } = await store();
    const data = Buffer.alloc(SIZE, 0x5a);
    await s.create(OID, SIZE, data, 0, V);
    expect((await s.read(OID, 100, 5000)).equals(data.subarray(100, 5100))).toBe(true);

    const flip = fs.peek(FILE)!.subarray(8192, 8193);
    flip[0] = flip[0]! ^ 0x10;
    await damage(fs, FILE, 8192, flip);
    await expect(s.read(OID, 8000, 400)).rejects.toMatchObject({ result: SD_RES_EIO });
    // Blocks not touched by the damage still read.
    expect((await s.read(OID, 0, 4096)).equals(data.subarray(0, 4096))).toBe(true);

    await damage(fs, FILE, 16384, Buffer.alloc(4096));
    await expect(s.read(OID, 16384, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    const f = await fs.open(FILE, 'r+');
    await f.truncate(40000);
    await f.close();
    await expect(s.read(OID, 60000, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    expect(s.stats.detected).toBe(3);
    await expect(s.hash(OID, SIZE)).rejects.toMatchObject({ result: SD_RES_EIO });
  });

  it('keeps checksums in step with unaligned writes and copy-on-write creates; GET_HASH is the data SHA-1', async () => {
    const { s } = await store();
    const base = Buffer.alloc(SIZE, 3);
    await s.create(OID, SIZE, Buffer.alloc(700, 9), 4000, V, base);
    await s.write(OID, Buffer.alloc(5000, 7), 10_000, V);
    await s.write(OID, Buffer.alloc(1, 8), SIZE - 1, V);
    const want = Buffer.from(base);
    want.fill(9, 4000, 4700);
    want.fill(7, 10_000, 15_000);
    want[SIZE - 1] = 8;
    expect((await s.read(OID, 0, SIZE)).equals(want)).toBe(true);
    expect((await s.hash(OID, SIZE)).equals(createHash('sha1').update(want).digest())).toBe(true);
  });

  it('detects a block that reverts to its old bytes (zeroed back to a hole) after an overwrite', async () => {
    const { s, fs } = await store();
    await s.create(OID, SIZE, Buffer.alloc(10, 1), 0, V);
    await s.write(OID, Buffer.alloc(4096, 2), 8192, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(SIZE, 3), 0, V);
    await damage(fs, FILE, 8192, Buffer.alloc(4096));
    await damage(fs, '/s/obj/007c2b2500000004', 0, Buffer.alloc(4096, 1));
    await expect(s.read(OID, 8192, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    await expect(s.read(OID + 1n, 0, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
  });

  it('refuses a partial write into a corrupt block but lets a whole-block write replace it', async () => {
    const { s, fs } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await damage(fs, FILE, 4096 + 7, Buffer.from([0xff]));
    await expect(s.write(OID, Buffer.alloc(10, 2), 4096, V)).rejects.toMatchObject({ result: SD_RES_EIO });
    await s.write(OID, Buffer.alloc(4096, 2), 4096, V);
    expect((await s.read(OID, 4096, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
  });

  it('reports a damaged sidecar as corruption and a deleted object file as missing', async () => {
    const { s, fs } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(SIZE, 2), 0, V);
    await s.create(OID + 2n, SIZE, Buffer.alloc(SIZE, 3), 0, V);
    await damage(fs, '/s/csum/007c2b2500000003', 0, Buffer.from('junk'));
    await damage(fs, '/s/obj/007c2b2500000004', 30_000, Buffer.from('x'));
    await fs.unlink('/s/obj/007c2b2500000005');
    await expect(s.read(OID, 0, 10)).rejects.toMatchObject({ result: SD_RES_EIO });
    await expect(s.read(OID + 2n, 0, 10)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    const rep = await s.scrub();
    expect(rep.scanned).toBe(3);
    expect(rep.corrupt).toEqual([OID, OID + 1n]);
    expect(rep.missing).toEqual([OID + 2n]);
    expect(s.stats).toMatchObject({ scrubs: 1, scrubCorrupt: 2, scrubMissing: 1 });
  });
});

describe('PlainStore verification races', () => {
  it('never reports corruption for reads racing overwrites and replacing creates (real file system)', async () => {
    const dir = fs_.mkdtempSync(path.join(os.tmpdir(), 'plain-race-'));
    try {
      const s = new PlainStore(dir, { log });
      await s.open();
      await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
      let stop = false;
      const writer = (async () => {
        for (let i = 0; i < 60; i++) {
          if (i % 10 === 9) await s.create(OID, SIZE, Buffer.alloc(SIZE, i & 0xff), 0, V);
          else await s.write(OID, Buffer.alloc(8192, i & 0xff), 4096, V);
        }
        stop = true;
      })();
      const reader = async (): Promise<number> => {
        let n = 0;
        while (!stop) {
          await s.read(OID, 0, 16384);
          n++;
        }
        return n;
      };
      const counts = await Promise.all([reader(), reader(), writer.then(() => 0)]);
      expect(counts[0]! + counts[1]!).toBeGreaterThan(0);
      expect(s.stats.detected).toBe(0);
      await s.close();
    } finally {
      fs_.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('PlainStore space', () => {
  it('answers NO_SPACE past the capacity, writes nothing, and resumes when space is freed', async () => {
    const { s, fs } = await store(new CrashFs(), { capacityBytes: 2 * SIZE });
    await s.create(OID, SIZE, Buffer.alloc(10, 1), 0, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(10, 2), 0, V);
    expect((await s.space()).free).toBe(0n);
    await expect(s.create(OID + 2n, SIZE, Buffer.alloc(10, 3), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    expect(s.exists(OID + 2n)).toBe(false);
    expect(fs.peek('/s/obj/007c2b2500000005')).toBeNull();
    // Replacing an existing object needs no new space.
    await s.create(OID, SIZE, Buffer.alloc(10, 4), 0, V);
    await s.remove(OID + 1n);
    await s.create(OID + 2n, SIZE, Buffer.alloc(10, 3), 0, V);
    expect((await s.read(OID + 2n, 0, 10)).equals(Buffer.alloc(10, 3))).toBe(true);
    // Capacity is recounted from the files at open.
    const again = new PlainStore('/s', { fs, log, capacityBytes: 2 * SIZE });
    await again.open();
    await expect(again.create(OID + 9n, SIZE, Buffer.alloc(1), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
  });

  it('maps injected ENOSPC to NO_SPACE; a failed create leaves the old object, a failed write old or new bytes', async () => {
    const { s, fs } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    fs.inject = (op, file) => (op === 'write' && file.includes('/obj/') ? 'ENOSPC' : null);
    await expect(s.create(OID, SIZE, Buffer.alloc(SIZE, 2), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    await expect(s.write(OID, Buffer.alloc(8192, 2), 4096, V)).rejects.toMatchObject({ result: SD_RES_NO_SPACE });
    fs.inject = null;
    expect((await s.read(OID, 0, SIZE)).equals(Buffer.alloc(SIZE, 1))).toBe(true);
    expect((await fs.readdir('/s/obj')).filter((n) => n.includes('.tmp'))).toEqual([]);
    await s.write(OID, Buffer.alloc(8192, 2), 4096, V);
    expect((await s.read(OID, 4096, 8192)).equals(Buffer.alloc(8192, 2))).toBe(true);
  });
});

describe('CrashFs', () => {
  it('keeps synced data and directory entries, forgets unsynced ones', async () => {
    const fs = new CrashFs();
    await fs.mkdirp('/d');
    const f = await fs.open('/d/a', 'w');
    await f.write(Buffer.from('one'), 0, 3, 0);
    await f.sync();
    await fs.syncDir('/d');
    await f.write(Buffer.from('TWO'), 0, 3, 0);
    const g = await fs.open('/d/b', 'w');
    await g.write(Buffer.from('b'), 0, 1, 0);
    await g.sync();
    const end = fs.clock - 1;
    const synced = fs.crashAt(end, 'synced');
    expect(synced.peek('/d/a')?.toString()).toBe('one');
    expect(synced.peek('/d/b')).toBeNull();
    const all = fs.crashAt(end, 'all');
    expect(all.peek('/d/a')?.toString()).toBe('TWO');
    expect(all.peek('/d/b')?.toString()).toBe('b');
    expect(fs.syncPoints().length).toBe(3);
    expect(fs.crashAt(fs.syncPoints()[0]!, 'synced').peek('/d/a')).toBeNull();
  });
});
