// MemoryDevice: sparse chunked storage with real extents, zeroing discard, limits and errors.
import { describe, it, expect } from 'vitest';
import fc from 'fast-check';
import { MemoryDevice } from '../../../src/block/memory.js';
import { BlockError } from '../../../src/block/device.js';

const KiB = 1024;

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof BlockError ? err.code : String(err);
  }
}

describe('MemoryDevice', () => {
  it('starts as one hole that reads as zeros', async () => {
    const d = new MemoryDevice({ name: 'm', size: 1024 * KiB });
    expect(d.thin && d.multiConn).toBe(true);
    expect((await d.read(0, 4096)).equals(Buffer.alloc(4096))).toBe(true);
    expect(await d.extents(0, d.size)).toEqual([{ offset: 0, length: d.size, allocated: false, zero: true }]);
    expect(d.allocated).toBe(0);
  });

  it('allocates only the chunks written and reports extents exactly over the range', async () => {
    const d = new MemoryDevice({ name: 'm', size: 1024 * KiB, chunkSize: 64 * KiB });
    await d.write(100 * KiB, Buffer.alloc(10, 7));
    expect(d.allocated).toBe(64 * KiB);
    expect(await d.extents(32 * KiB, 128 * KiB)).toEqual([
      { offset: 32 * KiB, length: 32 * KiB, allocated: false, zero: true },
      { offset: 64 * KiB, length: 64 * KiB, allocated: true, zero: false },
      { offset: 128 * KiB, length: 32 * KiB, allocated: false, zero: true },
    ]);
    const r = await d.read(100 * KiB - 2, 14);
    expect([...r]).toEqual([0, 0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 0, 0]);
  });

  it('discard frees whole chunks and zeroes partial ones', async () => {
    const d = new MemoryDevice({ name: 'm', size: 256 * KiB, chunkSize: 64 * KiB });
    await d.write(0, Buffer.alloc(256 * KiB, 1));
    await d.discard(32 * KiB, 128 * KiB);
    expect(d.allocated).toBe(192 * KiB);
    expect((await d.read(32 * KiB, 128 * KiB)).equals(Buffer.alloc(128 * KiB))).toBe(true);
    expect((await d.read(0, 32 * KiB)).equals(Buffer.alloc(32 * KiB, 1))).toBe(true);
    // Zeroing the rest of a chunk frees it.
    await d.discard(0, 32 * KiB);
    expect(d.allocated).toBe(128 * KiB);
  });

  it('writeZeroes keeps the range allocated unless mayTrim', async () => {
    const d = new MemoryDevice({ name: 'm', size: 256 * KiB, chunkSize: 64 * KiB });
    await d.writeZeroes(0, 128 * KiB);
    expect(d.allocated).toBe(128 * KiB);
    expect((await d.extents(0, 64 * KiB))[0]?.allocated).toBe(true);
    await d.writeZeroes(0, 128 * KiB, { mayTrim: true, fastOnly: true });
    expect(d.allocated).toBe(0);
  });

  it('matches a flat reference model under random operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('write', 'discard', 'zero'),
            off: fc.integer({ min: 0, max: 255 }),
            len: fc.integer({ min: 1, max: 64 }),
            byte: fc.integer({ min: 1, max: 255 }),
          }),
          { maxLength: 30 },
        ),
        async (ops) => {
          const size = 256 * 512;
          const d = new MemoryDevice({ name: 'm', size, chunkSize: 4096 });
          const ref = Buffer.alloc(size);
          for (const o of ops) {
            const off = o.off * 512;
            const len = Math.min(o.len * 512, size - off);
            if (o.op === 'write') {
              await d.write(off, Buffer.alloc(len, o.byte));
              ref.fill(o.byte, off, off + len);
            } else {
              if (o.op === 'discard') await d.discard(off, len);
              else await d.writeZeroes(off, len, { mayTrim: o.byte % 2 === 0 });
              ref.fill(0, off, off + len);
            }
          }
          expect((await d.read(0, size)).equals(ref)).toBe(true);
          for (const x of await d.extents(0, size)) {
            if (!x.allocated) expect(ref.subarray(x.offset, x.offset + x.length).equals(Buffer.alloc(x.length))).toBe(true);
          }
        },
      ),
      { numRuns: 60 },
    );
  });

  it('raises EINVAL, EROFS, ENOSPC and ESHUTDOWN without changing data', async () => {
    const d = new MemoryDevice({ name: 'm', size: 256 * KiB, chunkSize: 64 * KiB, capacityBytes: 128 * KiB });
    expect(await code(d.read(255 * KiB, 2 * KiB))).toBe('EINVAL');
    expect(await code(d.write(-1, Buffer.alloc(1)))).toBe('EINVAL');
    await d.write(0, Buffer.alloc(128 * KiB, 2));
    expect(await code(d.write(120 * KiB, Buffer.alloc(16 * KiB, 3)))).toBe('ENOSPC');
    expect((await d.read(120 * KiB, 8 * KiB)).equals(Buffer.alloc(8 * KiB, 2))).toBe(true);
    const ro = new MemoryDevice({ name: 'r', size: 64 * KiB, readOnly: true });
    expect(await code(ro.write(0, Buffer.alloc(1)))).toBe('EROFS');
    expect(await code(ro.discard(0, 512))).toBe('EROFS');
    await d.close();
    expect(await code(d.read(0, 1))).toBe('ESHUTDOWN');
    expect(() => new MemoryDevice({ name: 'x', size: 1000 })).toThrow(/multiple/);
  });

  it('has a stable identity derived from the name', () => {
    const a = new MemoryDevice({ name: 'disk', size: 512 });
    const b = new MemoryDevice({ name: 'disk', size: 1024 });
    expect(a.identity.serial).toBe(b.identity.serial);
    expect(a.identity.naaId).toBe(b.identity.naaId);
    expect(new MemoryDevice({ name: 'other', size: 512 }).identity.serial).not.toBe(a.identity.serial);
  });
});

describe('MemoryDevice fast paths', () => {
  it('writev equals write of the concatenation; readInto equals read', async () => {
    const d = new MemoryDevice({ name: 'v', size: 256 * KiB, chunkSize: 4096 });
    const pieces = [Buffer.alloc(100, 1), Buffer.alloc(5000, 2), Buffer.alloc(3000, 3), Buffer.alloc(1, 4)];
    await d.writev(1000, pieces);
    const want = Buffer.concat(pieces);
    expect((await d.read(1000, want.length)).equals(want)).toBe(true);
    const into = Buffer.alloc(want.length + 2000, 9);
    await d.readInto(0, into);
    expect(into.subarray(1000, 1000 + want.length).equals(want)).toBe(true);
    expect(into.subarray(0, 1000).equals(Buffer.alloc(1000))).toBe(true);
  });
});

describe('MemoryDevice lent reads', () => {
  it('lends views that stay unchanged under writes, discards and zeroing until released', async () => {
    const d = new MemoryDevice({ name: 'l', size: 256 * KiB, chunkSize: 4096 });
    await d.write(0, Buffer.alloc(16 * KiB, 1));
    const lease = await d.readLent(2048, 12 * KiB);
    const before = Buffer.concat(lease.views);
    expect(before.subarray(0, 14 * KiB - 2048).equals(Buffer.alloc(14 * KiB - 2048, 1))).toBe(true);
    expect(before.length).toBe(12 * KiB);
    await d.write(0, Buffer.alloc(8 * KiB, 2));
    await d.discard(8 * KiB, 4096);
    await d.discard(12 * KiB + 100, 50);
    await d.writeZeroes(4096, 100);
    expect(Buffer.concat(lease.views).equals(before)).toBe(true);
    const now = await d.read(0, 16 * KiB);
    expect(now.subarray(0, 4096).equals(Buffer.alloc(4096, 2))).toBe(true);
    expect(now.subarray(4096, 4196).equals(Buffer.alloc(100))).toBe(true);
    expect(now.subarray(8 * KiB, 12 * KiB).equals(Buffer.alloc(4096))).toBe(true);
    lease.release();
    lease.release();
    // Recycled slots come back zeroed: a fresh write elsewhere reads back exactly.
    await d.write(64 * KiB, Buffer.alloc(100, 9));
    const r = await d.read(64 * KiB, 4096);
    expect(r.subarray(0, 100).equals(Buffer.alloc(100, 9))).toBe(true);
    expect(r.subarray(100).equals(Buffer.alloc(4096 - 100))).toBe(true);
  });

  it('lends holes as zero views', async () => {
    const d = new MemoryDevice({ name: 'h', size: 64 * KiB, chunkSize: 4096 });
    const lease = await d.readLent(1000, 10000);
    expect(Buffer.concat(lease.views).equals(Buffer.alloc(10000))).toBe(true);
    lease.release();
  });

  it('matches the reference model with reads lent across random operations', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            op: fc.constantFrom('write', 'discard', 'zero', 'lend', 'release'),
            off: fc.integer({ min: 0, max: 63 }),
            len: fc.integer({ min: 1, max: 16 }),
            byte: fc.integer({ min: 1, max: 255 }),
          }),
          { maxLength: 40 },
        ),
        async (ops) => {
          const size = 64 * 512;
          const d = new MemoryDevice({ name: 'm', size, chunkSize: 2048 });
          const ref = Buffer.alloc(size);
          const leases: { lease: Awaited<ReturnType<MemoryDevice['readLent']>>; want: Buffer }[] = [];
          for (const o of ops) {
            const off = o.off * 512;
            const len = Math.min(o.len * 512, size - off);
            if (o.op === 'write') {
              await d.write(off, Buffer.alloc(len, o.byte));
              ref.fill(o.byte, off, off + len);
            } else if (o.op === 'discard' || o.op === 'zero') {
              if (o.op === 'discard') await d.discard(off, len);
              else await d.writeZeroes(off, len, { mayTrim: o.byte % 2 === 0 });
              ref.fill(0, off, off + len);
            } else if (o.op === 'lend') {
              leases.push({ lease: await d.readLent(off, len), want: Buffer.from(ref.subarray(off, off + len)) });
            } else {
              leases.shift()?.lease.release();
            }
            for (const l of leases) expect(Buffer.concat(l.lease.views).equals(l.want)).toBe(true);
          }
          expect((await d.read(0, size)).equals(ref)).toBe(true);
        },
      ),
      { numRuns: 80 },
    );
  });
});
