// The plain store's open-file cache: reads reuse an object's open data file and sidecar, the cache stays within
// its descriptor budget, and no read or write is ever served from a file that a replacing create (recovery's
// replace too), remove, moveToStale, wipe or a re-open made stale, including an open in flight at that moment.
import { describe, expect, it } from 'vitest';
import { SD_RES_EIO, SD_RES_NO_OBJ } from '../../../../src/proto/sheepdog/constants.js';
import { CrashFs } from '../../../../src/sheep/store/crashfs.js';
import type { StoreFile, StoreFs } from '../../../../src/sheep/store/fs.js';
import { OpenFileCache } from '../../../../src/sheep/store/openfiles.js';
import { PlainStore } from '../../../../src/sheep/store/plain.js';
import { componentLogger } from '../../../../src/obs/log.js';

/** The version every test write carries (what versions mean is tested in currency and recovery tests). */
const V = { epoch: 1, gen: 1, current: 1 };

const OID = 0x007c2b2500000003n;
const SIZE = 16 * 1024;
const log = componentLogger('store-test').child({}, { level: 'silent' });

/** A StoreFs that counts opens and the files open right now. */
class CountingFs {
  opens = 0;
  openNow = 0;
  maxOpen = 0;
  constructor(readonly inner: CrashFs) {}
  wrap(): StoreFs {
    const inner = this.inner;
    return new Proxy(inner, {
      get: (t, k) => {
        if (k !== 'open') {
          const v = Reflect.get(t, k) as unknown;
          return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
        }
        return async (file: string, flags: 'r' | 'r+' | 'w'): Promise<StoreFile> => {
          const f = await inner.open(file, flags);
          this.opens++;
          this.openNow++;
          this.maxOpen = Math.max(this.maxOpen, this.openNow);
          let closed = false;
          return {
            ...f,
            close: async () => {
              if (closed) throw new Error('closed twice');
              closed = true;
              this.openNow--;
              await f.close();
            },
          };
        };
      },
    });
  }
}

async function store(maxOpenFiles?: number): Promise<{ s: PlainStore; c: CountingFs }> {
  const c = new CountingFs(new CrashFs());
  const s = new PlainStore('/s', { fs: c.wrap(), log }, maxOpenFiles);
  await s.open();
  return { s, c };
}

describe('PlainStore open-file cache', () => {
  it('serves repeated reads and writes from the same open files', async () => {
    const { s, c } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.read(OID, 0, 4096);
    const before = c.opens;
    for (let i = 0; i < 10; i++) expect((await s.read(OID, i * 512, 512)).equals(Buffer.alloc(512, 1))).toBe(true);
    await s.write(OID, Buffer.alloc(4096, 2), 4096, V);
    expect((await s.read(OID, 4096, 4096)).equals(Buffer.alloc(4096, 2))).toBe(true);
    expect(c.opens).toBe(before);
    await s.close();
    expect(c.openNow).toBe(0);
  });

  it('re-opens after a replacing create, remove, moveToStale and wipe', async () => {
    const { s } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(1);
    // recovery replaces an object with a create of the fetched copy
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 2), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(2);
    await s.write(OID, Buffer.alloc(4, 3), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(3);
    await s.remove(OID);
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.write(OID, Buffer.alloc(1), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });

    await s.create(OID, SIZE, Buffer.alloc(SIZE, 4), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(4);
    await s.moveToStale(OID, 7);
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });

    await s.create(OID, SIZE, Buffer.alloc(SIZE, 5), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(5);
    await s.wipe();
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.hash(OID, SIZE)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 6), 0, V);
    expect((await s.read(OID, 0, 4))[0]).toBe(6);
    await s.close();
  });

  it('reads NO_OBJ from an object file deleted or renamed over behind its back, as without the cache', async () => {
    const { s, c } = await store();
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    await s.create(OID + 1n, SIZE, Buffer.alloc(SIZE, 2), 0, V);
    await s.read(OID, 0, 4);
    await s.read(OID + 1n, 0, 4);
    expect((await s.read(OID, 0, 4))[0]).toBe(1);
    await c.inner.unlink('/s/obj/007c2b2500000003');
    await expect(s.read(OID, 0, 4)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.write(OID, Buffer.alloc(4, 9), 0, V)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    await expect(s.hash(OID, SIZE)).rejects.toMatchObject({ result: SD_RES_NO_OBJ });
    // Another file renamed over the object's name: its bytes are read (and fail their checksums), not the
    // cached old file's.
    const f = await c.inner.open('/s/obj/other', 'w');
    await f.write(Buffer.alloc(SIZE, 7), 0, SIZE, 0);
    await f.close();
    await c.inner.rename('/s/obj/other', '/s/obj/007c2b2500000004');
    await expect(s.read(OID + 1n, 0, 4)).rejects.toMatchObject({ result: SD_RES_EIO });
    await s.close();
  });

  it('reads racing replacing creates and writes see old or new bytes, never a stale file afterwards', async () => {
    const { s } = await store(4);
    await s.create(OID, SIZE, Buffer.alloc(SIZE, 1), 0, V);
    for (let v = 2; v < 12; v++) {
      const op = v % 2 === 0 ? s.create(OID, SIZE, Buffer.alloc(SIZE, v), 0, V) : s.write(OID, Buffer.alloc(SIZE, v), 0, V);
      const reads = await Promise.all([s.read(OID, 0, 4096), op.then(() => undefined), s.read(OID, 4096, 4096)]);
      for (const r of [reads[0], reads[2]]) expect([v - 1, v]).toContain(r[0]);
      expect((await s.read(OID, 0, SIZE)).equals(Buffer.alloc(SIZE, v))).toBe(true);
    }
    await s.close();
  });

  it('keeps no more descriptors than its budget and closes all of them on close()', async () => {
    const { s, c } = await store(6);
    for (let i = 0n; i < 10n; i++) await s.create(OID + i, 4096, Buffer.alloc(4096, Number(i) + 1), 0, V);
    for (let round = 0; round < 2; round++) {
      for (let i = 0n; i < 10n; i++) expect((await s.read(OID + i, 0, 1))[0]).toBe(Number(i) + 1);
    }
    expect(c.openNow).toBeLessThanOrEqual(6);
    await s.close();
    expect(c.openNow).toBe(0);
  });
});

describe('OpenFileCache', () => {
  /** A cache over numbered fake files whose opens the test finishes by hand. */
  function fake(capacity: number) {
    const closed: number[] = [];
    const pending: Array<(n: number) => void> = [];
    let next = 1;
    const cache = new OpenFileCache<number, null>(
      capacity,
      () => new Promise((resolve) => pending.push((n) => resolve({ obj: n, sidecar: null }))),
      async (o) => void closed.push(o.obj),
    );
    const finish = (): number => {
      const n = next++;
      pending.shift()?.(n);
      return n;
    };
    return { cache, closed, finish };
  }

  it('does not cache an open that was in flight when its object was invalidated', async () => {
    const { cache, closed, finish } = fake(4);
    const p = cache.acquire(1n);
    cache.invalidate(1n);
    finish();
    const h = await p;
    expect(h.obj).toBe(1);
    expect(cache.size).toBe(0);
    await cache.release(h, 1n);
    expect(closed).toEqual([1]);
    const q = cache.acquire(1n);
    finish();
    const h2 = await q;
    expect(h2.obj).toBe(2);
    expect(cache.size).toBe(1);
    await cache.release(h2, 1n);
    expect(closed).toEqual([1]);
  });

  it('closes an evicted or invalidated file only once its last holder releases it', async () => {
    const { cache, closed, finish } = fake(1);
    const a = cache.acquire(1n);
    finish();
    const h1 = await a;
    const h1b = await cache.acquire(1n);
    expect(h1b).toBe(h1);
    const b = cache.acquire(2n);
    finish();
    const h2 = await b;
    expect(cache.size).toBe(1);
    expect(closed).toEqual([]);
    await cache.release(h1, 1n);
    expect(closed).toEqual([]);
    await cache.release(h1b, 1n);
    expect(closed).toEqual([1]);
    cache.invalidate(2n);
    expect(closed).toEqual([1]);
    await cache.release(h2, 2n);
    expect(closed).toEqual([1, 2]);
    await cache.closeAll();
    expect(closed).toEqual([1, 2]);
  });

  it('drops a file released as broken so the next use opens it again', async () => {
    const { cache, closed, finish } = fake(2);
    const a = cache.acquire(1n);
    finish();
    const h = await a;
    await cache.release(h, 1n, true);
    expect(closed).toEqual([1]);
    expect(cache.size).toBe(0);
  });
});
