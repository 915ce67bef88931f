// iSCSI PDU framing (RFC 7143 §11.2): BHS, AHS, header digest, data segment, padding, data digest, described
// as a FrameCodec for the one FrameEngine, the pull framer the initiator and test peers use, and the writer.
// Digests and the data segment limit change between PDUs (after login): the codec reads its options when a
// header arrives, so a change made while a PDU is handed out applies from the next header on. An oversize
// DataSegmentLength is rejected from the BHS alone, before any allocation.
import { FrameEngine, type Frame, type FrameCodec, type FrameLayout } from '../frame.js';
import { crc32c } from './crc32c.js';
import { BHS_SIZE, DIGEST_SIZE } from './constants.js';
import { bhsAhsLength, bhsDataLength, pad4 } from './pdu.js';
import { SheepfoldError } from '../../util/errors.js';

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
export class FrameError extends SheepfoldError<'EOVERSIZE' | 'EHDRDIGEST' | 'EDATADIGEST'> {
  /** For EDATADIGEST: the header of the PDU whose data digest failed (it can be rejected, §7.8). */
  readonly bhs: Buffer | undefined;
  constructor(code: 'EOVERSIZE' | 'EHDRDIGEST' | 'EDATADIGEST', message: string, bhs?: Buffer) {
    super(code, message);
    this.bhs = bhs;
  }
}

/** Where a PDU's data segment goes, chosen from its BHS: a buffer of exactly `dataLength` bytes, or undefined. */
export type DataPlacement = (bhs: Buffer, dataLength: number) => Buffer | undefined;

/** A PDU header as framed: views of the header bytes, and whether its data segment carries a digest. */
export interface PduHeader {
  bhs: Buffer;
  ahs: Buffer;
  dataDigest: boolean;
}

export const DEFAULT_FRAMER_OPTIONS: FramerOptions = { headerDigest: false, dataDigest: false, maxDataSegmentLength: 8192 };

/** The iSCSI PDU codec; `opts` may be replaced between PDUs. */
export class PduCodec implements FrameCodec<PduHeader> {
  readonly headerSize = BHS_SIZE;
  opts: FramerOptions;

  constructor(
    opts: Partial<FramerOptions> = {},
    private readonly place?: DataPlacement,
  ) {
    this.opts = { ...DEFAULT_FRAMER_OPTIONS, ...opts };
  }

  headerLength(bhs: Buffer): number {
    const dataLen = bhsDataLength(bhs);
    if (dataLen > this.opts.maxDataSegmentLength) {
      throw new FrameError('EOVERSIZE', `DataSegmentLength ${dataLen} > ${this.opts.maxDataSegmentLength}`);
    }
    return BHS_SIZE + bhsAhsLength(bhs) + (this.opts.headerDigest ? DIGEST_SIZE : 0);
  }

  decode(head: Buffer): FrameLayout<PduHeader> {
    const bhs = head.subarray(0, BHS_SIZE);
    const end = BHS_SIZE + bhsAhsLength(bhs);
    if (this.opts.headerDigest && head.readUInt32LE(end) !== crc32c(head, 0, 0, end)) {
      throw new FrameError('EHDRDIGEST', 'header digest mismatch');
    }
    const dataLen = bhsDataLength(bhs);
    const header: PduHeader = { bhs, ahs: head.subarray(BHS_SIZE, end), dataDigest: this.opts.dataDigest };
    if (dataLen === 0) return { header, payload: 0 };
    const trailer = pad4(dataLen) + (this.opts.dataDigest ? DIGEST_SIZE : 0);
    const into = this.place?.(bhs, dataLen);
    return into !== undefined && into.length === dataLen ? { header, payload: dataLen, trailer, into } : { header, payload: dataLen, trailer };
  }

  verify(frame: Frame<PduHeader>, trailer: Buffer): void {
    if (!frame.header.dataDigest || frame.payload === undefined) return;
    const pad = trailer.length - DIGEST_SIZE;
    let want = crc32c(frame.payload);
    if (pad > 0) want = crc32c(trailer, want, 0, pad);
    if (trailer.readUInt32LE(pad) !== want) {
      throw new FrameError('EDATADIGEST', 'data digest mismatch', Buffer.from(frame.header.bhs));
    }
  }
}

const EMPTY = Buffer.alloc(0);

/** A framed PDU as the connections use it (data is empty when the PDU has none). */
export function rawPdu(f: Frame<PduHeader>): RawPdu {
  return { bhs: f.header.bhs, ahs: f.header.ahs, data: f.payload ?? EMPTY };
}

/** Pull framer over owned chunks: push() what arrives, next() one PDU at a time (views where contiguous). */
export class PduFramer {
  private readonly codec: PduCodec;
  private readonly engine: FrameEngine<PduHeader>;

  constructor(opts: Partial<FramerOptions> = {}) {
    this.codec = new PduCodec(opts);
    this.engine = new FrameEngine(this.codec, { payload: 'view' });
  }

  get opts(): FramerOptions {
    return this.codec.opts;
  }

  set opts(o: FramerOptions) {
    this.codec.opts = o;
  }

  /** Bytes buffered and not yet returned as PDUs. */
  get buffered(): number {
    return this.engine.buffered;
  }

  push(chunk: Buffer): void {
    this.engine.push(chunk);
  }

  /** The next complete PDU, or undefined if more bytes are needed. Throws FrameError on a bad frame. */
  next(): RawPdu | undefined {
    const f = this.engine.next();
    return f === undefined ? undefined : rawPdu(f);
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
