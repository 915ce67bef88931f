// Small byte-buffer helpers shared by the sheep and the block layer.

/** Index of the first byte where `a` and `b` differ, or -1 when they are equal (a shorter one differs at its end). */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

/** Copy `src` into `dst` at `at`, unless `src` already is that region of `dst`'s memory (read there in place). */
export function copyUnlessInPlace(src: Buffer, dst: Buffer, at = 0): void {
  if (src.buffer === dst.buffer && src.byteOffset === dst.byteOffset + at) return;
  src.copy(dst, at);
}
