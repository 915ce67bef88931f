// RequestReceiver: the transmission-phase request parser for sockets that read into buffers we own (Node's
// `onread` user buffers). The socket reads either into one reused receive buffer or, while a large WRITE payload
// is outstanding, straight into that payload's pooled buffer, so bulk writes cost no allocation and no copy.
// Every byte of a read is consumed before the read callback returns (headers split across reads are kept in a
// 28-byte carry, payload bytes are copied into the pooled payload buffer), so the receive buffer can be reused
// for the next read at once. Oversize WRITE payloads are drained, as the decoder does: the request is reported
// with `oversize` and its bytes are skipped. Bad magic throws NbdProtocolError (the connection closes).
// Spec: proto.md "Request message", "Transmission phase".
import { NBD_CMD_WRITE, NBD_REQUEST_SIZE } from '../proto/nbd/constants.js';
import { decodeRequest, type Request } from '../proto/nbd/messages.js';
import type { BufferPool } from './pool.js';

/** Bytes of the reused receive buffer of one connection. */
export const NBD_RECEIVE_BUFFER_BYTES = 256 * 1024;
/** Payload bytes still missing above which the socket reads straight into the payload buffer. */
export const NBD_DIRECT_PAYLOAD_MIN_BYTES = 32 * 1024;

/** One request as received; `payload` is a pooled buffer (give it back with BufferPool.release). */
export interface ReceivedRequest {
  request: Request;
  payload: Buffer | undefined;
  oversize: boolean;
}

export class RequestReceiver {
  private recv: Buffer | undefined;
  private readonly head = Buffer.allocUnsafe(NBD_REQUEST_SIZE);
  private headFill = 0;
  private pending: { request: Request; buf: Buffer; fill: number } | undefined;
  private drainLeft = 0;
  /** The buffer handed out by nextBuffer() when it is a direct payload region. */
  private direct: Buffer | undefined;

  constructor(
    private readonly pool: BufferPool,
    private readonly maxPayload: number,
    private readonly emit: (r: ReceivedRequest) => void,
  ) {}

  /** Where the socket's next read goes: the rest of a large pending payload, else the receive buffer. */
  nextBuffer(): Buffer {
    const p = this.pending;
    if (p !== undefined && p.buf.length - p.fill >= NBD_DIRECT_PAYLOAD_MIN_BYTES) {
      this.direct = p.buf.subarray(p.fill);
      return this.direct;
    }
    this.direct = undefined;
    this.recv ??= Buffer.allocUnsafeSlow(NBD_RECEIVE_BUFFER_BYTES);
    return this.recv;
  }

  /** True while nothing is half-received (no partial header, payload or drain). */
  get idle(): boolean {
    return this.headFill === 0 && this.pending === undefined && this.drainLeft === 0;
  }

  /** Forget the pending payload (connection closing); a read may still target it, so it is not pooled again. */
  dispose(): void {
    this.pending = undefined;
    this.direct = undefined;
  }

  /** Consume the `n` bytes a read put at the start of `buf` (the buffer nextBuffer() returned). */
  consume(buf: Buffer, n: number): void {
    if (this.direct !== undefined && buf === this.direct) {
      // The kernel wrote them in place: nothing to copy.
      const p = this.pending as { request: Request; buf: Buffer; fill: number };
      p.fill += n;
      this.direct = undefined;
      if (p.fill === p.buf.length) this.completePayload();
      return;
    }
    let at = 0;
    while (at < n) {
      if (this.drainLeft > 0) {
        const k = Math.min(this.drainLeft, n - at);
        this.drainLeft -= k;
        at += k;
        continue;
      }
      const p = this.pending;
      if (p !== undefined) {
        const k = Math.min(p.buf.length - p.fill, n - at);
        buf.copy(p.buf, p.fill, at, at + k);
        p.fill += k;
        at += k;
        if (p.fill === p.buf.length) this.completePayload();
        continue;
      }
      let header: Buffer;
      if (this.headFill === 0 && n - at >= NBD_REQUEST_SIZE) {
        header = buf.subarray(at, at + NBD_REQUEST_SIZE);
        at += NBD_REQUEST_SIZE;
      } else {
        const k = Math.min(NBD_REQUEST_SIZE - this.headFill, n - at);
        buf.copy(this.head, this.headFill, at, at + k);
        this.headFill += k;
        at += k;
        if (this.headFill < NBD_REQUEST_SIZE) break;
        this.headFill = 0;
        header = this.head;
      }
      this.header(decodeRequest(header));
    }
  }

  private header(r: Request): void {
    if (r.type !== NBD_CMD_WRITE || r.length === 0) {
      this.emit({ request: r, payload: undefined, oversize: false });
      return;
    }
    if (r.length > this.maxPayload) {
      this.drainLeft = r.length;
      this.emit({ request: r, payload: undefined, oversize: true });
      return;
    }
    this.pending = { request: r, buf: this.pool.get(r.length), fill: 0 };
  }

  private completePayload(): void {
    const p = this.pending as { request: Request; buf: Buffer; fill: number };
    this.pending = undefined;
    this.emit({ request: p.request, payload: p.buf, oversize: false });
  }
}
