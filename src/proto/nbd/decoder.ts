// NBD stream framing, one codec per phase and direction for the one FrameEngine, and the pull decoders built on
// them. Feed received chunks with push(), pull whole frames with next() (undefined = need more bytes).
// Pull-style so the owner can stop pulling (backpressure) or switch phase between frames without losing
// buffered bytes. Every length field is checked against a limit BEFORE anything is allocated; an oversize
// option or WRITE payload is reported at once and then drained without being buffered.
// Spec: proto.md "Newstyle negotiation", "Fixed newstyle negotiation", "Request message", replies.
import { FrameEngine, type FrameCodec, type Frame } from '../frame.js';
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

const EMPTY = Buffer.alloc(0);

// ---------------------------------------------------------------- client -> server

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
      /** The WRITE payload (a view of a received chunk, or one copy); undefined for other commands. */
      payload: Buffer | undefined;
      /** True if the WRITE payload exceeded maxPayload and is being drained (payload is undefined). */
      oversize: boolean;
    };

/** Transmission requests: a payload only on WRITE; an oversize one is drained (the request earns EINVAL). */
export function nbdRequestCodec(maxPayload: number): FrameCodec<Request> {
  return {
    headerSize: NBD_REQUEST_SIZE,
    detached: true,
    decode(head) {
      // decodeRequest throws BAD_MAGIC; the owner closes the connection.
      const header = decodeRequest(head);
      if (header.type !== NBD_CMD_WRITE) return { header, payload: 0 };
      return { header, payload: header.length, drain: header.length > maxPayload };
    },
  };
}

type ServerPhase = 'clientFlags' | 'options' | 'transmission';
type ClientHeader = { kind: 'clientFlags'; flags: number } | { kind: 'option'; option: number } | { kind: 'request'; request: Request };

function serverCodecs(limits: ServerDecoderLimits): Record<ServerPhase, FrameCodec<ClientHeader>> {
  const req = nbdRequestCodec(limits.maxPayload);
  return {
    clientFlags: {
      headerSize: NBD_CLIENT_FLAGS_SIZE,
      decode: (head) => ({ header: { kind: 'clientFlags', flags: decodeClientFlags(head) }, payload: 0 }),
    },
    options: {
      headerSize: NBD_OPTION_HEADER_SIZE,
      decode(head) {
        const h = decodeOptionHeader(head);
        return { header: { kind: 'option', option: h.option }, payload: h.length, drain: h.length > limits.maxOptionLength };
      },
    },
    transmission: {
      headerSize: NBD_REQUEST_SIZE,
      decode(head) {
        const l = req.decode(head);
        return { ...l, header: { kind: 'request', request: l.header } };
      },
    },
  };
}

/** Decodes what a client sends: client flags, then options, then transmission requests. */
export class NbdServerDecoder {
  private readonly codecs: Record<ServerPhase, FrameCodec<ClientHeader>>;
  private readonly engine: FrameEngine<ClientHeader>;

  constructor(limits: ServerDecoderLimits) {
    this.codecs = serverCodecs(limits);
    this.engine = new FrameEngine(this.codecs.clientFlags, { payload: 'view' });
  }

  push(chunk: Buffer): void {
    this.engine.push(chunk);
  }

  /** Bytes received and not yet handed out in a frame. */
  get buffered(): number {
    return this.engine.buffered;
  }

  /** Bytes of an oversize payload still to be discarded. */
  get draining(): number {
    return this.engine.draining;
  }

  /** Switch to transmission requests (after EXPORT_NAME or a successful GO). */
  startTransmission(): void {
    this.engine.codec = this.codecs.transmission;
  }

  /** Throw away buffered bytes (e.g. before a TLS upgrade, when nothing may be pending). */
  reset(phase: ServerPhase): void {
    this.engine.reset();
    this.engine.codec = this.codecs[phase];
  }

  /** The next complete frame, or undefined. Throws NbdProtocolError on bad magic. */
  next(): ClientFrame | undefined {
    const f = this.engine.next();
    if (f === undefined) return undefined;
    const h = f.header;
    switch (h.kind) {
      case 'clientFlags':
        this.engine.codec = this.codecs.options;
        return h;
      case 'option':
        return { kind: 'option', option: h.option, data: f.payload ?? EMPTY, oversize: f.drained };
      case 'request':
        return { kind: 'request', request: h.request, payload: f.payload, oversize: f.drained };
    }
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
/** A server frame before its payload is attached. */
type ServerHeader = { [K in ServerFrame['kind']]: Omit<Extract<ServerFrame, { kind: K }>, 'data' | 'payload'> }[ServerFrame['kind']];

/**
 * Decodes what a server sends. Simple replies carry no length, so the owner supplies `readLength(cookie)`:
 * the payload length a successful simple reply to that cookie carries (0 for non-reads).
 */
export class NbdClientDecoder {
  private readonly engine: FrameEngine<ServerHeader>;
  private readonly greeting: FrameCodec<ServerHeader>;
  private readonly options: FrameCodec<ServerHeader>;
  private readonly replies: FrameCodec<ServerHeader>;

  constructor(
    private readonly limits: ClientDecoderLimits,
    private readonly readLength: (cookie: bigint) => number = () => 0,
  ) {
    this.greeting = {
      headerSize: NBD_GREETING_SIZE,
      decode: (head) => ({ header: { kind: 'greeting', ...decodeGreeting(head) }, payload: 0 }),
    };
    this.options = {
      headerSize: NBD_OPTION_REPLY_HEADER_SIZE,
      decode: (head) => {
        const h = decodeOptionReplyHeader(head);
        if (h.length > this.limits.maxOptionReplyLength) {
          throw new NbdProtocolError('OVERSIZE', `option reply length ${h.length} exceeds limit`);
        }
        return { header: { kind: 'optionReply', option: h.option, type: h.type }, payload: h.length };
      },
    };
    this.replies = {
      headerSize: 4,
      headerLength: (prefix) => {
        const magic = prefix.readUInt32BE(0);
        if (magic === NBD_SIMPLE_REPLY_MAGIC) return NBD_SIMPLE_REPLY_SIZE;
        if (magic === NBD_STRUCTURED_REPLY_MAGIC) return NBD_STRUCTURED_REPLY_HEADER_SIZE;
        throw new NbdProtocolError('BAD_MAGIC', `reply: bad magic 0x${magic.toString(16)}`);
      },
      decode: (head) => {
        if (head.length === NBD_SIMPLE_REPLY_SIZE) {
          const h = decodeSimpleReply(head);
          const len = h.error === 0 ? this.readLength(h.cookie) : 0;
          if (len > this.limits.maxReplyPayload) throw new NbdProtocolError('OVERSIZE', `read reply length ${len}`);
          return { header: { kind: 'simpleReply', error: h.error, cookie: h.cookie }, payload: len };
        }
        const h = decodeStructuredReplyHeader(head);
        if (h.length > this.limits.maxReplyPayload) {
          throw new NbdProtocolError('OVERSIZE', `structured chunk length ${h.length} exceeds limit`);
        }
        return { header: { kind: 'structuredChunk', flags: h.flags, type: h.type, cookie: h.cookie }, payload: h.length };
      },
    };
    this.engine = new FrameEngine(this.greeting, { payload: 'view' });
  }

  push(chunk: Buffer): void {
    this.engine.push(chunk);
  }

  get buffered(): number {
    return this.engine.buffered;
  }

  /** The next frame after NBD_OPT_EXPORT_NAME is its fixed reply (124 zero bytes unless NO_ZEROES). */
  expectExportNameReply(noZeroes: boolean): void {
    const size = NBD_EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : NBD_EXPORT_NAME_PAD_SIZE);
    this.engine.codec = {
      headerSize: size,
      decode: (head) => ({ header: { kind: 'exportNameReply', ...decodeExportNameReply(head) }, payload: 0 }),
    };
  }

  startTransmission(): void {
    this.engine.codec = this.replies;
  }

  reset(phase: ClientPhase): void {
    this.engine.reset();
    if (phase === 'exportName') this.expectExportNameReply(false);
    else this.engine.codec = phase === 'greeting' ? this.greeting : phase === 'options' ? this.options : this.replies;
  }

  next(): ServerFrame | undefined {
    const f: Frame<ServerHeader> | undefined = this.engine.next();
    if (f === undefined) return undefined;
    const h = f.header;
    const data = f.payload ?? EMPTY;
    switch (h.kind) {
      case 'greeting':
        this.engine.codec = this.options;
        return h;
      case 'exportNameReply':
        this.engine.codec = this.replies;
        return h;
      case 'optionReply':
        return { ...h, data };
      case 'simpleReply':
      case 'structuredChunk':
        return { ...h, payload: data };
    }
  }
}
