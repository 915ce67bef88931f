// NBD message encoders and decoders (proto.md "Handshake", "Option types", "Option reply types",
// "Request message", "Simple reply message", "Structured reply chunk message", "Structured reply types").
// Encoders return fresh buffers (or [header, payload] pairs so payloads are never concatenated); decoders take
// complete frames (the frame decoder in decoder.ts cuts them) and throw NbdProtocolError on bad content.
// All integers are big-endian; 64-bit fields are bigint.
import {
  IHAVEOPT,
  NBDMAGIC,
  NBD_BLOCK_DESCRIPTOR_SIZE,
  NBD_CLIENT_FLAGS_SIZE,
  NBD_EXPORT_NAME_PAD_SIZE,
  NBD_EXPORT_NAME_REPLY_SIZE,
  NBD_GREETING_SIZE,
  NBD_INFO_BLOCK_SIZE,
  NBD_INFO_DESCRIPTION,
  NBD_INFO_EXPORT,
  NBD_INFO_NAME,
  NBD_MAX_STRING_LENGTH,
  NBD_OFFSET_DATA_PREFIX_SIZE,
  NBD_OFFSET_HOLE_PAYLOAD_SIZE,
  NBD_OPTION_HEADER_SIZE,
  NBD_OPTION_REPLY_HEADER_SIZE,
  NBD_REPLY_FLAG_DONE,
  NBD_REPLY_TYPE_BLOCK_STATUS,
  NBD_REPLY_TYPE_ERROR,
  NBD_REPLY_TYPE_ERROR_OFFSET,
  NBD_REPLY_TYPE_FLAG_ERROR,
  NBD_REPLY_TYPE_NONE,
  NBD_REPLY_TYPE_OFFSET_DATA,
  NBD_REPLY_TYPE_OFFSET_HOLE,
  NBD_REP_MAGIC,
  NBD_REQUEST_MAGIC,
  NBD_REQUEST_SIZE,
  NBD_SIMPLE_REPLY_MAGIC,
  NBD_SIMPLE_REPLY_SIZE,
  NBD_STRUCTURED_REPLY_HEADER_SIZE,
  NBD_STRUCTURED_REPLY_MAGIC,
} from './constants.js';
import { NbdProtocolError } from './errors.js';

// ---------------------------------------------------------------- strings

/** Decode a spec string (UTF-8, no NUL, at most 4096 bytes); throws MALFORMED otherwise. */
export function decodeString(buf: Buffer, what: string): string {
  if (buf.length > NBD_MAX_STRING_LENGTH) {
    throw new NbdProtocolError('MALFORMED', `${what} longer than ${NBD_MAX_STRING_LENGTH} bytes`);
  }
  if (buf.includes(0)) throw new NbdProtocolError('MALFORMED', `${what} contains NUL`);
  const s = buf.toString('utf8');
  if (Buffer.byteLength(s, 'utf8') !== buf.length) {
    throw new NbdProtocolError('MALFORMED', `${what} is not valid UTF-8`);
  }
  return s;
}

function need(buf: Buffer, n: number, what: string): void {
  if (buf.length < n) throw new NbdProtocolError('MALFORMED', `${what}: need ${n} bytes, have ${buf.length}`);
}

// ---------------------------------------------------------------- handshake

/** S: NBDMAGIC, IHAVEOPT, 16-bit handshake flags. */
export function encodeGreeting(handshakeFlags: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_GREETING_SIZE);
  b.writeBigUInt64BE(NBDMAGIC, 0);
  b.writeBigUInt64BE(IHAVEOPT, 8);
  b.writeUInt16BE(handshakeFlags, 16);
  return b;
}

export function decodeGreeting(b: Buffer): { handshakeFlags: number } {
  need(b, NBD_GREETING_SIZE, 'greeting');
  if (b.readBigUInt64BE(0) !== NBDMAGIC) throw new NbdProtocolError('BAD_MAGIC', 'greeting: not NBDMAGIC');
  if (b.readBigUInt64BE(8) !== IHAVEOPT) {
    throw new NbdProtocolError('BAD_MAGIC', 'greeting: not IHAVEOPT (oldstyle servers are not supported)');
  }
  return { handshakeFlags: b.readUInt16BE(16) };
}

export function encodeClientFlags(flags: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_CLIENT_FLAGS_SIZE);
  b.writeUInt32BE(flags >>> 0, 0);
  return b;
}

export function decodeClientFlags(b: Buffer): number {
  need(b, NBD_CLIENT_FLAGS_SIZE, 'client flags');
  return b.readUInt32BE(0);
}

// ---------------------------------------------------------------- options

/** C: IHAVEOPT, option, length; the data follows as its own buffer. */
export function encodeOptionHeader(option: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_OPTION_HEADER_SIZE);
  b.writeBigUInt64BE(IHAVEOPT, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(length >>> 0, 12);
  return b;
}

export function encodeOption(option: number, data: Buffer = Buffer.alloc(0)): [Buffer, Buffer] {
  return [encodeOptionHeader(option, data.length), data];
}

export interface OptionHeader {
  option: number;
  length: number;
}

export function decodeOptionHeader(b: Buffer): OptionHeader {
  need(b, NBD_OPTION_HEADER_SIZE, 'option header');
  if (b.readBigUInt64BE(0) !== IHAVEOPT) throw new NbdProtocolError('BAD_MAGIC', 'option: not IHAVEOPT');
  return { option: b.readUInt32BE(8), length: b.readUInt32BE(12) };
}

/** S: reply magic, option, reply type, length; the data follows as its own buffer. */
export function encodeOptionReplyHeader(option: number, type: number, length: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_OPTION_REPLY_HEADER_SIZE);
  b.writeBigUInt64BE(NBD_REP_MAGIC, 0);
  b.writeUInt32BE(option >>> 0, 8);
  b.writeUInt32BE(type >>> 0, 12);
  b.writeUInt32BE(length >>> 0, 16);
  return b;
}

export function encodeOptionReply(option: number, type: number, data: Buffer = Buffer.alloc(0)): [Buffer, Buffer] {
  return [encodeOptionReplyHeader(option, type, data.length), data];
}

export interface OptionReplyHeader {
  option: number;
  type: number;
  length: number;
}

export function decodeOptionReplyHeader(b: Buffer): OptionReplyHeader {
  need(b, NBD_OPTION_REPLY_HEADER_SIZE, 'option reply header');
  if (b.readBigUInt64BE(0) !== NBD_REP_MAGIC) {
    throw new NbdProtocolError('BAD_MAGIC', 'option reply: bad magic');
  }
  return { option: b.readUInt32BE(8), type: b.readUInt32BE(12), length: b.readUInt32BE(16) };
}

/** NBD_OPT_INFO / NBD_OPT_GO data: name, then the list of NBD_INFO_* requests. */
export interface InfoRequest {
  name: string;
  requests: number[];
}

export function encodeInfoRequest(r: InfoRequest): Buffer {
  const name = Buffer.from(r.name, 'utf8');
  const b = Buffer.allocUnsafe(4 + name.length + 2 + 2 * r.requests.length);
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let o = 4 + name.length;
  b.writeUInt16BE(r.requests.length, o);
  o += 2;
  for (const q of r.requests) {
    b.writeUInt16BE(q, o);
    o += 2;
  }
  return b;
}

export function decodeInfoRequest(data: Buffer): InfoRequest {
  need(data, 6, 'info request');
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 6) throw new NbdProtocolError('MALFORMED', 'info request: name length too large');
  const name = decodeString(data.subarray(4, 4 + nameLen), 'export name');
  let o = 4 + nameLen;
  const n = data.readUInt16BE(o);
  o += 2;
  if (data.length !== o + 2 * n) throw new NbdProtocolError('MALFORMED', 'info request: bad request count');
  const requests: number[] = [];
  for (let i = 0; i < n; i++, o += 2) requests.push(data.readUInt16BE(o));
  return { name, requests };
}

/** NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT data: name, then the queries. */
export interface MetaContextRequest {
  name: string;
  queries: string[];
}

export function encodeMetaContextRequest(r: MetaContextRequest): Buffer {
  const name = Buffer.from(r.name, 'utf8');
  const qs = r.queries.map((q) => Buffer.from(q, 'utf8'));
  const b = Buffer.allocUnsafe(8 + name.length + qs.reduce((s, q) => s + 4 + q.length, 0));
  b.writeUInt32BE(name.length, 0);
  name.copy(b, 4);
  let o = 4 + name.length;
  b.writeUInt32BE(qs.length, o);
  o += 4;
  for (const q of qs) {
    b.writeUInt32BE(q.length, o);
    q.copy(b, o + 4);
    o += 4 + q.length;
  }
  return b;
}

export function decodeMetaContextRequest(data: Buffer): MetaContextRequest {
  need(data, 8, 'meta context request');
  const nameLen = data.readUInt32BE(0);
  if (nameLen > data.length - 8) throw new NbdProtocolError('MALFORMED', 'meta context: name length too large');
  const name = decodeString(data.subarray(4, 4 + nameLen), 'export name');
  let o = 4 + nameLen;
  const n = data.readUInt32BE(o);
  o += 4;
  // Each query takes at least 4 bytes: reject impossible counts before looping.
  if (n > (data.length - o) / 4) throw new NbdProtocolError('MALFORMED', 'meta context: too many queries');
  const queries: string[] = [];
  for (let i = 0; i < n; i++) {
    if (o + 4 > data.length) throw new NbdProtocolError('MALFORMED', 'meta context: truncated query');
    const ql = data.readUInt32BE(o);
    o += 4;
    if (ql > data.length - o) throw new NbdProtocolError('MALFORMED', 'meta context: query length too large');
    queries.push(decodeString(data.subarray(o, o + ql), 'query'));
    o += ql;
  }
  if (o !== data.length) throw new NbdProtocolError('MALFORMED', 'meta context: trailing bytes');
  return { name, queries };
}

/** NBD_REP_SERVER data: name length, name, then optional human description. */
export function encodeRepServer(name: string, description = ''): Buffer {
  const n = Buffer.from(name, 'utf8');
  const d = Buffer.from(description, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length + d.length);
  b.writeUInt32BE(n.length, 0);
  n.copy(b, 4);
  d.copy(b, 4 + n.length);
  return b;
}

export function decodeRepServer(data: Buffer): { name: string; description: string } {
  need(data, 4, 'NBD_REP_SERVER');
  const len = data.readUInt32BE(0);
  if (len > data.length - 4) throw new NbdProtocolError('MALFORMED', 'NBD_REP_SERVER: name length too large');
  return {
    name: decodeString(data.subarray(4, 4 + len), 'export name'),
    description: data.subarray(4 + len).toString('utf8'),
  };
}

/** One NBD_REP_INFO payload. */
export type InfoReply =
  | { type: typeof NBD_INFO_EXPORT; size: bigint; transmissionFlags: number }
  | { type: typeof NBD_INFO_NAME; name: string }
  | { type: typeof NBD_INFO_DESCRIPTION; description: string }
  | { type: typeof NBD_INFO_BLOCK_SIZE; minimum: number; preferred: number; maximum: number }
  | { type: 'unknown'; infoType: number; data: Buffer };

export function encodeInfoReply(info: Exclude<InfoReply, { type: 'unknown' }>): Buffer {
  switch (info.type) {
    case NBD_INFO_EXPORT: {
      const b = Buffer.allocUnsafe(12);
      b.writeUInt16BE(NBD_INFO_EXPORT, 0);
      b.writeBigUInt64BE(info.size, 2);
      b.writeUInt16BE(info.transmissionFlags, 10);
      return b;
    }
    case NBD_INFO_NAME:
    case NBD_INFO_DESCRIPTION: {
      const s = Buffer.from(info.type === NBD_INFO_NAME ? info.name : info.description, 'utf8');
      const b = Buffer.allocUnsafe(2 + s.length);
      b.writeUInt16BE(info.type, 0);
      s.copy(b, 2);
      return b;
    }
    case NBD_INFO_BLOCK_SIZE: {
      const b = Buffer.allocUnsafe(14);
      b.writeUInt16BE(NBD_INFO_BLOCK_SIZE, 0);
      b.writeUInt32BE(info.minimum, 2);
      b.writeUInt32BE(info.preferred, 6);
      b.writeUInt32BE(info.maximum, 10);
      return b;
    }
  }
}

export function decodeInfoReply(data: Buffer): InfoReply {
  need(data, 2, 'NBD_REP_INFO');
  const t = data.readUInt16BE(0);
  switch (t) {
    case NBD_INFO_EXPORT:
      if (data.length !== 12) throw new NbdProtocolError('MALFORMED', 'NBD_INFO_EXPORT length must be 12');
      return { type: NBD_INFO_EXPORT, size: data.readBigUInt64BE(2), transmissionFlags: data.readUInt16BE(10) };
    case NBD_INFO_NAME:
      return { type: NBD_INFO_NAME, name: decodeString(data.subarray(2), 'name') };
    case NBD_INFO_DESCRIPTION:
      return { type: NBD_INFO_DESCRIPTION, description: decodeString(data.subarray(2), 'description') };
    case NBD_INFO_BLOCK_SIZE:
      if (data.length !== 14) throw new NbdProtocolError('MALFORMED', 'NBD_INFO_BLOCK_SIZE length must be 14');
      return {
        type: NBD_INFO_BLOCK_SIZE,
        minimum: data.readUInt32BE(2),
        preferred: data.readUInt32BE(6),
        maximum: data.readUInt32BE(10),
      };
    default:
      return { type: 'unknown', infoType: t, data: data.subarray(2) };
  }
}

/** NBD_REP_META_CONTEXT data: 32-bit context id, then the name. */
export function encodeRepMetaContext(id: number, name: string): Buffer {
  const n = Buffer.from(name, 'utf8');
  const b = Buffer.allocUnsafe(4 + n.length);
  b.writeUInt32BE(id >>> 0, 0);
  n.copy(b, 4);
  return b;
}

export function decodeRepMetaContext(data: Buffer): { id: number; name: string } {
  need(data, 4, 'NBD_REP_META_CONTEXT');
  return { id: data.readUInt32BE(0), name: decodeString(data.subarray(4), 'context name') };
}

/** Reply to NBD_OPT_EXPORT_NAME: size, transmission flags, and 124 zeroes unless NO_ZEROES was agreed. */
export function encodeExportNameReply(size: bigint, transmissionFlags: number, noZeroes: boolean): Buffer {
  const b = Buffer.alloc(NBD_EXPORT_NAME_REPLY_SIZE + (noZeroes ? 0 : NBD_EXPORT_NAME_PAD_SIZE));
  b.writeBigUInt64BE(size, 0);
  b.writeUInt16BE(transmissionFlags, 8);
  return b;
}

export function decodeExportNameReply(b: Buffer): { size: bigint; transmissionFlags: number } {
  need(b, NBD_EXPORT_NAME_REPLY_SIZE, 'export name reply');
  return { size: b.readBigUInt64BE(0), transmissionFlags: b.readUInt16BE(8) };
}

// ---------------------------------------------------------------- transmission

/** A transmission request header (the write payload, if any, travels separately). */
export interface Request {
  flags: number;
  type: number;
  cookie: bigint;
  offset: bigint;
  length: number;
}

export function encodeRequest(r: Request): Buffer {
  const b = Buffer.allocUnsafe(NBD_REQUEST_SIZE);
  b.writeUInt32BE(NBD_REQUEST_MAGIC, 0);
  b.writeUInt16BE(r.flags, 4);
  b.writeUInt16BE(r.type, 6);
  b.writeBigUInt64BE(r.cookie, 8);
  b.writeBigUInt64BE(r.offset, 16);
  b.writeUInt32BE(r.length >>> 0, 24);
  return b;
}

export function decodeRequest(b: Buffer): Request {
  need(b, NBD_REQUEST_SIZE, 'request');
  const magic = b.readUInt32BE(0);
  if (magic !== NBD_REQUEST_MAGIC) {
    throw new NbdProtocolError('BAD_MAGIC', `request: bad magic 0x${magic.toString(16)}`);
  }
  return {
    flags: b.readUInt16BE(4),
    type: b.readUInt16BE(6),
    cookie: b.readBigUInt64BE(8),
    offset: b.readBigUInt64BE(16),
    length: b.readUInt32BE(24),
  };
}

/** S: simple reply header; read data (if error is 0) follows as its own buffer. */
export function encodeSimpleReply(error: number, cookie: bigint): Buffer {
  const b = Buffer.allocUnsafe(NBD_SIMPLE_REPLY_SIZE);
  b.writeUInt32BE(NBD_SIMPLE_REPLY_MAGIC, 0);
  b.writeUInt32BE(error >>> 0, 4);
  b.writeBigUInt64BE(cookie, 8);
  return b;
}

export function decodeSimpleReply(b: Buffer): { error: number; cookie: bigint } {
  need(b, NBD_SIMPLE_REPLY_SIZE, 'simple reply');
  if (b.readUInt32BE(0) !== NBD_SIMPLE_REPLY_MAGIC) throw new NbdProtocolError('BAD_MAGIC', 'simple reply: bad magic');
  return { error: b.readUInt32BE(4), cookie: b.readBigUInt64BE(8) };
}

export interface StructuredReplyHeader {
  flags: number;
  type: number;
  cookie: bigint;
  length: number;
}

function writeStructuredHeader(b: Buffer, flags: number, type: number, cookie: bigint, length: number): void {
  b.writeUInt32BE(NBD_STRUCTURED_REPLY_MAGIC, 0);
  b.writeUInt16BE(flags, 4);
  b.writeUInt16BE(type, 6);
  b.writeBigUInt64BE(cookie, 8);
  b.writeUInt32BE(length >>> 0, 16);
}

export function encodeStructuredReplyHeader(h: StructuredReplyHeader): Buffer {
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE);
  writeStructuredHeader(b, h.flags, h.type, h.cookie, h.length);
  return b;
}

export function decodeStructuredReplyHeader(b: Buffer): StructuredReplyHeader {
  need(b, NBD_STRUCTURED_REPLY_HEADER_SIZE, 'structured reply header');
  if (b.readUInt32BE(0) !== NBD_STRUCTURED_REPLY_MAGIC) {
    throw new NbdProtocolError('BAD_MAGIC', 'structured reply: bad magic');
  }
  return { flags: b.readUInt16BE(4), type: b.readUInt16BE(6), cookie: b.readBigUInt64BE(8), length: b.readUInt32BE(16) };
}

/** NBD_REPLY_TYPE_NONE with NBD_REPLY_FLAG_DONE (the only legal use). */
export function encodeReplyNone(cookie: bigint): Buffer {
  return encodeStructuredReplyHeader({ flags: NBD_REPLY_FLAG_DONE, type: NBD_REPLY_TYPE_NONE, cookie, length: 0 });
}

/** Header + 64-bit offset of an OFFSET_DATA chunk; `dataLength` bytes of data follow as their own buffer. */
export function encodeOffsetDataHeader(flags: number, cookie: bigint, offset: bigint, dataLength: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + NBD_OFFSET_DATA_PREFIX_SIZE);
  writeStructuredHeader(b, flags, NBD_REPLY_TYPE_OFFSET_DATA, cookie, NBD_OFFSET_DATA_PREFIX_SIZE + dataLength);
  b.writeBigUInt64BE(offset, NBD_STRUCTURED_REPLY_HEADER_SIZE);
  return b;
}

/** A whole OFFSET_HOLE chunk. */
export function encodeOffsetHole(flags: number, cookie: bigint, offset: bigint, holeSize: number): Buffer {
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + NBD_OFFSET_HOLE_PAYLOAD_SIZE);
  writeStructuredHeader(b, flags, NBD_REPLY_TYPE_OFFSET_HOLE, cookie, NBD_OFFSET_HOLE_PAYLOAD_SIZE);
  b.writeBigUInt64BE(offset, 20);
  b.writeUInt32BE(holeSize >>> 0, 28);
  return b;
}

export interface BlockDescriptor {
  length: number;
  flags: number;
}

/** A whole BLOCK_STATUS chunk for one metadata context. */
export function encodeBlockStatus(flags: number, cookie: bigint, contextId: number, descs: BlockDescriptor[]): Buffer {
  const len = 4 + NBD_BLOCK_DESCRIPTOR_SIZE * descs.length;
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + len);
  writeStructuredHeader(b, flags, NBD_REPLY_TYPE_BLOCK_STATUS, cookie, len);
  b.writeUInt32BE(contextId >>> 0, 20);
  let o = 24;
  for (const d of descs) {
    b.writeUInt32BE(d.length >>> 0, o);
    b.writeUInt32BE(d.flags >>> 0, o + 4);
    o += 8;
  }
  return b;
}

function errorMessageBytes(message: string): Buffer {
  const m = Buffer.from(message, 'utf8');
  // Spec: message length MUST NOT exceed 4096; cut on a byte boundary that stays valid UTF-8.
  if (m.length <= NBD_MAX_STRING_LENGTH) return m;
  let end = NBD_MAX_STRING_LENGTH;
  while (end > 0 && ((m[end] ?? 0) & 0xc0) === 0x80) end--;
  return m.subarray(0, end);
}

/** A whole ERROR chunk (flags normally NBD_REPLY_FLAG_DONE). */
export function encodeReplyError(flags: number, cookie: bigint, error: number, message = ''): Buffer {
  const m = errorMessageBytes(message);
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + 6 + m.length);
  writeStructuredHeader(b, flags, NBD_REPLY_TYPE_ERROR, cookie, 6 + m.length);
  b.writeUInt32BE(error >>> 0, 20);
  b.writeUInt16BE(m.length, 24);
  m.copy(b, 26);
  return b;
}

/** A whole ERROR_OFFSET chunk. */
export function encodeReplyErrorOffset(
  flags: number,
  cookie: bigint,
  error: number,
  message: string,
  offset: bigint,
): Buffer {
  const m = errorMessageBytes(message);
  const b = Buffer.allocUnsafe(NBD_STRUCTURED_REPLY_HEADER_SIZE + 14 + m.length);
  writeStructuredHeader(b, flags, NBD_REPLY_TYPE_ERROR_OFFSET, cookie, 14 + m.length);
  b.writeUInt32BE(error >>> 0, 20);
  b.writeUInt16BE(m.length, 24);
  m.copy(b, 26);
  b.writeBigUInt64BE(offset, 26 + m.length);
  return b;
}

/** The payload of one structured chunk, decoded by type. */
export type StructuredChunk =
  | { type: typeof NBD_REPLY_TYPE_NONE }
  | { type: typeof NBD_REPLY_TYPE_OFFSET_DATA; offset: bigint; data: Buffer }
  | { type: typeof NBD_REPLY_TYPE_OFFSET_HOLE; offset: bigint; holeSize: number }
  | { type: typeof NBD_REPLY_TYPE_BLOCK_STATUS; contextId: number; descriptors: BlockDescriptor[] }
  | { type: typeof NBD_REPLY_TYPE_ERROR; error: number; message: string }
  | { type: typeof NBD_REPLY_TYPE_ERROR_OFFSET; error: number; message: string; offset: bigint }
  | { type: 'unknownError'; chunkType: number; error: number; message: string }
  | { type: 'unknown'; chunkType: number; payload: Buffer };

/** Decode a structured chunk payload given its header's type; a view into `p` is kept for OFFSET_DATA. */
export function decodeStructuredChunk(chunkType: number, p: Buffer): StructuredChunk {
  switch (chunkType) {
    case NBD_REPLY_TYPE_NONE:
      if (p.length !== 0) throw new NbdProtocolError('MALFORMED', 'NONE chunk with payload');
      return { type: NBD_REPLY_TYPE_NONE };
    case NBD_REPLY_TYPE_OFFSET_DATA:
      if (p.length < 9) throw new NbdProtocolError('MALFORMED', 'OFFSET_DATA shorter than 9');
      return { type: NBD_REPLY_TYPE_OFFSET_DATA, offset: p.readBigUInt64BE(0), data: p.subarray(8) };
    case NBD_REPLY_TYPE_OFFSET_HOLE:
      if (p.length !== 12) throw new NbdProtocolError('MALFORMED', 'OFFSET_HOLE length must be 12');
      return { type: NBD_REPLY_TYPE_OFFSET_HOLE, offset: p.readBigUInt64BE(0), holeSize: p.readUInt32BE(8) };
    case NBD_REPLY_TYPE_BLOCK_STATUS: {
      if (p.length < 12 || (p.length - 4) % 8 !== 0) {
        throw new NbdProtocolError('MALFORMED', 'BLOCK_STATUS length must be 4 + 8n, n >= 1');
      }
      const descriptors: BlockDescriptor[] = [];
      for (let o = 4; o < p.length; o += 8) descriptors.push({ length: p.readUInt32BE(o), flags: p.readUInt32BE(o + 4) });
      return { type: NBD_REPLY_TYPE_BLOCK_STATUS, contextId: p.readUInt32BE(0), descriptors };
    }
    default:
      break;
  }
  if ((chunkType & NBD_REPLY_TYPE_FLAG_ERROR) !== 0) {
    if (p.length < 6) throw new NbdProtocolError('MALFORMED', 'error chunk shorter than 6');
    const error = p.readUInt32BE(0);
    const ml = p.readUInt16BE(4);
    if (ml > p.length - 6) throw new NbdProtocolError('MALFORMED', 'error chunk message length too large');
    const message = p.subarray(6, 6 + ml).toString('utf8');
    if (chunkType === NBD_REPLY_TYPE_ERROR) return { type: NBD_REPLY_TYPE_ERROR, error, message };
    if (chunkType === NBD_REPLY_TYPE_ERROR_OFFSET) {
      if (p.length !== 14 + ml) throw new NbdProtocolError('MALFORMED', 'ERROR_OFFSET length must be 14 + message');
      return { type: NBD_REPLY_TYPE_ERROR_OFFSET, error, message, offset: p.readBigUInt64BE(6 + ml) };
    }
    return { type: 'unknownError', chunkType, error, message };
  }
  return { type: 'unknown', chunkType, payload: p };
}
