// BufferPool: reusable read buffers for replies, so large READs neither allocate fresh (page-faulting)
// memory nor load the GC. Buffers are grouped in power-of-two size classes; a buffer goes back to the pool
// only when the socket has finished writing it. Bounded by `maxPooledBytes` (named limit); above it,
// released buffers are simply dropped for the GC.

export const NBD_POOL_MIN_CLASS_BYTES = 4096;

export class BufferPool {
  private readonly free = new Map<number, Buffer[]>();
  private pooledBytes = 0;
  /** Backing stores this pool created: nothing else is ever accepted back. */
  private readonly ours = new WeakSet<ArrayBufferLike>();

  constructor(private readonly maxPooledBytes: number) {}

  /** A buffer of exactly `size` bytes (a view of a pooled backing buffer); pass it to release() when done. */
  get(size: number): Buffer {
    const cls = BufferPool.classOf(size);
    const list = this.free.get(cls);
    const backing = list?.pop();
    if (backing !== undefined) {
      this.pooledBytes -= cls;
      return backing.subarray(0, size);
    }
    const fresh = Buffer.allocUnsafeSlow(cls);
    this.ours.add(fresh.buffer);
    return fresh.subarray(0, size);
  }

  /** Return a buffer obtained from get(); nothing may use it afterwards. */
  release(buf: Buffer): void {
    const cls = buf.buffer.byteLength;
    if (!this.ours.has(buf.buffer) || buf.byteOffset !== 0) return;
    if (this.pooledBytes + cls > this.maxPooledBytes) return;
    let list = this.free.get(cls);
    if (list === undefined) {
      list = [];
      this.free.set(cls, list);
    }
    list.push(Buffer.from(buf.buffer, 0, cls));
    this.pooledBytes += cls;
  }

  /** Bytes held by free buffers. */
  get pooled(): number {
    return this.pooledBytes;
  }

  private static classOf(size: number): number {
    let c = NBD_POOL_MIN_CLASS_BYTES;
    while (c < size) c *= 2;
    return c;
  }
}
