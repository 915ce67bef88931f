// CRC32C (Castagnoli): the iSCSI header and data digest (RFC 7143 §13.1, test vectors in RFC 3720 appendix
// B.4), computed natively (the CPU's CRC32C instructions, through @node-rs/crc32); a JavaScript version is kept
// in the tests as the oracle. The digest goes on the wire least-significant byte first (RFC 3720 B.4 shows 32
// zero bytes → aa 36 91 8a).
import { crc32c as nativeCrc32c } from '@node-rs/crc32';

/** Continue a CRC32C over `buf[start, end)`; pass the previous result as `crc` (0 to begin). */
export function crc32c(buf: Uint8Array, crc = 0, start = 0, end = buf.length): number {
  if (start >= end) return crc >>> 0;
  return nativeCrc32c(start === 0 && end === buf.length ? buf : buf.subarray(start, end), crc) >>> 0;
}

/** The 4 wire bytes of a digest value (least-significant byte first). */
export function digestBytes(crc: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32LE(crc >>> 0, 0);
  return b;
}
