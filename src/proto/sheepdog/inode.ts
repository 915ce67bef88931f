// The inode object `struct sd_inode` (§5.1): header, flat data_vdi_id index, generational refcounts.
// Three partial views exist on the wire (§5.2): the 4664-byte header, tgt's 4 198 968-byte struct (header +
// index, no gref) and the full 12 587 576-byte object. decodeInode accepts any prefix length; missing parts
// read as zero.
import {
  MAX_DATA_OBJS,
  SD_INODE_GREF_OFFSET,
  SD_INODE_HEADER_SIZE,
  SD_INODE_SIZE,
  SD_MAX_VDI_LEN,
  SD_MAX_VDI_TAG_LEN,
} from './constants.js';
import { readCString, writeCString } from './cstring.js';

export const INODE_OFF_NAME = 0;
export const INODE_OFF_TAG = 256;
export const INODE_OFF_CREATE_TIME = 512;
export const INODE_OFF_SNAP_CTIME = 520;
export const INODE_OFF_VM_CLOCK_NSEC = 528;
export const INODE_OFF_VDI_SIZE = 536;
export const INODE_OFF_VM_STATE_SIZE = 544;
export const INODE_OFF_COPY_POLICY = 552;
export const INODE_OFF_STORE_POLICY = 553;
export const INODE_OFF_NR_COPIES = 554;
export const INODE_OFF_BLOCK_SIZE_SHIFT = 555;
export const INODE_OFF_SNAP_ID = 556;
export const INODE_OFF_VDI_ID = 560;
export const INODE_OFF_PARENT_VDI_ID = 564;
export const INODE_OFF_BTREE_COUNTER = 568;
export const INODE_OFF_DATA_VDI_ID = SD_INODE_HEADER_SIZE;
export const INODE_OFF_GREF = SD_INODE_GREF_OFFSET;

const HOST_IS_LE = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export interface Inode {
  name: string;
  tag: string;
  /** sec<<32 | nsec */
  createTime: bigint;
  /** 0 for a working VDI; non-zero marks a snapshot. */
  snapCtime: bigint;
  vmClockNsec: bigint;
  vdiSize: bigint;
  vmStateSize: bigint;
  copyPolicy: number;
  storePolicy: number;
  nrCopies: number;
  blockSizeShift: number;
  snapId: number;
  vdiId: number;
  parentVdiId: number;
  btreeCounter: number;
  /** data_vdi_id[2^20]: 0 = unallocated, own vid = owned, other = inherited from an ancestor. */
  dataVdiId: Uint32Array;
  /** gref[2^20] as interleaved {generation, count} pairs (length 2^21). */
  gref: Int32Array;
}

/** Byte offset of data_vdi_id[idx] inside the inode object. */
export function dataVidOffset(idx: number): number {
  return SD_INODE_HEADER_SIZE + 4 * idx;
}

/** Byte offset of gref[idx] inside the inode object. */
export function grefOffset(idx: number): number {
  return SD_INODE_GREF_OFFSET + 8 * idx;
}

/** A zeroed inode. */
export function emptyInode(): Inode {
  return {
    name: '',
    tag: '',
    createTime: 0n,
    snapCtime: 0n,
    vmClockNsec: 0n,
    vdiSize: 0n,
    vmStateSize: 0n,
    copyPolicy: 0,
    storePolicy: 0,
    nrCopies: 0,
    blockSizeShift: 0,
    snapId: 0,
    vdiId: 0,
    parentVdiId: 0,
    btreeCounter: 0,
    dataVdiId: new Uint32Array(MAX_DATA_OBJS),
    gref: new Int32Array(2 * MAX_DATA_OBJS),
  };
}

export type InodeHeader = Omit<Inode, 'dataVdiId' | 'gref'>;

/** Decode only the header fields (the first 572 bytes suffice; shorter input reads as zero-padded). */
export function decodeInodeHeader(buf: Buffer): InodeHeader {
  const pad =
    buf.length < SD_INODE_HEADER_SIZE
      ? Buffer.concat([buf, Buffer.alloc(SD_INODE_HEADER_SIZE - buf.length)])
      : buf;
  return {
    name: readCString(pad, INODE_OFF_NAME, SD_MAX_VDI_LEN),
    tag: readCString(pad, INODE_OFF_TAG, SD_MAX_VDI_TAG_LEN),
    createTime: pad.readBigUInt64LE(INODE_OFF_CREATE_TIME),
    snapCtime: pad.readBigUInt64LE(INODE_OFF_SNAP_CTIME),
    vmClockNsec: pad.readBigUInt64LE(INODE_OFF_VM_CLOCK_NSEC),
    vdiSize: pad.readBigUInt64LE(INODE_OFF_VDI_SIZE),
    vmStateSize: pad.readBigUInt64LE(INODE_OFF_VM_STATE_SIZE),
    copyPolicy: pad.readUInt8(INODE_OFF_COPY_POLICY),
    storePolicy: pad.readUInt8(INODE_OFF_STORE_POLICY),
    nrCopies: pad.readUInt8(INODE_OFF_NR_COPIES),
    blockSizeShift: pad.readUInt8(INODE_OFF_BLOCK_SIZE_SHIFT),
    snapId: pad.readUInt32LE(INODE_OFF_SNAP_ID),
    vdiId: pad.readUInt32LE(INODE_OFF_VDI_ID),
    parentVdiId: pad.readUInt32LE(INODE_OFF_PARENT_VDI_ID),
    btreeCounter: pad.readUInt32LE(INODE_OFF_BTREE_COUNTER),
  };
}

/** Copy `len` LE bytes from buf[off..] into a typed array's memory (host must be little-endian). */
function copyLE(buf: Buffer, off: number, len: number, dst: Uint32Array | Int32Array): void {
  if (len <= 0) return;
  if (HOST_IS_LE) {
    Buffer.from(dst.buffer, dst.byteOffset, dst.byteLength).set(buf.subarray(off, off + len));
    return;
  }
  for (let i = 0; i * 4 < len; i++) dst[i] = buf.readUInt32LE(off + 4 * i);
}

/** Decode an inode from any prefix of the object (header, tgt view, or full). */
export function decodeInode(buf: Buffer): Inode {
  const ino: Inode = {
    ...decodeInodeHeader(buf),
    dataVdiId: new Uint32Array(MAX_DATA_OBJS),
    gref: new Int32Array(2 * MAX_DATA_OBJS),
  };
  const idxLen = Math.min(buf.length - SD_INODE_HEADER_SIZE, 4 * MAX_DATA_OBJS);
  copyLE(buf, SD_INODE_HEADER_SIZE, idxLen - (idxLen % 4), ino.dataVdiId);
  const grefLen = Math.min(buf.length - SD_INODE_GREF_OFFSET, 8 * MAX_DATA_OBJS);
  copyLE(buf, SD_INODE_GREF_OFFSET, grefLen - (grefLen % 4), ino.gref);
  return ino;
}

/** Encode the 4664-byte header. */
export function encodeInodeHeader(ino: InodeHeader): Buffer {
  const out = Buffer.alloc(SD_INODE_HEADER_SIZE);
  writeCString(out, INODE_OFF_NAME, SD_MAX_VDI_LEN, ino.name);
  writeCString(out, INODE_OFF_TAG, SD_MAX_VDI_TAG_LEN, ino.tag);
  out.writeBigUInt64LE(ino.createTime, INODE_OFF_CREATE_TIME);
  out.writeBigUInt64LE(ino.snapCtime, INODE_OFF_SNAP_CTIME);
  out.writeBigUInt64LE(ino.vmClockNsec, INODE_OFF_VM_CLOCK_NSEC);
  out.writeBigUInt64LE(ino.vdiSize, INODE_OFF_VDI_SIZE);
  out.writeBigUInt64LE(ino.vmStateSize, INODE_OFF_VM_STATE_SIZE);
  out.writeUInt8(ino.copyPolicy, INODE_OFF_COPY_POLICY);
  out.writeUInt8(ino.storePolicy, INODE_OFF_STORE_POLICY);
  out.writeUInt8(ino.nrCopies, INODE_OFF_NR_COPIES);
  out.writeUInt8(ino.blockSizeShift, INODE_OFF_BLOCK_SIZE_SHIFT);
  out.writeUInt32LE(ino.snapId >>> 0, INODE_OFF_SNAP_ID);
  out.writeUInt32LE(ino.vdiId >>> 0, INODE_OFF_VDI_ID);
  out.writeUInt32LE(ino.parentVdiId >>> 0, INODE_OFF_PARENT_VDI_ID);
  out.writeUInt32LE(ino.btreeCounter >>> 0, INODE_OFF_BTREE_COUNTER);
  return out;
}

/** Encode a whole inode object: `length` = SD_INODE_SIZE (full) or TGT_INODE_SIZE (tgt view, no gref). */
export function encodeInode(ino: Inode, length: number = SD_INODE_SIZE): Buffer {
  const out = Buffer.alloc(length);
  encodeInodeHeader(ino).copy(out, 0, 0, Math.min(SD_INODE_HEADER_SIZE, length));
  const idxBytes = Buffer.from(ino.dataVdiId.buffer, ino.dataVdiId.byteOffset, ino.dataVdiId.byteLength);
  if (length > SD_INODE_HEADER_SIZE) writeLE(out, SD_INODE_HEADER_SIZE, idxBytes, ino.dataVdiId);
  if (length > SD_INODE_GREF_OFFSET) {
    const grefBytes = Buffer.from(ino.gref.buffer, ino.gref.byteOffset, ino.gref.byteLength);
    writeLE(out, SD_INODE_GREF_OFFSET, grefBytes, ino.gref);
  }
  return out;
}

function writeLE(out: Buffer, off: number, bytes: Buffer, arr: Uint32Array | Int32Array): void {
  const room = out.length - off;
  if (HOST_IS_LE) {
    bytes.copy(out, off, 0, Math.min(bytes.length, room));
    return;
  }
  for (let i = 0; i < arr.length && 4 * i + 4 <= room; i++) out.writeUInt32LE(arr[i]! >>> 0, off + 4 * i);
}

/** The bytes of data_vdi_id[start .. start+count) as LE u32, for an index-area WRITE_OBJ at dataVidOffset(start). */
export function encodeIndexRange(dataVdiId: Uint32Array, start: number, count: number): Buffer {
  const out = Buffer.allocUnsafe(4 * count);
  for (let i = 0; i < count; i++) out.writeUInt32LE(dataVdiId[start + i] ?? 0, 4 * i);
  return out;
}

/** Number of data objects a VDI of `vdiSize` bytes spans with objects of 2^shift bytes. */
export function countDataObjs(vdiSize: bigint, blockSizeShift: number): number {
  const osz = 1n << BigInt(blockSizeShift);
  return Number((vdiSize + osz - 1n) / osz);
}

/** True if an inode describes a snapshot (§4.4). */
export function isSnapshot(ino: Pick<Inode, 'snapCtime'>): boolean {
  return ino.snapCtime !== 0n;
}

/** The wire timestamp format: seconds << 32 | nanoseconds (§4.4). */
export function sdTimestamp(ms: number): bigint {
  const sec = Math.floor(ms / 1000);
  const nsec = (ms % 1000) * 1_000_000;
  return (BigInt(sec) << 32n) | BigInt(nsec);
}

/** Seconds part of a wire timestamp. */
export function sdTimestampSeconds(t: bigint): number {
  return Number(t >> 32n);
}

