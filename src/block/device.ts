// BlockDevice: the one seam between front ends (NBD, iSCSI) and storage (VDI on a sheep cluster, memory, file).
// Front ends translate wire requests into these calls; FUA/flush/trim/zero semantics are defined here once:
// - write(..., {fua:true}) resolves only after the bytes are on stable storage;
// - flush() resolves after every write that resolved before it was called is on stable storage;
// - discard() may deallocate; afterwards the range reads as zeros (devices here guarantee zeroing);
// - writeZeroes() makes the range read as zeros; with {mayTrim:true} it may deallocate;
// - extents() reports allocated data vs holes (holes read as zeros) covering exactly [offset, offset+length).
// Errors are BlockError with a stable code, mapped to NBD errno / SCSI sense at each front end's edge.
import { SheepfoldError } from '../util/errors.js';

/** Stable error codes a BlockDevice may raise; each front end maps them in one table. */
export type BlockErrorCode =
  | 'EIO' // medium error: the data could not be read or written
  | 'ENOSPC' // no space left in the store
  | 'EROFS' // device is read-only (snapshot)
  | 'EINVAL' // out of range or misaligned request
  | 'ENOTSUP' // operation not supported by this device (e.g. FAST_ZERO that would be slow)
  | 'ESHUTDOWN' // device closed
  | 'ECONFLICT'; // reservation/fence conflict: another path owns the device

/** An operation error raised by a BlockDevice; front ends map `code` to the wire. */
export class BlockError extends SheepfoldError<BlockErrorCode> {}

export interface WriteOptions {
  /** Force Unit Access: resolve only once this write is on stable storage. */
  fua?: boolean;
  /** Write fence (docs/fencing.md): no part of this write may start after this instant (ms since the epoch);
   * past it the write fails with EIO instead of landing late. Devices that cannot delay a write may ignore it. */
  notAfter?: number;
  /** When the front end accepted the command carrying this write (ms since the epoch): a device with its own
   * write fence counts its deadline from here, so time spent before the device call (reservation checks,
   * range locks) is not granted twice. Default: when the device is called. */
  issuedAt?: number;
}

export interface ZeroOptions {
  fua?: boolean;
  /** The device may deallocate the range instead of writing zeros (NBD without NO_HOLE, SCSI UNMAP bit). */
  mayTrim?: boolean;
  /** Fail with ENOTSUP instead of falling back to a slow write of zeros (NBD FAST_ZERO). */
  fastOnly?: boolean;
}

/** One run of the extent map: `allocated` false means a hole that reads as zeros. */
export interface Extent {
  offset: number;
  length: number;
  allocated: boolean;
  /** Known to read as zeros (always true for holes; may be true for allocated zero data). */
  zero: boolean;
}

/** What a front end needs to present the device: identity is stable across hosts (multipath). */
export interface BlockIdentity {
  /** Short human name (the export or VDI name). */
  name: string;
  /** Unit serial (SCSI VPD 0x80), stable for the same disk on every target host. */
  serial: string;
  /** 16 hex chars of NAA-6 IEEE registered extended designator payload after the NAA nibble (VPD 0x83). */
  naaId: bigint;
  /** Device-class text for logs and NBD descriptions. */
  description: string;
}

export interface BlockDevice {
  /** Size in bytes; a multiple of blockSize. */
  readonly size: number;
  /** Logical block size for front ends (512 unless configured). */
  readonly blockSize: number;
  /** Preferred I/O granularity (e.g. the object size for a VDI). */
  readonly preferredBlockSize: number;
  readonly readOnly: boolean;
  readonly identity: BlockIdentity;
  /** True when concurrent writers through several connections see one coherent device (NBD CAN_MULTI_CONN). */
  readonly multiConn: boolean;
  /** True when discard deallocates (thin provisioning, SCSI LBPME). */
  readonly thin: boolean;

  read(offset: number, length: number): Promise<Buffer>;
  write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void>;
  flush(): Promise<void>;
  discard(offset: number, length: number, opts?: WriteOptions): Promise<void>;
  writeZeroes(offset: number, length: number, opts?: ZeroOptions): Promise<void>;
  extents(offset: number, length: number): Promise<Extent[]>;
  /** Release resources (locks, sockets); pending operations finish first. */
  close(): Promise<void>;
  /**
   * Optional fast path: read `target.length` bytes at `offset` into `target` (a front end's pooled buffer).
   * The device must not keep `target` after the promise settles.
   */
  readInto?(offset: number, target: Buffer): Promise<void>;
  /**
   * Optional fast path: write the concatenation of `pieces` at `offset`, same semantics as write(). Pieces may
   * be views of network buffers: the device must copy what it keeps and not hold them after settling.
   */
  writev?(offset: number, pieces: readonly Buffer[], opts?: WriteOptions): Promise<void>;
  /**
   * Optional zero-copy read: views of the device's own memory covering [offset, offset+length) in order.
   * They stay valid and unchanged until `release()` (the device copies a lent region before changing it);
   * call `release()` exactly once, when the views are no longer used (e.g. the socket has sent them).
   */
  readLent?(offset: number, length: number): Promise<LentRead>;
  /**
   * Optional COMPARE AND WRITE: write `data` at `offset` only if the device holds `expected` there; resolves
   * null when written, else the offset of the first differing byte (nothing written). Devices shared by
   * several target hosts implement it so the compare and the write are atomic across hosts; without it a
   * front end compares and writes under its own range lock (atomic on one host only).
   */
  compareAndWrite?(offset: number, expected: Buffer, data: Buffer, opts?: WriteOptions): Promise<number | null>;
  /**
   * Optional readiness check for path checkers (SCSI TEST UNIT READY): resolves when the device can serve I/O
   * now, rejects with a BlockError when its backend cannot be reached (a VDI whose sheep do not answer), so an
   * initiator does not put a path back in service that would only time out.
   */
  checkReady?(): Promise<void>;
}

/** Views lent by BlockDevice.readLent, and the function that gives them back. */
export interface LentRead {
  views: Buffer[];
  release: () => void;
}

/** Validate an I/O range against a device; throws EINVAL with a message naming the range. */
export function checkRange(dev: Pick<BlockDevice, 'size'>, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new BlockError('EINVAL', `invalid range offset=${offset} length=${length}`);
  }
  if (offset + length > dev.size) {
    throw new BlockError(
      'EINVAL',
      `range ${offset}+${length} beyond end of device (size ${dev.size})`,
    );
  }
}

/** FNV-1a 64-bit hash of a string's UTF-8 bytes (stable identity derivation without node:crypto). */
function fnv1a64(s: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(s, 'utf8')) {
    h ^= BigInt(b);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return h;
}

/** A stable identity for a device known only by a name (memory and file devices): same name, same ids. */
export function identityFor(name: string, description: string): BlockIdentity {
  const h = fnv1a64(`sheepfold:${name}`);
  return {
    name,
    serial: h.toString(16).padStart(16, '0'),
    naaId: h,
    description,
  };
}
