// MeteredDevice: a BlockDevice filter that counts and times every operation of the device it wraps
// (Prometheus: requests per op and result, latency, bytes read/written), so the target's /metrics covers every
// front end (NBD, iSCSI) without touching them. Results are the BlockError code or `ok`.
import type { BlockDevice, Extent, LentRead, WriteOptions, ZeroOptions } from './device.js';
import { BlockError } from './device.js';
import type { ProcessMetrics } from '../obs/metrics.js';

export class MeteredDevice implements BlockDevice {
  readInto?: (offset: number, target: Buffer) => Promise<void>;
  writev?: (offset: number, pieces: readonly Buffer[], opts?: WriteOptions) => Promise<void>;
  readLent?: (offset: number, length: number) => Promise<LentRead>;
  compareAndWrite?: (offset: number, expected: Buffer, data: Buffer, opts?: WriteOptions) => Promise<number | null>;
  checkReady?: () => Promise<void>;

  constructor(
    private readonly inner: BlockDevice,
    private readonly metrics: ProcessMetrics,
  ) {
    // Keep the inner device's fast paths (front ends prefer them), metered like their plain twins.
    const { readInto, writev, readLent, compareAndWrite, checkReady } = inner;
    if (checkReady) this.checkReady = () => checkReady.call(inner);
    if (compareAndWrite) {
      this.compareAndWrite = async (offset, expected, data, opts) => {
        const at = await this.timed('compare_and_write', () => compareAndWrite.call(inner, offset, expected, data, opts));
        if (at === null) this.metrics.bytes.inc({ proto: 'block', dir: 'write' }, data.length);
        return at;
      };
    }
    if (readInto) {
      this.readInto = async (offset, target) => {
        await this.timed('read', () => readInto.call(inner, offset, target));
        this.metrics.bytes.inc({ proto: 'block', dir: 'read' }, target.length);
      };
    }
    if (writev) {
      this.writev = async (offset, pieces, opts) => {
        await this.timed('write', () => writev.call(inner, offset, pieces, opts));
        this.metrics.bytes.inc({ proto: 'block', dir: 'write' }, pieces.reduce((a, p) => a + p.length, 0));
      };
    }
    if (readLent) {
      this.readLent = async (offset, length) => {
        const lent = await this.timed('read', () => readLent.call(inner, offset, length));
        this.metrics.bytes.inc({ proto: 'block', dir: 'read' }, length);
        return lent;
      };
    }
  }

  get size(): number {
    return this.inner.size;
  }
  get blockSize(): number {
    return this.inner.blockSize;
  }
  get preferredBlockSize(): number {
    return this.inner.preferredBlockSize;
  }
  get readOnly(): boolean {
    return this.inner.readOnly;
  }
  get identity(): BlockDevice['identity'] {
    return this.inner.identity;
  }
  get multiConn(): boolean {
    return this.inner.multiConn;
  }
  get thin(): boolean {
    return this.inner.thin;
  }

  /** Time one operation and record its result label. */
  private async timed<T>(op: string, run: () => Promise<T>): Promise<T> {
    const done = this.metrics.time('block', op);
    try {
      const v = await run();
      done('ok');
      return v;
    } catch (err) {
      done(err instanceof BlockError ? err.code : 'error');
      throw err;
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const b = await this.timed('read', () => this.inner.read(offset, length));
    this.metrics.bytes.inc({ proto: 'block', dir: 'read' }, b.length);
    return b;
  }

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    await this.timed('write', () => this.inner.write(offset, data, opts));
    this.metrics.bytes.inc({ proto: 'block', dir: 'write' }, data.length);
  }

  flush(): Promise<void> {
    return this.timed('flush', () => this.inner.flush());
  }

  discard(offset: number, length: number, opts?: WriteOptions): Promise<void> {
    return this.timed('discard', () => this.inner.discard(offset, length, opts));
  }

  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void> {
    return this.timed('write_zeroes', () => this.inner.writeZeroes(offset, length, opts));
  }

  extents(offset: number, length: number): Promise<Extent[]> {
    return this.timed('extents', () => this.inner.extents(offset, length));
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
