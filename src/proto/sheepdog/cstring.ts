// NUL-padded fixed-size C string fields, as used in inode names, tags, attr keys and store names.

/** Read a C string from a fixed-size field: bytes up to the first NUL (or the field end), as UTF-8. */
export function readCString(buf: Buffer, off: number, size: number): string {
  const end = Math.min(off + size, buf.length);
  let n = off;
  while (n < end && buf[n] !== 0) n++;
  return buf.toString('utf8', off, n);
}

/** Write a C string into a fixed-size field, NUL padded and truncated to the field size. */
export function writeCString(buf: Buffer, off: number, size: number, s: string): void {
  buf.fill(0, off, off + size);
  const b = Buffer.from(s, 'utf8');
  b.copy(buf, off, 0, Math.min(b.length, size));
}
