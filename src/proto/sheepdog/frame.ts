// Sheepdog stream framing (§1.1, §1.7): a 48-byte header + data_length payload bytes, described as FrameCodecs
// for the one FrameEngine, and the pull decoders the sheep server and peers use. A payload inside one received
// chunk is handed out as a view; one spanning chunks is copied once. An oversize data_length is rejected from
// the header alone, before anything is allocated, with an SdProtocolError (the connection must then be closed).
import { FrameEngine, type FrameCodec } from '../frame.js';
import { SD_REQ_SIZE, SD_RSP_SIZE } from './constants.js';
import {
  decodeRequestHeader,
  decodeResponseHeader,
  requestHasPayload,
  type SdRequest,
  type SdResponse,
} from './header.js';
import { SheepfoldError } from '../../util/errors.js';

/** A stream-level protocol violation; the only safe reaction is to close the connection. */
export class SdProtocolError extends SheepfoldError<'EOVERSIZE' | 'EMALFORMED'> {}

export interface SdMessage<H> {
  header: H;
  /** Payload bytes, or null when the message carries none. May be a view into a received chunk. */
  payload: Buffer | null;
}

export interface SdDecoderOptions {
  /** Largest payload accepted on the wire; a larger data_length is a protocol error. */
  maxPayload: number;
}

function oversize(side: string, n: number, max: number): SdProtocolError {
  return new SdProtocolError('EOVERSIZE', `${side} payload of ${n} bytes exceeds limit ${max}`);
}

/** Requests (the server side): a payload only on requests that carry one. */
export function sdRequestCodec(maxPayload: number): FrameCodec<SdRequest> {
  return {
    headerSize: SD_REQ_SIZE,
    detached: true,
    decode(head) {
      const header = decodeRequestHeader(head);
      const payload = requestHasPayload(header) ? header.dataLength : 0;
      if (payload > maxPayload) throw oversize('request', payload, maxPayload);
      return { header, payload };
    },
  };
}

/**
 * Responses (the client side): payload = data_length bytes. `into` names the caller's buffer for a response's
 * payload (looked up when its header arrives), read in place when it is large enough.
 */
export function sdResponseCodec(maxPayload: number, into?: (rsp: SdResponse) => Buffer | undefined): FrameCodec<SdResponse> {
  return {
    headerSize: SD_RSP_SIZE,
    detached: true,
    decode(head) {
      const header = decodeResponseHeader(head);
      if (header.dataLength > maxPayload) throw oversize('response', header.dataLength, maxPayload);
      const dest = header.dataLength > 0 && into !== undefined ? into(header) : undefined;
      return dest !== undefined ? { header, payload: header.dataLength, into: dest } : { header, payload: header.dataLength };
    },
  };
}

/** Pull decoder over owned chunks (push a chunk, then call next() until it returns null). */
class SdDecoder<H> {
  private readonly engine: FrameEngine<H>;
  constructor(codec: FrameCodec<H>) {
    this.engine = new FrameEngine(codec, { payload: 'view' });
  }

  /** Bytes received but not yet returned as messages. */
  get buffered(): number {
    return this.engine.buffered;
  }

  push(chunk: Buffer): void {
    this.engine.push(chunk);
  }

  /** The next complete message, or null if more bytes are needed. Throws SdProtocolError on oversize. */
  next(): SdMessage<H> | null {
    const f = this.engine.next();
    return f === undefined ? null : { header: f.header, payload: f.payload ?? null };
  }
}

/** Pull-based decoder for the request side of a connection (server). */
export class SdRequestDecoder extends SdDecoder<SdRequest> {
  constructor(opts: SdDecoderOptions) {
    super(sdRequestCodec(opts.maxPayload));
  }
}

/** Pull-based decoder for the response side of a connection (client). */
export class SdResponseDecoder extends SdDecoder<SdResponse> {
  constructor(opts: SdDecoderOptions) {
    super(sdResponseCodec(opts.maxPayload));
  }
}
