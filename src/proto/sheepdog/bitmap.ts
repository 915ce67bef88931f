// The VDI bitmaps (§4.5): 2^24 bits, bit v in byte v>>3 at bit v&7 (LSB first). READ_VDIS and READ_DEL_VDIS
// carry exactly these 2 097 152 bytes.
import { SD_NR_VDIS, SD_VDI_BITMAP_SIZE } from './constants.js';

export class VdiBitmap {
  readonly bytes: Uint8Array;

  constructor(bytes?: Uint8Array) {
    if (bytes !== undefined && bytes.length !== SD_VDI_BITMAP_SIZE) {
      throw new RangeError(`VDI bitmap must be ${SD_VDI_BITMAP_SIZE} bytes, got ${bytes.length}`);
    }
    this.bytes = bytes ? new Uint8Array(bytes) : new Uint8Array(SD_VDI_BITMAP_SIZE);
  }

  test(vid: number): boolean {
    return ((this.bytes[vid >>> 3] ?? 0) & (1 << (vid & 7))) !== 0;
  }

  set(vid: number): void {
    checkVid(vid);
    this.bytes[vid >>> 3] = (this.bytes[vid >>> 3] ?? 0) | (1 << (vid & 7));
  }

  clear(vid: number): void {
    checkVid(vid);
    this.bytes[vid >>> 3] = (this.bytes[vid >>> 3] ?? 0) & ~(1 << (vid & 7));
  }

  /** First clear bit at or after `from` (below 2^24), or -1. */
  nextZero(from: number): number {
    for (let v = from; v < SD_NR_VDIS; ) {
      const byte = this.bytes[v >>> 3] ?? 0;
      if (byte === 0xff && (v & 7) === 0) {
        v += 8;
        continue;
      }
      if ((byte & (1 << (v & 7))) === 0) return v;
      v++;
    }
    return -1;
  }

  /** First set bit at or after `from`, or -1. */
  nextSet(from: number): number {
    for (let v = from; v < SD_NR_VDIS; ) {
      const byte = this.bytes[v >>> 3] ?? 0;
      if (byte === 0 && (v & 7) === 0) {
        v += 8;
        continue;
      }
      if ((byte & (1 << (v & 7))) !== 0) return v;
      v++;
    }
    return -1;
  }

  /** Every set vid in ascending order. */
  *setBits(): Generator<number> {
    for (let v = this.nextSet(0); v !== -1; v = this.nextSet(v + 1)) yield v;
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.bytes.byteLength);
  }
}

function checkVid(vid: number): void {
  if (!Number.isInteger(vid) || vid < 0 || vid >= SD_NR_VDIS) throw new RangeError(`vid ${vid} out of range`);
}
