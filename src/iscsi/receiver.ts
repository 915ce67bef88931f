// PduReceiver: the iSCSI PDU reader for sockets that read into buffers we own (Node's `onread` user buffers).
// The socket reads into one reused receive buffer or, while a large data segment is outstanding, straight into
// that segment's destination: a buffer the connection chooses from the header (the task's pooled Data-Out
// buffer at the PDU's offset), else a fresh one. Bulk writes then cost no allocation and no copy per read.
// The header (BHS, AHS, header digest) is copied into a reused carry, the padding and data digest into a small
// tail, so every byte of a read is consumed before the read callback returns and the receive buffer is reused
// at once. PDUs are handed over one at a time, synchronously; the BHS and AHS views are valid only during that
// call. Digests and the data segment limit apply from the next header on (they change after login).
// Failures throw FrameError, as the framer does: the connection must close.
// Spec: RFC 7143 §11.2 (BHS, AHS, digests, data segment, padding).
import { crc32c } from '../proto/iscsi/crc32c.js';
import { BHS_SIZE, DIGEST_SIZE } from '../proto/iscsi/constants.js';
import { FrameError, type FramerOptions, type RawPdu } from '../proto/iscsi/framer.js';
import { bhsAhsLength, bhsDataLength, pad4 } from '../proto/iscsi/pdu.js';

/** Bytes of the reused receive buffer of one connection. */
export const ISCSI_RECEIVE_BUFFER_BYTES = 256 * 1024;
/** Data segment bytes still missing above which the socket reads straight into the segment's buffer. */
export const ISCSI_DIRECT_DATA_MIN_BYTES = 32 * 1024;
/** Largest header: BHS, 255 words of AHS, header digest. */
const MAX_HEADER_BYTES = BHS_SIZE + 255 * 4 + DIGEST_SIZE;
const EMPTY = Buffer.alloc(0);

/** Where a PDU's data segment goes, chosen from its BHS: a buffer of exactly `dataLength` bytes, or undefined. */
export type DataPlacement = (bhs: Buffer, dataLength: number) => Buffer | undefined;

interface PendingData {
  ahsLen: number;
  data: Buffer;
  fill: number;
  /** Padding plus data digest bytes still expected after the data. */
  tailLen: number;
  tailFill: number;
}

export class PduReceiver {
  opts: FramerOptions;
  private recv: Buffer | undefined;
  private readonly head = Buffer.allocUnsafe(MAX_HEADER_BYTES);
  private headFill = 0;
  /** Header bytes wanted: BHS_SIZE until the BHS is in, then BHS + AHS + header digest. */
  private headWant = BHS_SIZE;
  private readonly tail = Buffer.allocUnsafe(8);
  private pending: PendingData | undefined;
  /** The region handed out by nextBuffer() when the next read goes straight into a data segment. */
  private direct: Buffer | undefined;

  constructor(
    private readonly place: DataPlacement,
    private readonly emit: (raw: RawPdu) => void,
    opts: Partial<FramerOptions> = {},
  ) {
    this.opts = { headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192, ...opts };
  }

  /** Where the socket's next read goes: the rest of a large pending data segment, else the receive buffer. */
  nextBuffer(): Buffer {
    const p = this.pending;
    if (p !== undefined && p.data.length - p.fill >= ISCSI_DIRECT_DATA_MIN_BYTES) {
      this.direct = p.data.subarray(p.fill);
      return this.direct;
    }
    this.direct = undefined;
    this.recv ??= Buffer.allocUnsafeSlow(ISCSI_RECEIVE_BUFFER_BYTES);
    return this.recv;
  }

  /** Forget the half-received PDU (connection closing). */
  dispose(): void {
    this.pending = undefined;
    this.direct = undefined;
  }

  /** Consume the `n` bytes a read put at the start of `buf` (nextBuffer()'s, or any chunk). */
  consume(buf: Buffer, n: number): void {
    let at = 0;
    if (this.direct !== undefined && buf === this.direct) {
      // The kernel wrote them in place: nothing to copy.
      const p = this.pending as PendingData;
      p.fill += n;
      this.direct = undefined;
      if (p.fill === p.data.length && p.tailLen === 0) this.complete();
      return;
    }
    while (at < n) {
      const p = this.pending;
      if (p !== undefined) {
        if (p.fill < p.data.length) {
          const k = Math.min(p.data.length - p.fill, n - at);
          buf.copy(p.data, p.fill, at, at + k);
          p.fill += k;
          at += k;
        } else {
          const k = Math.min(p.tailLen - p.tailFill, n - at);
          buf.copy(this.tail, p.tailFill, at, at + k);
          p.tailFill += k;
          at += k;
        }
        if (p.fill === p.data.length && p.tailFill === p.tailLen) this.complete();
        continue;
      }
      const k = Math.min(this.headWant - this.headFill, n - at);
      buf.copy(this.head, this.headFill, at, at + k);
      this.headFill += k;
      at += k;
      if (this.headFill < this.headWant) break;
      if (this.headWant === BHS_SIZE) {
        const bhs = this.head.subarray(0, BHS_SIZE);
        const dataLen = bhsDataLength(bhs);
        if (dataLen > this.opts.maxDataSegmentLength) {
          throw new FrameError('EOVERSIZE', `DataSegmentLength ${dataLen} > ${this.opts.maxDataSegmentLength}`);
        }
        this.headWant = BHS_SIZE + bhsAhsLength(bhs) + (this.opts.headerDigest ? DIGEST_SIZE : 0);
        if (this.headFill < this.headWant) continue;
      }
      this.header();
    }
  }

  /** The whole header is in `head`: check its digest, then emit the PDU or wait for its data segment. */
  private header(): void {
    const bhs = this.head.subarray(0, BHS_SIZE);
    const ahsLen = bhsAhsLength(bhs);
    const dataLen = bhsDataLength(bhs);
    if (this.opts.headerDigest) {
      const end = BHS_SIZE + ahsLen;
      if (this.head.readUInt32LE(end) !== crc32c(this.head, 0, 0, end)) {
        throw new FrameError('EHDRDIGEST', 'header digest mismatch');
      }
    }
    this.headFill = 0;
    this.headWant = BHS_SIZE;
    if (dataLen === 0) {
      this.emit({ bhs, ahs: this.head.subarray(BHS_SIZE, BHS_SIZE + ahsLen), data: EMPTY });
      return;
    }
    let data = this.place(bhs, dataLen);
    if (data === undefined || data.length !== dataLen) {
      // Small segments come from Node's shared slab; large ones get their own memory, read in place.
      data = dataLen < ISCSI_DIRECT_DATA_MIN_BYTES ? Buffer.allocUnsafe(dataLen) : Buffer.allocUnsafeSlow(dataLen);
    }
    const tailLen = pad4(dataLen) + (this.opts.dataDigest ? DIGEST_SIZE : 0);
    this.pending = { ahsLen, data, fill: 0, tailLen, tailFill: 0 };
  }

  /** The data segment and its tail are in: check the data digest and emit. */
  private complete(): void {
    const p = this.pending as PendingData;
    this.pending = undefined;
    const bhs = this.head.subarray(0, BHS_SIZE);
    if (this.opts.dataDigest) {
      const pad = p.tailLen - DIGEST_SIZE;
      let want = crc32c(p.data);
      if (pad > 0) want = crc32c(this.tail, want, 0, pad);
      if (this.tail.readUInt32LE(pad) !== want) {
        throw new FrameError('EDATADIGEST', 'data digest mismatch', Buffer.from(bhs));
      }
    }
    this.emit({ bhs, ahs: this.head.subarray(BHS_SIZE, BHS_SIZE + p.ahsLen), data: p.data });
  }
}
