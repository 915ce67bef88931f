// Incremental NBD frame decoders, one per stream direction. Feed received chunks with push(), pull whole
// frames with next() (undefined = need more bytes). Pull-style so the owner can stop pulling (backpressure)
// without losing buffered bytes. Every length field is checked against a limit BEFORE anything is allocated;
// an oversize option or WRITE payload is reported at once and then drained without being buffered.
// Spec: proto.md "Newstyle negotiation", "Fixed newstyle negotiation", "Request message", replies.
import {
  NBD_CLIENT_FLAGS_SIZE,
  NBD_CMD_WRITE,
  NBD_EXPORT_NAME_PAD_SIZE,
  NBD_EXPORT_NAME_REPLY_SIZE,
  NBD_GREETING_SIZE,
  NBD_OPTION_HEADER_SIZE,
  NBD_OPTION_REPLY_HEADER_SIZE,
  NBD_REQUEST_SIZE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_REPLY_HEADER_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
} from './constants.js';
import { NbdProtocolError } from './errors.js';
import {
  decodeClientFlags,
  decodeExportNameReply,
  decodeGreeting,
  decodeOptionHeader,
  decodeOptionReplyHeader,
  decodeRequest,
  decodeSimpleReply,
  decodeStructuredReplyHeader,
  type Request,
} from './messages.js';
import { ByteQueue } from './queue.js';

// ---------------------------------------------------------------- client -> server

const EMPTY = Buffer.alloc(0);
const NO_PAYLOAD: readonly Buffer[] = Object.freeze([]);

export interface ServerDecoderLimits {
  /** Largest option data accepted (LIST_META_CONTEXT with queries is the biggest legitimate one). */
  maxOptionLength: number;
  /** Largest WRITE payload buffered; larger ones are drained and reported as `oversize`. */
  maxPayload: number;
}

export type ClientFrame =
  | { kind: 'clientFlags'; flags: number }
  | {
      kind: 'option';
      option: number;
      data: Buffer;
      /** True if the data exceeded maxOptionLength and is being drained (data is empty). */
      oversize: boolean;
    }
  | {
      kind: 'request';
      request: Request;
      /** The WRITE payload as views of the received chunks (never copied); empty for other commands. */
      payload: readonly Buffer[];
      /** True if the WRITE payload exceeded maxPayload and is being drained (payload is empty). */
      oversize: boolean;
    };

type ServerPhase = 'clientFlags' | 'options' | 'transmission';

/** Decodes what a client sends: client flags, then options, then transmission requests. */
export class NbdServerDecoder {
  private readonly q = new ByteQueue();
  private phase: ServerPhase = 'clientFlags';
  private drainLeft = 0;
  private pendingReq: Request | undefined;
  private pendingOpt: { option: number; length: number } | undefined;

  constructor(private readonly limits: ServerDecoderLimits) {}

  push(chunk: Buffer): void {
    if (this.drainLeft > 0) {
      const k = Math.min(this.drainLeft, chunk.length);
      this.drainLeft -= k;
      if (k === chunk.length) return;
      chunk = chunk.subarray(k);
    }
    this.q.push(chunk);
  }

  /** Bytes buffered and not yet decoded. */
  get buffered(): number {
    return this.q.length;
  }

  /** Bytes of an oversize payload still to be discarded. */
  get draining(): number {
    return this.drainLeft;
  }

  /** Switch to transmission requests (after EXPORT_NAME or a successful GO). */
  startTransmission(): void {
    this.phase = 'transmission';
  }

  /** Throw away buffered bytes (e.g. before a TLS upgrade, when nothing may be pending). */
  reset(phase: ServerPhase): void {
    this.q.clear();
    this.phase = phase;
    this.pendingOpt = undefined;
    this.pendingReq = undefined;
    this.drainLeft = 0;
  }

  /** The next complete frame, or undefined. Throws NbdProtocolError on bad magic or an oversize option. */
  next(): ClientFrame | undefined {
    switch (this.phase) {
      case 'clientFlags':
        if (this.q.length < NBD_CLIENT_FLAGS_SIZE) return undefined;
        this.phase = 'options';
        return { kind: 'clientFlags', flags: decodeClientFlags(this.q.take(NBD_CLIENT_FLAGS_SIZE)) };
      case 'options':
        return this.nextOption();
      case 'transmission':
        return this.nextRequest();
    }
  }

  private nextOption(): ClientFrame | undefined {
    if (this.pendingOpt === undefined) {
      if (this.q.length < NBD_OPTION_HEADER_SIZE) return undefined;
      const h = decodeOptionHeader(this.q.peek(NBD_OPTION_HEADER_SIZE));
      this.q.skip(NBD_OPTION_HEADER_SIZE);
      if (h.length > this.limits.maxOptionLength) {
        this.drainLeft = h.length - this.q.skip(h.length);
        return { kind: 'option', option: h.option, data: EMPTY, oversize: true };
      }
      this.pendingOpt = h;
    }
    const h = this.pendingOpt;
    if (this.q.length < h.length) return undefined;
    this.pendingOpt = undefined;
    return { kind: 'option', option: h.option, data: this.q.take(h.length), oversize: false };
  }

  private nextRequest(): ClientFrame | undefined {
    if (this.pendingReq === undefined) {
      if (this.q.length < NBD_REQUEST_SIZE) return undefined;
      // decodeRequest throws BAD_MAGIC; the owner closes the connection, so consuming first is fine.
      const r = decodeRequest(this.q.take(NBD_REQUEST_SIZE));
      if (r.type !== NBD_CMD_WRITE || r.length === 0) return { kind: 'request', request: r, payload: NO_PAYLOAD, oversize: false };
      if (r.length > this.limits.maxPayload) {
        const k = this.q.skip(r.length);
        this.drainLeft = r.length - k;
        return { kind: 'request', request: r, payload: NO_PAYLOAD, oversize: true };
      }
      this.pendingReq = r;
    }
    const r = this.pendingReq;
    if (this.q.length < r.length) return undefined;
    this.pendingReq = undefined;
    return { kind: 'request', request: r, payload: this.q.takeViews(r.length), oversize: false };
  }
}


// ---------------------------------------------------------------- server -> client

export interface ClientDecoderLimits {
  /** Largest option reply data accepted. */
  maxOptionReplyLength: number;
  /** Largest structured chunk payload or simple read payload accepted. */
  maxReplyPayload: number;
}

export type ServerFrame =
  | { kind: 'greeting'; handshakeFlags: number }
  | { kind: 'optionReply'; option: number; type: number; data: Buffer }
  | { kind: 'exportNameReply'; size: bigint; transmissionFlags: number }
  | { kind: 'simpleReply'; error: number; cookie: bigint; payload: Buffer }
  | { kind: 'structuredChunk'; flags: number; type: number; cookie: bigint; payload: Buffer };

type ClientPhase = 'greeting' | 'options' | 'exportName' | 'transmission';

/**
 * Decodes what a server sends. Simple replies carry no length, so the owner supplies `readLength(cookie)`:
 * the payload length a successful simple reply to that cookie carries (0 for non-reads).
 */
export class NbdClientDecoder {
  private readonly q = new ByteQueue();
  private phase: ClientPhase = 'greeting';
  private noZeroes = false;

  constructor(
    private readonly limits: ClientDecoderLimits,
    private readonly readLength: (cookie: bigint) => number = () => 0,
  ) {}

  push(chunk: Buffer): void {
    this.q.push(chunk);
  }

  get buffered(): number {
    return this.q.length;
  }

  /** The next frame after NBD_OPT_EXPORT_NAME is its fixed reply (124 zero bytes unless NO_ZEROES). */
  expectExportNameReply(noZeroes: boolean): void {
    this.phase = 'exportName';
    this.noZeroes = noZeroes;
  }

  startTransmission(): void {
    this.phase = 'transmission';
  }

  reset(phase: ClientPhase): void {
    this.q.clear();
    this.phase = phase;
  }

  next(): ServerFrame | undefined {
    switch (this.phase) {
      case 'greeting':
        if (this.q.length < NBD_GREETING_SIZE) return undefined;
        this.phase = 'options';
        return { kind: 'greeting', ...decodeGreeting(this.q.take(NBD_GREETING_SIZE)) };
      case 'options': {
        if (this.q.length < NBD_OPTION_REPLY_HEADER_SIZE) return undefined;
        const h = decodeOptionReplyHeader(this.q.peek(NBD_OPTION_REPLY_HEADER_SIZE));
        if (h.length > this.limits.maxOptionReplyLength) {
          throw new NbdProtocolError('OVERSIZE', `option reply length ${h.length} exceeds limit`);
        }
        if (this.q.length < NBD_OPTION_REPLY_HEADER_SIZE + h.length) return undefined;
        this.q.skip(NBD_OPTION_REPLY_HEADER_SIZE);
        return { kind: 'optionReply', option: h.option, type: h.type, data: this.q.take(h.length) };
      }
      case 'exportName': {
        const n = NBD_EXPORT_NAME_REPLY_SIZE + (this.noZeroes ? 0 : NBD_EXPORT_NAME_PAD_SIZE);
        if (this.q.length < n) return undefined;
        this.phase = 'transmission';
        return { kind: 'exportNameReply', ...decodeExportNameReply(this.q.take(n)) };
      }
      case 'transmission':
        return this.nextReply();
    }
  }

  private nextReply(): ServerFrame | undefined {
    if (this.q.length < 4) return undefined;
    const magic = this.q.peekU32(0);
    if (magic === NBD_SIMPLE_REPLY_MAGIC) {
      if (this.q.length < NBD_SIMPLE_REPLY_SIZE) return undefined;
      const h = decodeSimpleReply(this.q.peek(NBD_SIMPLE_REPLY_SIZE));
      const len = h.error === 0 ? this.readLength(h.cookie) : 0;
      if (len > this.limits.maxReplyPayload) throw new NbdProtocolError('OVERSIZE', `read reply length ${len}`);
      if (this.q.length < NBD_SIMPLE_REPLY_SIZE + len) return undefined;
      this.q.skip(NBD_SIMPLE_REPLY_SIZE);
      return { kind: 'simpleReply', error: h.error, cookie: h.cookie, payload: this.q.take(len) };
    }
    if (magic === NBD_STRUCTURED_REPLY_MAGIC) {
      if (this.q.length < NBD_STRUCTURED_REPLY_HEADER_SIZE) return undefined;
      const h = decodeStructuredReplyHeader(this.q.peek(NBD_STRUCTURED_REPLY_HEADER_SIZE));
      if (h.length > this.limits.maxReplyPayload) {
        throw new NbdProtocolError('OVERSIZE', `structured chunk length ${h.length} exceeds limit`);
      }
      if (this.q.length < NBD_STRUCTURED_REPLY_HEADER_SIZE + h.length) return undefined;
      this.q.skip(NBD_STRUCTURED_REPLY_HEADER_SIZE);
      return { kind: 'structuredChunk', flags: h.flags, type: h.type, cookie: h.cookie, payload: this.q.take(h.length) };
    }
    throw new NbdProtocolError('BAD_MAGIC', `reply: bad magic 0x${magic.toString(16)}`);
  }
}
