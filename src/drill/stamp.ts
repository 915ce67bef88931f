// Stamped blocks for verifying workloads: every written block carries (writer, seq, lba) and a checksum, and
// its payload is a deterministic function of the stamp, so any read can be classified as zeros (never
// written), a valid stamp (exactly one write produced it) or garbage (neither: corruption).
import { crc32 } from 'node:zlib';

export const STAMP_MAGIC = 0x53465354; // 'SFST'
export const STAMP_HEADER_SIZE = 32;

export interface Stamp {
  writer: number;
  seq: number;
  lba: number;
}

/** Fill `out` with the deterministic payload of a stamp (xorshift32 seeded from the stamp). */
function fillPayload(out: Buffer, s: Stamp): void {
  let x = (Math.imul(s.writer + 1, 0x9e3779b1) ^ Math.imul(s.seq + 1, 0x85ebca6b) ^ Math.imul(s.lba + 1, 0xc2b2ae35)) >>> 0;
  if (x === 0) x = 1;
  for (let i = 0; i + 4 <= out.length; i += 4) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out.writeUInt32LE(x, i);
  }
}

/** A block of `size` bytes (>= 64, multiple of 4) carrying the stamp. */
export function makeStampedBlock(s: Stamp, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  fillPayload(b.subarray(STAMP_HEADER_SIZE), s);
  b.writeUInt32LE(STAMP_MAGIC, 0);
  b.writeUInt32LE(s.writer >>> 0, 4);
  b.writeBigUInt64LE(BigInt(s.seq), 8);
  b.writeBigUInt64LE(BigInt(s.lba), 16);
  b.writeUInt32LE(crc32(b.subarray(STAMP_HEADER_SIZE)), 24);
  b.writeUInt32LE(0, 28);
  return b;
}

export type BlockContent =
  | { kind: 'zero' }
  | { kind: 'stamp'; stamp: Stamp }
  | { kind: 'garbage'; reason: string };

/** Classify a read block. A stamp is valid only if header, checksum and the whole payload match. */
export function classifyBlock(b: Buffer, expectedLba?: number): BlockContent {
  if (b.every((x) => x === 0)) return { kind: 'zero' };
  if (b.length < 64 || b.readUInt32LE(0) !== STAMP_MAGIC) return { kind: 'garbage', reason: 'bad magic' };
  const stamp: Stamp = {
    writer: b.readUInt32LE(4),
    seq: Number(b.readBigUInt64LE(8)),
    lba: Number(b.readBigUInt64LE(16)),
  };
  if (expectedLba !== undefined && stamp.lba !== expectedLba) {
    return { kind: 'garbage', reason: `stamp for lba ${stamp.lba} found at lba ${expectedLba}` };
  }
  if (crc32(b.subarray(STAMP_HEADER_SIZE)) !== b.readUInt32LE(24)) return { kind: 'garbage', reason: 'checksum mismatch' };
  const expect = makeStampedBlock(stamp, b.length);
  if (!expect.equals(b)) return { kind: 'garbage', reason: 'payload differs from stamp' };
  return { kind: 'stamp', stamp };
}

/** The register value a block content stands for: '0' for never written, `w:s` for a stamp. */
export function valueKey(c: BlockContent): string {
  if (c.kind === 'zero') return '0';
  if (c.kind === 'stamp') return `${c.stamp.writer}:${c.stamp.seq}`;
  return `garbage:${c.reason}`;
}
