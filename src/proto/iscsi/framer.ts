// Incremental iSCSI PDU frame decoder (RFC 7143 §11.2): BHS, AHS, header digest, data segment, padding,
// data digest. Chunks are queued; a PDU wholly inside one chunk is returned as views (no copy), one that
// straddles chunks is copied once. Digests and the data segment limit can change between PDUs (after
// login), so PDUs are pulled one at a time with next(). An oversize DataSegmentLength is rejected from
// the BHS alone, before any allocation.
import { crc32c } from './crc32c.js';
import { BHS_SIZE, DIGEST_SIZE } from './constants.js';
import { bhsAhsLength, bhsDataLength, pad4 } from './pdu.js';

export interface RawPdu {
  bhs: Buffer;
  ahs: Buffer;
  data: Buffer;
}

export interface FramerOptions {
  headerDigest: boolean;
  dataDigest: boolean;
  /** Largest DataSegmentLength accepted (our MaxRecvDataSegmentLength; 8192 during login). */
  maxDataSegmentLength: number;
}

/** Framing failure: the stream cannot be resynchronised and the connection must close. */
export class FrameError extends Error {
  readonly code: 'EOVERSIZE' | 'EHDRDIGEST' | 'EDATADIGEST';
  /** For EDATADIGEST: the header of the PDU whose data digest failed (it can be rejected, §7.8). */
  readonly bhs: Buffer | undefined;
  constructor(code: 'EOVERSIZE' | 'EHDRDIGEST' | 'EDATADIGEST', message: string, bhs?: Buffer) {
    super(message);
    this.name = 'FrameError';
    this.code = code;
    this.bhs = bhs;
  }
}

export class PduFramer {
  opts: FramerOptions;
  private chunks: Buffer[] = [];
  private offset = 0; // read position inside chunks[0]
  private avail = 0;

  constructor(opts: Partial<FramerOptions> = {}) {
    this.opts = { headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192, ...opts };
  }

  /** Bytes buffered and not yet returned as PDUs. */
  get buffered(): number {
    return this.avail;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.avail += chunk.length;
  }

  /** The next complete PDU, or undefined if more bytes are needed. Throws FrameError on a bad frame. */
  next(): RawPdu | undefined {
    if (this.avail < BHS_SIZE) return undefined;
    const bhs = this.peek(BHS_SIZE);
    const ahsLen = bhsAhsLength(bhs);
    const dataLen = bhsDataLength(bhs);
    if (dataLen > this.opts.maxDataSegmentLength) {
      throw new FrameError('EOVERSIZE', `DataSegmentLength ${dataLen} > ${this.opts.maxDataSegmentLength}`);
    }
    const hd = this.opts.headerDigest ? DIGEST_SIZE : 0;
    const dd = this.opts.dataDigest && dataLen > 0 ? DIGEST_SIZE : 0;
    const total = BHS_SIZE + ahsLen + hd + dataLen + pad4(dataLen) + dd;
    if (this.avail < total) return undefined;
    const frame = this.take(total);
    const head = frame.subarray(0, BHS_SIZE);
    if (hd) {
      const want = crc32c(frame, 0, 0, BHS_SIZE + ahsLen);
      if (frame.readUInt32LE(BHS_SIZE + ahsLen) !== want) {
        throw new FrameError('EHDRDIGEST', 'header digest mismatch');
      }
    }
    const dStart = BHS_SIZE + ahsLen + hd;
    const data = frame.subarray(dStart, dStart + dataLen);
    if (dd) {
      const padded = dataLen + pad4(dataLen);
      const want = crc32c(frame, 0, dStart, dStart + padded);
      if (frame.readUInt32LE(dStart + padded) !== want) {
        throw new FrameError('EDATADIGEST', 'data digest mismatch', Buffer.from(head));
      }
    }
    return { bhs: head, ahs: frame.subarray(BHS_SIZE, BHS_SIZE + ahsLen), data };
  }

  /** The first n buffered bytes without consuming them (a view when they are inside one chunk). */
  private peek(n: number): Buffer {
    const first = this.chunks[0] as Buffer;
    if (first.length - this.offset >= n) return first.subarray(this.offset, this.offset + n);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    let off = this.offset;
    for (const c of this.chunks) {
      const k = Math.min(c.length - off, n - got);
      c.copy(out, got, off, off + k);
      got += k;
      off = 0;
      if (got === n) break;
    }
    return out;
  }

  /** Consume n bytes: a view if inside the first chunk, else one copy. */
  private take(n: number): Buffer {
    this.avail -= n;
    const first = this.chunks[0] as Buffer;
    if (first.length - this.offset >= n) {
      const v = first.subarray(this.offset, this.offset + n);
      this.offset += n;
      if (this.offset === first.length) {
        this.chunks.shift();
        this.offset = 0;
      }
      return v;
    }
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    while (got < n) {
      const c = this.chunks[0] as Buffer;
      const k = Math.min(c.length - this.offset, n - got);
      c.copy(out, got, this.offset, this.offset + k);
      got += k;
      this.offset += k;
      if (this.offset === c.length) {
        this.chunks.shift();
        this.offset = 0;
      }
    }
    return out;
  }
}

/**
 * The wire buffers of one PDU: [bhs(+ahs), header digest?, data, padding + data digest?].
 * Returned as a list for a corked writev; `data` is never copied.
 */
export function frameBuffers(
  bhs: Buffer,
  data: Buffer | undefined,
  opts: { headerDigest: boolean; dataDigest: boolean },
): Buffer[] {
  const out: Buffer[] = [bhs];
  if (opts.headerDigest) {
    const d = Buffer.allocUnsafe(4);
    d.writeUInt32LE(crc32c(bhs), 0);
    out.push(d);
  }
  if (data && data.length > 0) {
    out.push(data);
    const p = pad4(data.length);
    if (p || opts.dataDigest) {
      const tail = Buffer.alloc(p + (opts.dataDigest ? 4 : 0));
      if (opts.dataDigest) {
        let c = crc32c(data);
        if (p) c = crc32c(tail, c, 0, p);
        tail.writeUInt32LE(c, p);
      }
      out.push(tail);
    }
  }
  return out;
}
