// ReplyReceiver: the response side of a sheep connection for sockets that read into buffers we choose (Node's
// `onread`). The socket reads into one reused receive buffer, or, while a large reply payload is outstanding,
// straight into that payload's own buffer: a 4 MiB object read then costs one allocation and no copy, instead
// of a fresh 64 KiB buffer per socket read plus a gathering copy. Every byte of a read is consumed before the
// read callback returns (a header split across reads is kept in a 48-byte carry; small payloads are copied out),
// so the receive buffer is reused at once. Payload buffers are fresh and belong to the caller, unless the
// request named its own destination (`destination`, e.g. a front end's pooled buffer): then the payload is read
// into that buffer and the reply's data is a view of it.
// An oversize data_length throws SdProtocolError before anything is allocated (the connection must close).
// Spec: sheepdog-protocol.md §1.1 (48-byte header + data_length bytes).
import { SD_RSP_SIZE, SdProtocolError, decodeResponseHeader, type SdResponse } from '../proto/sheepdog/index.js';

/** Bytes of the reused receive buffer of one sheep connection. */
export const SHEEP_RECEIVE_BUFFER_BYTES = 256 * 1024;
/** Payload bytes still missing above which the socket reads straight into the payload buffer. */
export const SHEEP_DIRECT_PAYLOAD_MIN_BYTES = 32 * 1024;

export type ReplyHandler = (rsp: SdResponse, data: Buffer | null) => void;
/** The caller's buffer for a reply's payload (looked up when its header arrives), or undefined for a fresh one. */
export type DestinationLookup = (rsp: SdResponse) => Buffer | undefined;

export class ReplyReceiver {
  private recv: Buffer | undefined;
  private readonly head = Buffer.allocUnsafe(SD_RSP_SIZE);
  private headFill = 0;
  private pending: { rsp: SdResponse; buf: Buffer; fill: number } | undefined;
  /** The payload region handed out by nextBuffer(), if the next read goes there. */
  private direct: Buffer | undefined;
  /** Where complete replies go (set by the connection once it exists). */
  onReply: ReplyHandler = () => undefined;
  /** Where a reply's payload goes when its request brought a buffer (set by the connection). */
  destination: DestinationLookup = () => undefined;

  constructor(private readonly maxPayload: number) {}

  /** Where the socket's next read goes: the rest of a large pending payload, else the receive buffer. */
  nextBuffer(): Buffer {
    const p = this.pending;
    if (p !== undefined && p.buf.length - p.fill >= SHEEP_DIRECT_PAYLOAD_MIN_BYTES) {
      this.direct = p.buf.subarray(p.fill);
      return this.direct;
    }
    this.direct = undefined;
    this.recv ??= Buffer.allocUnsafeSlow(SHEEP_RECEIVE_BUFFER_BYTES);
    return this.recv;
  }

  /** Consume the `n` bytes a read put at the start of `buf` (the buffer nextBuffer() returned). */
  consume(buf: Buffer, n: number): void {
    if (this.direct !== undefined && buf === this.direct) {
      const p = this.pending as { rsp: SdResponse; buf: Buffer; fill: number };
      p.fill += n;
      this.direct = undefined;
      if (p.fill === p.buf.length) this.complete();
      return;
    }
    let at = 0;
    while (at < n) {
      const p = this.pending;
      if (p !== undefined) {
        const k = Math.min(p.buf.length - p.fill, n - at);
        buf.copy(p.buf, p.fill, at, at + k);
        p.fill += k;
        at += k;
        if (p.fill === p.buf.length) this.complete();
        continue;
      }
      let header: Buffer;
      if (this.headFill === 0 && n - at >= SD_RSP_SIZE) {
        header = buf.subarray(at, at + SD_RSP_SIZE);
        at += SD_RSP_SIZE;
      } else {
        const k = Math.min(SD_RSP_SIZE - this.headFill, n - at);
        buf.copy(this.head, this.headFill, at, at + k);
        this.headFill += k;
        at += k;
        if (this.headFill < SD_RSP_SIZE) break;
        this.headFill = 0;
        header = this.head;
      }
      const rsp = decodeResponseHeader(header);
      if (rsp.dataLength > this.maxPayload) {
        throw new SdProtocolError('EOVERSIZE', `response payload of ${rsp.dataLength} bytes exceeds limit ${this.maxPayload}`);
      }
      if (rsp.dataLength === 0) this.onReply(rsp, null);
      else {
        // The request's own buffer if it fits; else small payloads come from Node's shared slab and large ones
        // get their own memory, read in place.
        const dest = this.destination(rsp);
        const buf2 =
          dest !== undefined && dest.length >= rsp.dataLength
            ? dest.subarray(0, rsp.dataLength)
            : rsp.dataLength < SHEEP_DIRECT_PAYLOAD_MIN_BYTES
              ? Buffer.allocUnsafe(rsp.dataLength)
              : Buffer.allocUnsafeSlow(rsp.dataLength);
        this.pending = { rsp, buf: buf2, fill: 0 };
      }
    }
  }

  private complete(): void {
    const p = this.pending as { rsp: SdResponse; buf: Buffer; fill: number };
    this.pending = undefined;
    this.onReply(p.rsp, p.buf);
  }
}
