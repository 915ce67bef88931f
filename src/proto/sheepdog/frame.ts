// Incremental frame decoders for Sheepdog streams: 48-byte header + payload (§1.1, §1.7).
// Chunks are queued as they arrive; a message whose payload lies inside one chunk is returned as a view
// (no copy); only payloads spanning chunk borders are copied. Oversize payload lengths are rejected before
// anything is allocated, with an SdProtocolError (the connection must then be closed: the stream is lost).
import { SD_REQ_SIZE, SD_RSP_SIZE } from './constants.js';
import {
  decodeRequestHeader,
  decodeResponseHeader,
  requestHasPayload,
  type SdRequest,
  type SdResponse,
} from './header.js';

/** A stream-level protocol violation; the only safe reaction is to close the connection. */
export class SdProtocolError extends Error {
  readonly code: 'EOVERSIZE' | 'EMALFORMED';
  constructor(code: 'EOVERSIZE' | 'EMALFORMED', message: string) {
    super(message);
    this.name = 'SdProtocolError';
    this.code = code;
  }
}

/** A FIFO of received chunks with byte-level take/peek. */
class ChunkQueue {
  private chunks: Buffer[] = [];
  private head = 0; // offset into chunks[0]
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  /** Remove and return n bytes (n <= length): a view when they lie in one chunk, else a copy. */
  take(n: number): Buffer {
    const first = this.chunks[0];
    if (first === undefined) return Buffer.alloc(0);
    if (first.length - this.head >= n) {
      const out = first.subarray(this.head, this.head + n);
      this.advance(n);
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let done = 0;
    while (done < n) {
      const c = this.chunks[0];
      if (c === undefined) break;
      const k = Math.min(n - done, c.length - this.head);
      c.copy(out, done, this.head, this.head + k);
      done += k;
      this.advance(k);
    }
    return out;
  }

  /** Drop n bytes (n <= length). */
  skip(n: number): void {
    while (n > 0) {
      const c = this.chunks[0];
      if (c === undefined) return;
      const k = Math.min(n, c.length - this.head);
      this.advance(k);
      n -= k;
    }
  }

  private advance(n: number): void {
    this.head += n;
    this.length -= n;
    const c = this.chunks[0];
    if (c !== undefined && this.head >= c.length) {
      this.chunks.shift();
      this.head = 0;
    }
  }
}

export interface SdMessage<H> {
  header: H;
  /** Payload bytes, or null when the message carries none. May be a view into a received chunk. */
  payload: Buffer | null;
}

export interface SdDecoderOptions {
  /** Largest payload accepted on the wire; a larger data_length is a protocol error. */
  maxPayload: number;
}

/** Pull-based decoder for the request side of a connection (server). */
export class SdRequestDecoder {
  private readonly q = new ChunkQueue();
  private pending: SdRequest | null = null;
  constructor(private readonly opts: SdDecoderOptions) {}

  /** Bytes received but not yet returned as messages. */
  get buffered(): number {
    return this.q.length;
  }

  push(chunk: Buffer): void {
    this.q.push(chunk);
  }

  /** The next complete request, or null if more bytes are needed. Throws SdProtocolError on oversize. */
  next(): SdMessage<SdRequest> | null {
    if (this.pending === null) {
      if (this.q.length < SD_REQ_SIZE) return null;
      const hdr = decodeRequestHeader(this.q.take(SD_REQ_SIZE));
      if (requestHasPayload(hdr) && hdr.dataLength > this.opts.maxPayload) {
        throw new SdProtocolError(
          'EOVERSIZE',
          `request payload of ${hdr.dataLength} bytes exceeds limit ${this.opts.maxPayload}`,
        );
      }
      this.pending = hdr;
    }
    const hdr = this.pending;
    if (!requestHasPayload(hdr)) {
      this.pending = null;
      return { header: hdr, payload: null };
    }
    if (this.q.length < hdr.dataLength) return null;
    this.pending = null;
    return { header: hdr, payload: this.q.take(hdr.dataLength) };
  }
}

/** Pull-based decoder for the response side of a connection (client): payload = data_length bytes. */
export class SdResponseDecoder {
  private readonly q = new ChunkQueue();
  private pending: SdResponse | null = null;
  constructor(private readonly opts: SdDecoderOptions) {}

  get buffered(): number {
    return this.q.length;
  }

  push(chunk: Buffer): void {
    this.q.push(chunk);
  }

  /** The next complete response, or null if more bytes are needed. Throws SdProtocolError on oversize. */
  next(): SdMessage<SdResponse> | null {
    if (this.pending === null) {
      if (this.q.length < SD_RSP_SIZE) return null;
      const hdr = decodeResponseHeader(this.q.take(SD_RSP_SIZE));
      if (hdr.dataLength > this.opts.maxPayload) {
        throw new SdProtocolError(
          'EOVERSIZE',
          `response payload of ${hdr.dataLength} bytes exceeds limit ${this.opts.maxPayload}`,
        );
      }
      this.pending = hdr;
    }
    const hdr = this.pending;
    if (hdr.dataLength === 0) {
      this.pending = null;
      return { header: hdr, payload: null };
    }
    if (this.q.length < hdr.dataLength) return null;
    this.pending = null;
    return { header: hdr, payload: this.q.take(hdr.dataLength) };
  }
}

export { ChunkQueue };
