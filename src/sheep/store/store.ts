// The object-store seam (design.md "object store"): one node's local objects, durable before ack.
// The gateway and the peer ops only talk to this interface, so a faster store can replace the plain-file one
// without touching them. Fact sheet §10.7. Invariants every implementation keeps:
// - create(): atomic — after a crash the object is either absent or complete; it replaces an existing object;
// - write()/create() resolve only once the bytes are on stable storage;
// - reads of holes and of the part past the end of a short file return zeros.

import { SdError } from '../errors.js';

/** A store error carries the SD_RES code the wire will see (NO_OBJ, NO_SPACE, EIO). */
export class StoreError extends SdError {
  constructor(result: number, message: string) {
    super(result, message);
    this.name = 'StoreError';
  }
}

/** The version an object replica was written at (three u32s), kept durably with the object. */
export interface ObjVersion {
  epoch: number;
  gen: number;
  current: number;
}

export interface ObjectStore {
  /** Scan the store after a (possibly unclean) start: drop leftover temporaries, build the object list. */
  open(): Promise<void>;
  /**
   * Create (or replace) `oid` as a `size`-byte object: zero-filled, with `data` at `offset` (or the bytes of
   * `base` first, for copy-on-write, then `data` over them). Durable and atomic.
   */
  create(oid: bigint, size: number, data: Buffer, offset: number, base?: Buffer): Promise<void>;
  /** Overwrite bytes of an existing object (NO_OBJ if absent); durable on return. */
  write(oid: bigint, data: Buffer, offset: number): Promise<void>;
  /** Read `length` bytes at `offset`; holes and bytes past the end read as zeros. NO_OBJ if absent. */
  read(oid: bigint, offset: number, length: number): Promise<Buffer>;
  /** Remove an object (NO_OBJ if absent). */
  remove(oid: bigint): Promise<void>;
  exists(oid: bigint): boolean;
  /** Every local oid, ascending (the object-list cache). */
  list(): bigint[];
  /** SHA-1 of the whole object at `size` bytes (zero-padded), as GET_HASH answers. */
  hash(oid: bigint, size: number): Promise<Buffer>;
  /** Move an object into the stale area as `<oid>.<epoch>` (recovery, §10.5). */
  moveToStale(oid: bigint, epoch: number): Promise<void>;
  /** Remove every object and stale copy (MAKE_FS). */
  wipe(): Promise<void>;
  /** Capacity and free bytes of the file system holding the store. */
  space(): Promise<{ size: bigint; free: bigint }>;
  close(): Promise<void>;
}
