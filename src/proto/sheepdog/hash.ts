// Sheepdog hash functions (§9.2, §4.2, §4.3): FNV-1a 64, the ring hashes and the VDI-name → vid hash.
// All arithmetic is exact unsigned 64-bit (BigInt.asUintN).
import { SD_MAX_VDI_ATTR_KEY_LEN, SD_MAX_VDI_LEN, SD_MAX_VDI_TAG_LEN, SD_NR_VDIS } from './constants.js';

export const FNV1A_64_INIT = 0xcbf29ce484222325n;
export const FNV_64_PRIME = 0x100000001b3n;

/** FNV-1a 64 over bytes, continuing from `h`. */
export function fnv1a64(bytes: Uint8Array, h: bigint = FNV1A_64_INIT): bigint {
  // Work on two 32-bit halves for speed: h * prime = h * 2^40 + h * 0x1b3 (mod 2^64).
  let hi = Number((h >> 32n) & 0xffffffffn);
  let lo = Number(h & 0xffffffffn);
  for (let i = 0; i < bytes.length; i++) {
    lo ^= bytes[i]!;
    lo >>>= 0;
    // (hi:lo) * 0x1b3
    const loMul = lo * 0x1b3; // < 2^41, exact in a double
    const carry = Math.floor(loMul / 0x100000000);
    const newLo = loMul >>> 0;
    let newHi = (Math.imul(hi, 0x1b3) + carry) >>> 0;
    // + (hi:lo) << 40  → adds (lo << 8) to the high word (mod 2^32)
    newHi = (newHi + ((lo << 8) >>> 0)) >>> 0;
    hi = newHi;
    lo = newLo;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/** FNV-1a 64 over the 8 bytes of `v`, least significant byte first (`fnv_64a_64`). */
export function fnv64(v: bigint, h: bigint): bigint {
  const b = new Uint8Array(8);
  let x = BigInt.asUintN(64, v);
  for (let i = 0; i < 8; i++) {
    b[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return fnv1a64(b, h);
}

/** `sd_hash(buf)`: fnv1a over the buffer, then one fnv64 mixing round. */
export function sdHash(bytes: Uint8Array): bigint {
  const h = fnv1a64(bytes);
  return fnv64(h, h);
}

/** `sd_hash_oid(oid)`: the ring position of an object. */
export function sdHashOid(oid: bigint): bigint {
  const h = fnv64(oid, FNV1A_64_INIT);
  return fnv64(h, h);
}

/** `sd_hash_next(h)`: the next vnode hash after `h`. */
export function sdHashNext(h: bigint): bigint {
  return fnv64(h, h);
}

/** Bytes of a C string up to (not including) the first NUL, capped at `max`. */
function cStringBytes(name: string | Uint8Array, max: number): Uint8Array {
  const b = typeof name === 'string' ? Buffer.from(name, 'utf8') : name;
  let n = 0;
  while (n < b.length && n < max && b[n] !== 0) n++;
  return b.subarray(0, n);
}

/** `sd_hash_vdi(name)`: the starting vid for a VDI name (low 24 bits of FNV-1a; 0 becomes 1). */
export function sdHashVdi(name: string | Uint8Array): number {
  const h = fnv1a64(cStringBytes(name, SD_MAX_VDI_LEN));
  const vid = Number(h & BigInt(SD_NR_VDIS - 1));
  return vid === 0 ? 1 : vid;
}

/** A NUL-padded fixed-size C string field. */
export function fixedString(s: string | Uint8Array, size: number): Buffer {
  const out = Buffer.alloc(size);
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : Buffer.from(s);
  b.copy(out, 0, 0, Math.min(b.length, size));
  return out;
}

/** Attribute id (§4.3): low 32 bits of FNV-1a over name[256] + tag[256] + snap_id (u32 LE) + key[256]. */
export function vdiAttrId(name: string, tag: string, snapId: number, key: string): number {
  const buf = Buffer.alloc(SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN + 4 + SD_MAX_VDI_ATTR_KEY_LEN);
  fixedString(name, SD_MAX_VDI_LEN).copy(buf, 0);
  fixedString(tag, SD_MAX_VDI_TAG_LEN).copy(buf, SD_MAX_VDI_LEN);
  buf.writeUInt32LE(snapId >>> 0, SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN);
  fixedString(key, SD_MAX_VDI_ATTR_KEY_LEN).copy(buf, SD_MAX_VDI_LEN + SD_MAX_VDI_TAG_LEN + 4);
  return Number(fnv1a64(buf) & 0xffffffffn);
}
