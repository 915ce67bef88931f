// A verifying-workload target made of objects: byte offsets map onto fixed-size objects of a backend (an
// ObjectStore, or a sheep Gateway), the first write to an object creates it, and reads of an absent object
// return zeros — the allocation a VdiDevice does, minus the inode. Used to drive the real store (crash-state
// replay) and a gateway (fault injection) with stamped blocks, without processes or sockets.
import { SD_RES_NO_OBJ } from '../proto/sheepdog/constants.js';
import type { IoTarget } from './workload.js';

/** The object operations the target needs (ObjectStore and an adapter over Gateway both fit). */
export interface ObjectBackend {
  create(oid: bigint, size: number, data: Buffer, offset: number): Promise<void>;
  write(oid: bigint, data: Buffer, offset: number): Promise<void>;
  read(oid: bigint, offset: number, length: number): Promise<Buffer>;
}

function isNoObj(err: unknown): boolean {
  return typeof err === 'object' && err !== null && 'result' in err && err.result === SD_RES_NO_OBJ;
}

export class ObjectIoTarget implements IoTarget {
  private readonly created = new Set<bigint>();
  private readonly creating = new Map<bigint, Promise<void>>();

  constructor(
    private readonly backend: ObjectBackend,
    private readonly objectSize: number,
    /** oid of the object holding offset 0; object i is firstOid + i. */
    private readonly firstOid: bigint,
  ) {}

  private locate(offset: number, length: number): { oid: bigint; off: number } {
    const idx = Math.floor(offset / this.objectSize);
    const off = offset - idx * this.objectSize;
    if (off + length > this.objectSize) throw new RangeError(`I/O ${offset}+${length} crosses an object boundary`);
    return { oid: this.firstOid + BigInt(idx), off };
  }

  async write(offset: number, data: Buffer): Promise<void> {
    const { oid, off } = this.locate(offset, data.length);
    for (;;) {
      if (this.created.has(oid)) return this.backend.write(oid, data, off);
      const pending = this.creating.get(oid);
      if (pending) {
        await pending.catch(() => undefined);
        continue;
      }
      // The first writer creates the object with its own data; the others wait and then overwrite.
      const p = this.backend.create(oid, this.objectSize, data, off).then(() => {
        this.created.add(oid);
      });
      this.creating.set(oid, p);
      try {
        return await p;
      } finally {
        this.creating.delete(oid);
      }
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const { oid, off } = this.locate(offset, length);
    try {
      return await this.backend.read(oid, off, length);
    } catch (err) {
      if (isNoObj(err)) return Buffer.alloc(length);
      throw err;
    }
  }
}
