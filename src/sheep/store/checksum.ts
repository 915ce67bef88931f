// Per-object checksums kept with the object (issue 8, test 5): a sidecar file `<store>/csum/<oid>` holds one
// entry per 4 KiB block of the object: the CRC-32 of the block's current bytes and the CRC-32 of the bytes it
// held before the last change. A read accepts either, so a crash in the middle of an overwrite (old bytes or
// new bytes on disk) never looks like corruption, while a bit flip, a zeroed or truncated block matches
// neither. Layout (little-endian): magic u32 'SFCS', version u32, object size u64, then entries
// { cur u32, prev u32 } × ceil(size / 4096), then the object's version trailer { magic u32 'SFVR', epoch u32,
// gen u32, current u32 } (absent in sidecars written before versions: the version is then unknown). The
// trailer is written with the entries and covered by the same fdatasync. GET_HASH stays the SHA-1 of the
// object data alone.
import { crc32 } from 'node:zlib';
import type { ObjVersion } from './store.js';

export const CSUM_MAGIC = 0x53434653; // 'SFCS' read as LE bytes
export const CSUM_VERSION = 1;
export const CSUM_HEADER_SIZE = 16;
export const CSUM_ENTRY_SIZE = 8;
export const CSUM_BLOCK = 4096;

export interface CsumEntry {
  cur: number;
  prev: number;
}

const zeroCrcs = new Map<number, number>();

/** CRC-32 of `n` zero bytes (cached: most blocks of a sparse object are holes). */
export function zeroCrc(n: number): number {
  let c = zeroCrcs.get(n);
  if (c === undefined) zeroCrcs.set(n, (c = crc32(Buffer.alloc(n))));
  return c;
}

export function blockCrc(b: Buffer): number {
  return crc32(b);
}

export function blockCount(size: number): number {
  return Math.ceil(size / CSUM_BLOCK);
}

/** Byte length of block `i` of an object of `size` bytes (the last block may be short). */
export function blockLength(size: number, i: number): number {
  return Math.min(CSUM_BLOCK, size - i * CSUM_BLOCK);
}

export function entryOffset(i: number): number {
  return CSUM_HEADER_SIZE + i * CSUM_ENTRY_SIZE;
}

export function encodeCsumHeader(size: number): Buffer {
  const b = Buffer.alloc(CSUM_HEADER_SIZE);
  b.writeUInt32LE(CSUM_MAGIC, 0);
  b.writeUInt32LE(CSUM_VERSION, 4);
  b.writeBigUInt64LE(BigInt(size), 8);
  return b;
}

/** The object size a sidecar header names, or null when the header is not ours. */
export function decodeCsumHeader(b: Buffer): number | null {
  if (b.length < CSUM_HEADER_SIZE || b.readUInt32LE(0) !== CSUM_MAGIC || b.readUInt32LE(4) !== CSUM_VERSION) return null;
  const size = b.readBigUInt64LE(8);
  return size > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(size);
}

export function encodeEntries(entries: readonly CsumEntry[]): Buffer {
  const b = Buffer.alloc(entries.length * CSUM_ENTRY_SIZE);
  entries.forEach((e, i) => {
    b.writeUInt32LE(e.cur >>> 0, i * CSUM_ENTRY_SIZE);
    b.writeUInt32LE(e.prev >>> 0, i * CSUM_ENTRY_SIZE + 4);
  });
  return b;
}

export function decodeEntries(b: Buffer): CsumEntry[] {
  const out: CsumEntry[] = [];
  for (let o = 0; o + CSUM_ENTRY_SIZE <= b.length; o += CSUM_ENTRY_SIZE) out.push({ cur: b.readUInt32LE(o), prev: b.readUInt32LE(o + 4) });
  return out;
}

/** True when a block's CRC is one the entry allows. */
export function entryAccepts(e: CsumEntry | undefined, crc: number): boolean {
  return e !== undefined && (e.cur === crc || e.prev === crc);
}

export const VER_MAGIC = 0x52564653; // 'SFVR' read as LE bytes
export const VER_TRAILER_SIZE = 16;

/** Offset of the version trailer in the sidecar of an object of `size` bytes. */
export function trailerOffset(size: number): number {
  return entryOffset(blockCount(size));
}

export function encodeVersionTrailer(v: ObjVersion): Buffer {
  const b = Buffer.alloc(VER_TRAILER_SIZE);
  b.writeUInt32LE(VER_MAGIC, 0);
  b.writeUInt32LE(v.epoch >>> 0, 4);
  b.writeUInt32LE(v.gen >>> 0, 8);
  b.writeUInt32LE(v.current >>> 0, 12);
  return b;
}

/** The version a trailer holds, or null when the bytes are not a trailer (an old sidecar). */
export function decodeVersionTrailer(b: Buffer): ObjVersion | null {
  if (b.length < VER_TRAILER_SIZE || b.readUInt32LE(0) !== VER_MAGIC) return null;
  return { epoch: b.readUInt32LE(4), gen: b.readUInt32LE(8), current: b.readUInt32LE(12) };
}
