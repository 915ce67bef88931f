// FrameEngine: the one incremental framer under every wire protocol here (Sheepdog, NBD, iSCSI). A protocol
// describes its frames with a FrameCodec (fixed leading header bytes, the whole header's length from them, the
// payload and trailer lengths from the whole header, a check of the finished frame); the engine does the byte
// work, so split headers, payload placement, draining and in-place reads are written once.
// Where a payload goes: a view of the received chunk (owned input only, payload inside one chunk), a fresh copy,
// a buffer the protocol names for this frame (`into`, read in place), or a pooled buffer. An oversize payload
// the protocol answers without closing is drained without being buffered.
// Two ways to feed it:
// - owned chunks (`push`, then `next()` pulls ONE frame at a time, so the owner can stop pulling for
//   backpressure, or switch codec/limits between frames, without losing bytes);
// - a socket that reads into buffers we choose (Node's `onread`: `nextBuffer`/`consume`). Every byte of a read
//   is used before consume() returns and frames go to `onFrame` synchronously, so the receive buffer is reused
//   at once; while a large payload is outstanding the kernel reads straight into its destination.
// Invariants: header bytes handed out live as long as the chunk they came from (owned input) or until onFrame
// returns (reused receive buffer); a payload is never a view of a reused receive buffer.

/** What one whole header says about its frame. */
export interface FrameLayout<H> {
  header: H;
  /** Payload bytes after the header. */
  payload: number;
  /** Bytes after the payload (padding, digest), handed to `verify`; at most MAX_TRAILER. */
  trailer?: number;
  /** Skip payload and trailer without buffering them (the frame is handed out at once, `drained`). */
  drain?: boolean;
  /** The caller's buffer for this payload (at least `payload` bytes); the payload is read into it in place. */
  into?: Buffer;
}

export interface FrameCodec<H> {
  /** Leading bytes needed to know the header's whole length. */
  readonly headerSize: number;
  /** The whole header's length from its first headerSize bytes (default: headerSize). May throw. */
  headerLength?(prefix: Buffer): number;
  /** Decode a whole header. May throw (the stream is then lost). */
  decode(head: Buffer): FrameLayout<H>;
  /** Check a finished frame against its trailer (e.g. a digest). May throw. */
  verify?(frame: Frame<H>, trailer: Buffer): void;
  /**
   * True if decode() returns a header that keeps no reference to the head bytes (plain numbers and strings):
   * the engine may then decode a header in place in a reused receive buffer instead of copying it first.
   */
  readonly detached?: boolean;
}

export interface Frame<H> {
  header: H;
  /** The whole header's bytes (see the invariant above for how long they live). */
  head: Buffer;
  /** The payload, or undefined when the frame has none or it is being drained. */
  payload: Buffer | undefined;
  /** True if the payload is being drained (its bytes are skipped, never buffered). */
  drained: boolean;
}

/** A source of reusable payload buffers: get(n) returns exactly n bytes. */
export interface PayloadPool {
  get(n: number): Buffer;
}

/** Where payloads go when the codec names no buffer of its own. */
export type PayloadMode = 'view' | 'copy' | PayloadPool;

export interface FrameEngineOptions<H> {
  /** 'view': a view of an owned chunk when the payload lies in one, else a copy; 'copy': always a fresh buffer. */
  payload?: PayloadMode;
  /** Where frames go in `consume` mode (push mode hands them out from next()). */
  onFrame?: (frame: Frame<H>) => void;
  /** Bytes of the reused receive buffer (consume mode). */
  receiveBufferBytes?: number;
  /** Payload bytes still missing above which the socket reads straight into the payload's buffer. */
  directMinBytes?: number;
}

export const FRAME_RECEIVE_BUFFER_BYTES = 256 * 1024;
export const FRAME_DIRECT_MIN_BYTES = 32 * 1024;
export const MAX_TRAILER = 16;

interface Pending<H> {
  header: H;
  head: Buffer;
  dest: Buffer;
  fill: number;
  trailer: number;
  tailFill: number;
}

export class FrameEngine<H> {
  /** The codec for the next header; may be switched between frames. */
  codec: FrameCodec<H>;
  onFrame: (frame: Frame<H>) => void;
  private readonly mode: PayloadMode;
  private readonly recvBytes: number;
  private readonly directMin: number;
  private carry: Buffer;
  private headFill = 0;
  /** Whole header length once known from the prefix, else -1. */
  private headLen = -1;
  private readonly tail = Buffer.allocUnsafe(MAX_TRAILER);
  private pending: Pending<H> | undefined;
  private drainLeft = 0;
  private recv: Buffer | undefined;
  private direct: Buffer | undefined;
  // Push mode: owned chunks not yet fed, and the frame the last feed produced.
  private chunks: Buffer[] = [];
  private first = 0;
  private offset = 0;
  private queued = 0;
  private ready: Frame<H> | undefined;
  private pulling = false;

  constructor(codec: FrameCodec<H>, opts: FrameEngineOptions<H> = {}) {
    this.codec = codec;
    this.mode = opts.payload ?? 'copy';
    this.onFrame = opts.onFrame ?? ((): void => undefined);
    this.recvBytes = opts.receiveBufferBytes ?? FRAME_RECEIVE_BUFFER_BYTES;
    this.directMin = opts.directMinBytes ?? FRAME_DIRECT_MIN_BYTES;
    this.carry = Buffer.allocUnsafe(Math.max(64, codec.headerSize));
  }

  /** Bytes received and not yet handed out in a frame (queued, or part of a half-received frame). */
  get buffered(): number {
    const p = this.pending;
    return this.queued + this.headFill + (p === undefined ? 0 : p.head.length + p.fill + p.tailFill);
  }

  /** Bytes of a drained payload still to be skipped. */
  get draining(): number {
    return this.drainLeft;
  }

  /** True while nothing is queued or half-received. */
  get idle(): boolean {
    return this.buffered === 0 && this.drainLeft === 0;
  }

  /** Forget everything buffered (after a protocol error, before a TLS upgrade, when the connection closes). */
  reset(): void {
    this.chunks = [];
    this.first = 0;
    this.offset = 0;
    this.queued = 0;
    this.headFill = 0;
    this.headLen = -1;
    this.pending = undefined;
    this.direct = undefined;
    this.drainLeft = 0;
    this.ready = undefined;
  }

  // ---------------------------------------------------------------- push mode (owned chunks)

  /** Queue a received chunk; the engine may keep views of it. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.queued += chunk.length;
  }

  /** The next whole frame, or undefined when more bytes are needed. Throws what the codec throws. */
  next(): Frame<H> | undefined {
    this.pulling = true;
    try {
      while (this.ready === undefined && this.first < this.chunks.length) {
        const c = this.chunks[this.first] as Buffer;
        const at = this.feed(c, this.offset, c.length, true);
        this.queued -= at - this.offset;
        if (at >= c.length) {
          this.first++;
          this.offset = 0;
        } else this.offset = at;
      }
    } finally {
      this.pulling = false;
      if (this.first === this.chunks.length) {
        this.chunks = [];
        this.first = 0;
      } else if (this.first > 64) {
        this.chunks = this.chunks.slice(this.first);
        this.first = 0;
      }
    }
    const f = this.ready;
    this.ready = undefined;
    return f;
  }

  // ---------------------------------------------------------------- consume mode (reused receive buffer)

  /** Where the socket's next read goes: the rest of a large outstanding payload, else the receive buffer. */
  nextBuffer(): Buffer {
    const p = this.pending;
    if (p !== undefined && p.dest.length - p.fill >= this.directMin) {
      this.direct = p.dest.subarray(p.fill);
      return this.direct;
    }
    this.direct = undefined;
    this.recv ??= Buffer.allocUnsafeSlow(this.recvBytes);
    return this.recv;
  }

  /** Use the `n` bytes a read put at the start of `buf` (nextBuffer()'s, or any chunk not kept afterwards). */
  consume(buf: Buffer, n: number): void {
    if (this.direct !== undefined && buf === this.direct) {
      // The kernel wrote them in place: nothing to copy.
      const p = this.pending as Pending<H>;
      this.direct = undefined;
      p.fill += n;
      if (p.fill === p.dest.length && p.trailer === 0) this.complete();
      return;
    }
    this.feed(buf, 0, n, false);
  }

  // ---------------------------------------------------------------- the byte work

  /** Use bytes [at, end) of `buf`; in push mode stop after one frame. Returns the position reached. */
  private feed(buf: Buffer, at: number, end: number, owned: boolean): number {
    while (at < end) {
      if (this.pulling && this.ready !== undefined) return at;
      if (this.drainLeft > 0) {
        const k = Math.min(this.drainLeft, end - at);
        this.drainLeft -= k;
        at += k;
        continue;
      }
      const p = this.pending;
      if (p !== undefined) {
        if (p.fill < p.dest.length) {
          const k = Math.min(p.dest.length - p.fill, end - at);
          buf.copy(p.dest, p.fill, at, at + k);
          p.fill += k;
          at += k;
        } else {
          const k = Math.min(p.trailer - p.tailFill, end - at);
          buf.copy(this.tail, p.tailFill, at, at + k);
          p.tailFill += k;
          at += k;
        }
        if (p.fill === p.dest.length && p.tailFill === p.trailer) this.complete();
        continue;
      }
      const c = this.codec;
      if ((owned || c.detached === true) && this.headFill === 0 && end - at >= c.headerSize) {
        // Fast path: the whole header lies in this chunk: decode it in place (a view; see header() for how long).
        const len = c.headerLength === undefined ? c.headerSize : c.headerLength(buf.subarray(at, at + c.headerSize));
        if (end - at >= len) {
          at = this.header(buf.subarray(at, at + len), buf, at + len, end, owned);
          continue;
        }
        this.headLen = len;
      }
      // Gather the header in the carry.
      const want = this.headLen >= 0 ? this.headLen : c.headerSize;
      if (this.carry.length < want) this.grow(want);
      const k = Math.min(want - this.headFill, end - at);
      buf.copy(this.carry, this.headFill, at, at + k);
      this.headFill += k;
      at += k;
      if (this.headFill < want) break;
      if (this.headLen < 0 && c.headerLength !== undefined) {
        this.headLen = c.headerLength(this.carry.subarray(0, c.headerSize));
        if (this.headLen > this.headFill) continue;
      }
      const head = this.carry.subarray(0, this.headFill);
      this.headFill = 0;
      this.headLen = -1;
      at = this.header(owned ? Buffer.from(head) : head, buf, at, end, owned);
    }
    return at;
  }

  private grow(n: number): void {
    const c = Buffer.allocUnsafe(Math.max(n, this.carry.length * 2));
    this.carry.copy(c, 0, 0, this.headFill);
    this.carry = c;
  }

  /** A whole header: hand the frame out, or set up its payload. Returns the position reached in `buf`. */
  private header(head: Buffer, buf: Buffer, at: number, end: number, owned: boolean): number {
    const l = this.codec.decode(head);
    const len = l.payload;
    const trailer = l.trailer ?? 0;
    if (trailer > MAX_TRAILER) throw new RangeError(`frame trailer of ${trailer} bytes`);
    if (l.drain === true) {
      this.drainLeft = len + trailer;
      this.emit({ header: l.header, head, payload: undefined, drained: true });
      return at;
    }
    if (len === 0 && trailer === 0) {
      this.emit({ header: l.header, head, payload: undefined, drained: false });
      return at;
    }
    if (owned && l.into === undefined && this.mode === 'view' && end - at >= len + trailer) {
      const frame: Frame<H> = { header: l.header, head, payload: len > 0 ? buf.subarray(at, at + len) : undefined, drained: false };
      this.codec.verify?.(frame, buf.subarray(at + len, at + len + trailer));
      this.emit(frame);
      return at + len + trailer;
    }
    if (!owned && head.buffer === buf.buffer) {
      // A detached header decoded in place in a reused buffer: its bytes must outlive this read.
      if (this.carry.length < head.length) this.carry = Buffer.allocUnsafe(head.length);
      head.copy(this.carry, 0);
      head = this.carry.subarray(0, head.length);
    }
    let dest: Buffer;
    if (l.into !== undefined && l.into.length >= len) dest = l.into.subarray(0, len);
    else if (typeof this.mode === 'object') dest = this.mode.get(len);
    else dest = len < this.directMin ? Buffer.allocUnsafe(len) : Buffer.allocUnsafeSlow(len);
    this.pending = { header: l.header, head, dest, fill: 0, trailer, tailFill: 0 };
    return at;
  }

  private complete(): void {
    const p = this.pending as Pending<H>;
    this.pending = undefined;
    const frame: Frame<H> = { header: p.header, head: p.head, payload: p.dest.length > 0 ? p.dest : undefined, drained: false };
    this.codec.verify?.(frame, this.tail.subarray(0, p.trailer));
    this.emit(frame);
  }

  private emit(frame: Frame<H>): void {
    if (this.pulling) this.ready = frame;
    else this.onFrame(frame);
  }
}
