// The object-store seam (design.md "object store"): one node's local objects, durable before ack.
// The gateway and the peer ops only talk to this interface, so a faster store can replace the plain-file one
// without touching them. Fact sheet §10.7. Invariants every implementation keeps:
// - create(): atomic — after a crash the object is either absent or complete; it replaces an existing object;
// - write()/create() resolve only once the bytes are on stable storage;
// - reads of holes and of the part past the end of a short file return zeros;
// - every object carries an ObjVersion, made durable together with the create or write that sets it (no
//   extra sync), so a copy that missed writes can be told from a current one after any crash.

import { SdError } from '../errors.js';

/** A store error carries the SD_RES code the wire will see (NO_OBJ, NO_SPACE, EIO). */
export class StoreError extends SdError {
  constructor(result: number, message: string) {
    super(result, message);
    this.name = 'StoreError';
  }
}

/**
 * What one copy of an object holds, as the cluster's recovery compares copies: `epoch`/`gen` name the last
 * client write it reflects (the epoch it was written in, and how many writes this copy took in that epoch),
 * `current` the epoch in which this copy was last known to hold every acknowledged write (a client write,
 * or recovery fetching or verifying it). Three u32s; {0,0,0} is "unknown" (a store from before versions).
 */
export interface ObjVersion {
  epoch: number;
  gen: number;
  current: number;
}

export const NO_VERSION: Readonly<ObjVersion> = Object.freeze({ epoch: 0, gen: 0, current: 0 });

/** The version a client write in `epoch` gives a copy whose version was `prev`. */
export function nextVersion(prev: ObjVersion | null, epoch: number): ObjVersion {
  const gen = prev !== null && prev.epoch === epoch ? prev.gen + 1 : 1;
  return { epoch, gen: gen >>> 0, current: epoch };
}

/** Order of the content two versions name: by write epoch, then by writes within it. */
export function compareVersion(a: ObjVersion, b: ObjVersion): number {
  return a.epoch - b.epoch || a.gen - b.gen;
}

export interface ObjectStore {
  /** Scan the store after a (possibly unclean) start: drop leftover temporaries, build the object list. */
  open(): Promise<void>;
  /**
   * Create (or replace) `oid` as a `size`-byte object: zero-filled, with `data` at `offset` (or the bytes of
   * `base` first, for copy-on-write, then `data` over them), carrying `ver`. Durable and atomic.
   */
  create(oid: bigint, size: number, data: Buffer, offset: number, ver: ObjVersion, base?: Buffer): Promise<void>;
  /** Overwrite bytes of an existing object (NO_OBJ if absent) and set its version; durable on return. */
  write(oid: bigint, data: Buffer, offset: number, ver: ObjVersion): Promise<void>;
  /** The version of the local copy (from memory), or null when the object is absent. */
  version(oid: bigint): ObjVersion | null;
  /** Change only the version of an existing object (NO_OBJ if absent); durable on return. */
  setVersion(oid: bigint, ver: ObjVersion): Promise<void>;
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
