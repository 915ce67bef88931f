// MemoryDevice: a sparse in-memory BlockDevice. Storage is a map of fixed-size chunks allocated on first write,
// so extents() reports real data and holes; discard and write-zeroes (with mayTrim) free whole chunks and zero
// partial ones. Everything lives in one process, so it is trivially coherent across connections (multiConn)
// and "stable storage" is memory: flush and FUA complete at once.
// Chunks are carved from slabs; a freed chunk's memory is recycled for later writes (not returned to the OS
// until close), so `allocated` counts logical bytes, not RSS. readLent() lends views of chunks without copying;
// a lent chunk is copied before it changes (copy-on-write) and its slot recycled only after the last release.
// Invariant: a chunk absent from the map reads as zeros; present chunks hold exactly their bytes.
import { BlockError, checkRange, identityFor } from './device.js';
import type { BlockDevice, BlockIdentity, Extent, LentRead, WriteOptions, ZeroOptions } from './device.js';

export interface MemoryDeviceOptions {
  name: string;
  /** Size in bytes, a multiple of blockSize. */
  size: number;
  blockSize?: number;
  /** Allocation granularity in bytes (power of two, >= blockSize). */
  chunkSize?: number;
  readOnly?: boolean;
  /** Cap on allocated bytes; writes beyond it fail with ENOSPC (default: no cap). */
  capacityBytes?: number;
}

export const MEMORY_DEFAULT_CHUNK_SIZE = 64 * 1024;
/** Chunks per slab (one backing allocation). */
export const MEMORY_SLAB_CHUNKS = 256;

export class MemoryDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize: number;
  readonly preferredBlockSize: number;
  readonly readOnly: boolean;
  readonly identity: BlockIdentity;
  readonly multiConn = true;
  readonly thin = true;
  private readonly chunkSize: number;
  private readonly capacityBytes: number;
  private readonly zeroChunk: Buffer;
  private chunks = new Map<number, Buffer>();
  private allocatedBytes = 0;
  /** Freed chunk slots (full chunkSize views of slabs), reused before a new slab is allocated. */
  private freeSlots: Buffer[] = [];
  /** Never-used slots of allocated slabs (still zero). */
  private freshSlots: Buffer[] = [];
  /** Chunks lent out by readLent, with their lend counts: they are copied before any change. */
  private lent = new Map<Buffer, number>();
  /** Lent chunks no longer in the map (replaced or freed); their slots are recycled on the last release. */
  private retired = new Set<Buffer>();
  private closed = false;

  constructor(opts: MemoryDeviceOptions) {
    this.blockSize = opts.blockSize ?? 512;
    this.chunkSize = opts.chunkSize ?? MEMORY_DEFAULT_CHUNK_SIZE;
    if (!Number.isSafeInteger(opts.size) || opts.size <= 0 || opts.size % this.blockSize !== 0) {
      throw new BlockError('EINVAL', `memory device size ${opts.size} must be a positive multiple of ${this.blockSize}`);
    }
    if ((this.chunkSize & (this.chunkSize - 1)) !== 0 || this.chunkSize < this.blockSize) {
      throw new BlockError('EINVAL', `chunk size ${this.chunkSize} must be a power of two >= block size`);
    }
    this.size = opts.size;
    this.preferredBlockSize = Math.max(4096, this.blockSize);
    this.readOnly = opts.readOnly ?? false;
    this.capacityBytes = opts.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.identity = identityFor(opts.name, `memory ${opts.size} bytes`);
    this.zeroChunk = Buffer.alloc(this.chunkSize);
  }

  /** Bytes currently backed by allocated chunks. */
  get allocated(): number {
    return this.allocatedBytes;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const out = Buffer.allocUnsafe(length);
    await this.readInto(offset, out);
    return out;
  }

  async readInto(offset: number, out: Buffer): Promise<void> {
    this.checkOpen();
    checkRange(this, offset, out.length);
    this.forEachPiece(offset, out.length, (idx, inChunk, n, outPos) => {
      const c = this.chunks.get(idx);
      if (c === undefined) out.fill(0, outPos, outPos + n);
      else c.copy(out, outPos, inChunk, inChunk + n);
    });
  }

  /** Zero-copy read: views of the chunks (holes as views of a zero buffer), protected by copy-on-write. */
  async readLent(offset: number, length: number): Promise<LentRead> {
    this.checkOpen();
    checkRange(this, offset, length);
    const views: Buffer[] = [];
    const held: Buffer[] = [];
    this.forEachPiece(offset, length, (idx, inChunk, n) => {
      const c = this.chunks.get(idx);
      if (c === undefined) {
        views.push(this.zeroChunk.subarray(inChunk, inChunk + n));
        return;
      }
      views.push(c.subarray(inChunk, inChunk + n));
      this.lent.set(c, (this.lent.get(c) ?? 0) + 1);
      held.push(c);
    });
    let released = false;
    const release = (): void => {
      if (released) return;
      released = true;
      for (const c of held) {
        const k = (this.lent.get(c) ?? 1) - 1;
        if (k > 0) {
          this.lent.set(c, k);
          continue;
        }
        this.lent.delete(c);
        if (this.retired.delete(c)) this.freeSlots.push(Buffer.from(c.buffer, c.byteOffset, this.chunkSize));
      }
    };
    return { views, release };
  }

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    return this.writev(offset, [data], opts);
  }

  async writev(offset: number, pieces: readonly Buffer[], _opts?: WriteOptions): Promise<void> {
    this.checkWritable();
    let length = 0;
    for (const p of pieces) length += p.length;
    checkRange(this, offset, length);
    this.reserve(offset, length);
    // Walk device chunks and source pieces together: each byte is copied once.
    let pi = 0;
    let pOff = 0;
    this.forEachPiece(offset, length, (idx, inChunk, n) => {
      const dst = this.writableChunk(idx);
      let at = inChunk;
      let left = n;
      while (left > 0) {
        const src = pieces[pi] as Buffer;
        const k = Math.min(left, src.length - pOff);
        src.copy(dst, at, pOff, pOff + k);
        at += k;
        left -= k;
        pOff += k;
        if (pOff === src.length) {
          pi++;
          pOff = 0;
        }
      }
    });
  }

  async flush(): Promise<void> {
    this.checkOpen();
  }

  async discard(offset: number, length: number, _opts?: WriteOptions): Promise<void> {
    this.checkWritable();
    checkRange(this, offset, length);
    this.punch(offset, length);
  }

  async writeZeroes(offset: number, length: number, opts: ZeroOptions = {}): Promise<void> {
    this.checkWritable();
    checkRange(this, offset, length);
    if (opts.mayTrim === true) {
      this.punch(offset, length);
      return;
    }
    // NO_HOLE: the range must stay provisioned, so allocate and zero.
    this.reserve(offset, length);
    this.forEachPiece(offset, length, (idx, inChunk, n) => {
      this.writableChunk(idx).fill(0, inChunk, inChunk + n);
    });
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    this.checkOpen();
    checkRange(this, offset, length);
    const out: Extent[] = [];
    this.forEachPiece(offset, length, (idx, _inChunk, n, pos) => {
      const allocated = this.chunks.has(idx);
      const last = out[out.length - 1];
      if (last !== undefined && last.allocated === allocated) last.length += n;
      else out.push({ offset: offset + pos, length: n, allocated, zero: !allocated });
    });
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.chunks = new Map();
    this.freeSlots = [];
    this.freshSlots = [];
    this.lent = new Map();
    this.retired = new Set();
    this.allocatedBytes = 0;
  }

  // Visit each chunk-local piece of [offset, offset+length): (chunk index, offset in chunk, bytes, range pos).
  private forEachPiece(
    offset: number,
    length: number,
    fn: (idx: number, inChunk: number, n: number, pos: number) => void,
  ): void {
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const idx = Math.floor(abs / this.chunkSize);
      const inChunk = abs - idx * this.chunkSize;
      const n = Math.min(this.chunkSize - inChunk, length - pos);
      fn(idx, inChunk, n, pos);
      pos += n;
    }
  }

  private chunkLength(idx: number): number {
    return Math.min(this.chunkSize, this.size - idx * this.chunkSize);
  }

  // The chunk to change at idx: allocated on first use, and copied first if a reader holds it (copy-on-write).
  private writableChunk(idx: number): Buffer {
    let c = this.chunks.get(idx);
    if (c === undefined) {
      c = this.takeSlot().subarray(0, this.chunkLength(idx));
      this.chunks.set(idx, c);
      this.allocatedBytes += c.length;
    } else if (this.lent.has(c)) {
      const copy = this.takeSlot().subarray(0, c.length);
      c.copy(copy);
      this.retired.add(c);
      this.chunks.set(idx, copy);
      c = copy;
    }
    return c;
  }

  // Chunks live in slabs of up to MEMORY_SLAB_CHUNKS: one backing store per slab keeps the GC's per-ArrayBuffer
  // work and malloc traffic small. Fresh slots are zero already; recycled ones are zeroed here.
  private takeSlot(): Buffer {
    const recycled = this.freeSlots.pop();
    if (recycled !== undefined) return recycled.fill(0);
    let fresh = this.freshSlots.pop();
    if (fresh === undefined) {
      const n = Math.min(MEMORY_SLAB_CHUNKS, Math.ceil(this.size / this.chunkSize));
      const slab = Buffer.alloc(this.chunkSize * n);
      for (let i = n - 1; i >= 0; i--) {
        this.freshSlots.push(slab.subarray(i * this.chunkSize, (i + 1) * this.chunkSize));
      }
      fresh = this.freshSlots.pop() as Buffer;
    }
    return fresh;
  }

  private dropChunk(idx: number, c: Buffer): void {
    this.chunks.delete(idx);
    this.allocatedBytes -= c.length;
    if (this.lent.has(c)) this.retired.add(c);
    else this.freeSlots.push(Buffer.from(c.buffer, c.byteOffset, this.chunkSize));
  }

  // Check ENOSPC before touching anything, so a failed write changes no byte.
  private reserve(offset: number, length: number): void {
    if (this.capacityBytes === Number.POSITIVE_INFINITY || length === 0) return;
    let need = 0;
    const first = Math.floor(offset / this.chunkSize);
    const last = Math.floor((offset + length - 1) / this.chunkSize);
    for (let i = first; i <= last; i++) if (!this.chunks.has(i)) need += this.chunkLength(i);
    if (this.allocatedBytes + need > this.capacityBytes) {
      throw new BlockError('ENOSPC', `memory device ${this.identity.name} is full`);
    }
  }

  // Deallocate whole chunks in the range; zero the partial ones, and free them if they became all zeros.
  private punch(offset: number, length: number): void {
    this.forEachPiece(offset, length, (idx, inChunk, n) => {
      const c = this.chunks.get(idx);
      if (c === undefined) return;
      if (n === c.length) {
        this.dropChunk(idx, c);
        return;
      }
      const w = this.writableChunk(idx);
      w.fill(0, inChunk, inChunk + n);
      if (w.equals(this.zeroChunk.subarray(0, w.length))) this.dropChunk(idx, w);
    });
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `memory device ${this.identity.name} is closed`);
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) throw new BlockError('EROFS', `memory device ${this.identity.name} is read-only`);
  }
}
