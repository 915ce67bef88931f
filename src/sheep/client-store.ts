// The object store as client requests reach it (the gateway's local replica and the *_PEER ops): every
// create and write gets the next version of the epoch it happens in (store.ts ObjVersion), and every removal
// first raises the node's purge epoch, so the node stops vouching for epochs in which it held a copy it no
// longer has.
// Recovery and repair write through the inner store with the version of the copy they copy.
import { nextVersion, type ObjVersion, type ObjectStore } from './store/store.js';

export class ClientStore {
  constructor(
    readonly inner: ObjectStore,
    private readonly epoch: () => number,
    /** Made durable before the copy goes (the node's purge epoch). */
    private readonly beforeRemove: (epoch: number) => Promise<void>,
  ) {}

  create(oid: bigint, size: number, data: Buffer, offset: number, base?: Buffer): Promise<void> {
    return this.inner.create(oid, size, data, offset, nextVersion(this.inner.version(oid), this.epoch()), base);
  }
  write(oid: bigint, data: Buffer, offset: number): Promise<void> {
    return this.inner.write(oid, data, offset, nextVersion(this.inner.version(oid), this.epoch()));
  }
  read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    return this.inner.read(oid, offset, length);
  }
  async remove(oid: bigint): Promise<void> {
    await this.beforeRemove(this.epoch());
    await this.inner.remove(oid);
  }
  exists(oid: bigint): boolean {
    return this.inner.exists(oid);
  }
  version(oid: bigint): ObjVersion | null {
    return this.inner.version(oid);
  }
  list(): bigint[] {
    return this.inner.list();
  }
  hash(oid: bigint, size: number): Promise<Buffer> {
    return this.inner.hash(oid, size);
  }
}
