// ByteQueue: the chunk list under the NBD frame decoders. Bytes are handed out as views into the received
// chunks when a frame lies inside one chunk, and copied only when it spans a chunk border.
// Invariant: `length` equals the unread bytes over all chunks; chunks[0] is read from `head`.

export class ByteQueue {
  private chunks: Buffer[] = [];
  private first = 0;
  private head = 0;
  private total = 0;

  /** Unread bytes. */
  get length(): number {
    return this.total;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /** Read a big-endian u32 at `at` bytes from the read position without consuming; caller ensures bounds. */
  peekU32(at: number): number {
    const c = this.chunks[this.first];
    if (c !== undefined && this.head + at + 4 <= c.length) return c.readUInt32BE(this.head + at);
    return this.peek(at + 4).readUInt32BE(at);
  }

  /** The next n bytes without consuming (a view if contiguous, else a copy); caller ensures n <= length. */
  peek(n: number): Buffer {
    const c = this.chunks[this.first];
    if (c !== undefined && this.head + n <= c.length) return c.subarray(this.head, this.head + n);
    return this.gather(n, false);
  }

  /** Consume and return the next n bytes (a view if contiguous, else one copy); caller ensures n <= length. */
  take(n: number): Buffer {
    const c = this.chunks[this.first];
    if (c !== undefined && this.head + n <= c.length) {
      const v = c.subarray(this.head, this.head + n);
      this.advance(n);
      return v;
    }
    return this.gather(n, true);
  }

  /** Consume the next n bytes as views of the received chunks, never copying; caller ensures n <= length. */
  takeViews(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    let i = this.first;
    let h = this.head;
    while (left > 0) {
      const c = this.chunks[i];
      if (c === undefined) throw new RangeError('ByteQueue underflow');
      const k = Math.min(c.length - h, left);
      out.push(c.subarray(h, h + k));
      left -= k;
      h = 0;
      i++;
    }
    this.advance(n);
    return out;
  }

  /** Discard up to n bytes; returns how many were discarded. */
  skip(n: number): number {
    const k = Math.min(n, this.total);
    this.advance(k);
    return k;
  }

  /** Drop every buffered byte (after a protocol error or a TLS upgrade). */
  clear(): void {
    this.chunks = [];
    this.first = 0;
    this.head = 0;
    this.total = 0;
  }

  private gather(n: number, consume: boolean): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    let i = this.first;
    let h = this.head;
    while (filled < n) {
      const c = this.chunks[i];
      if (c === undefined) throw new RangeError('ByteQueue underflow');
      const k = Math.min(c.length - h, n - filled);
      c.copy(out, filled, h, h + k);
      filled += k;
      h = 0;
      i++;
    }
    if (consume) this.advance(n);
    return out;
  }

  private advance(n: number): void {
    this.total -= n;
    while (n > 0) {
      const c = this.chunks[this.first];
      if (c === undefined) break;
      const left = c.length - this.head;
      if (n < left) {
        this.head += n;
        return;
      }
      n -= left;
      this.first++;
      this.head = 0;
    }
    if (this.first === this.chunks.length) {
      this.chunks = [];
      this.first = 0;
    } else if (this.first > 64) {
      this.chunks = this.chunks.slice(this.first);
      this.first = 0;
    }
  }
}
