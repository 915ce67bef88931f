// BufferPool: exact-size views of power-of-two backing buffers, reuse after release, bounded, and it never
// accepts a buffer it did not create.
import { describe, it, expect } from 'vitest';
import { BufferPool } from '../../../src/nbd/pool.js';

describe('BufferPool', () => {
  it('reuses released buffers of the same class and bounds what it keeps', () => {
    const p = new BufferPool(3 * 1024 * 1024);
    const a = p.get(1000 * 1000);
    expect(a.length).toBe(1000 * 1000);
    expect(a.buffer.byteLength).toBe(1 << 20);
    p.release(a);
    expect(p.pooled).toBe(1 << 20);
    const b = p.get(1 << 20);
    expect(b.buffer).toBe(a.buffer);
    expect(p.pooled).toBe(0);
    const bufs = [p.get(1 << 20), p.get(1 << 20), p.get(1 << 20), p.get(1 << 20)];
    for (const x of bufs) p.release(x);
    expect(p.pooled).toBe(3 << 20);
  });

  it('ignores buffers it did not hand out', () => {
    const p = new BufferPool(1 << 30);
    p.release(Buffer.allocUnsafe(100));
    p.release(Buffer.allocUnsafeSlow(8192));
    expect(p.pooled).toBe(0);
    expect(p.get(10).buffer.byteLength).toBe(4096);
  });
});
