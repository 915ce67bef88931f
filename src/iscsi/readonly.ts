// A read-only view of a BlockDevice, for exports configured read-only on a writable device: every write-class
// call fails with EROFS (DATA PROTECT at the SCSI edge), reads pass through.
import { BlockError, type BlockDevice, type Extent } from '../block/device.js';

export class ReadOnlyView implements BlockDevice {
  readonly readOnly = true;
  constructor(private readonly inner: BlockDevice) {}
  get size(): number {
    return this.inner.size;
  }
  get blockSize(): number {
    return this.inner.blockSize;
  }
  get preferredBlockSize(): number {
    return this.inner.preferredBlockSize;
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
  read(offset: number, length: number): Promise<Buffer> {
    return this.inner.read(offset, length);
  }
  checkReady(): Promise<void> {
    return this.inner.checkReady ? this.inner.checkReady() : Promise.resolve();
  }
  private refuse(): Promise<never> {
    return Promise.reject(new BlockError('EROFS', 'export is read-only'));
  }
  write(): Promise<void> {
    return this.refuse();
  }
  flush(): Promise<void> {
    return Promise.resolve();
  }
  discard(): Promise<void> {
    return this.refuse();
  }
  writeZeroes(): Promise<void> {
    return this.refuse();
  }
  extents(offset: number, length: number): Promise<Extent[]> {
    return this.inner.extents(offset, length);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}
