// A small NBD client over any Duplex: fixed-newstyle handshake (LIST, GO with structured replies and
// base:allocation), then pipelined requests matched by cookie. Used by tests (in-memory and TCP), the fuzz
// sentinel and tools; it is strict: any malformed server frame rejects every pending request.
import type { Duplex } from 'node:stream';
import * as C from '../proto/nbd/constants.js';
import { NbdClientDecoder, type ServerFrame } from '../proto/nbd/decoder.js';
import {
  decodeInfoReply,
  decodeRepMetaContext,
  decodeRepServer,
  decodeStructuredChunk,
  encodeClientFlags,
  encodeInfoRequest,
  encodeMetaContextRequest,
  encodeOption,
  encodeRequest,
  type BlockDescriptor,
} from '../proto/nbd/messages.js';
import { SheepfoldError } from '../util/errors.js';

export class NbdRequestError extends SheepfoldError<'ENBDREQ'> {
  constructor(
    readonly errno: number,
    message: string,
  ) {
    super('ENBDREQ', message);
  }
}

export interface NbdClientOptions {
  exportName?: string;
  structured?: boolean;
  metaContext?: boolean;
}

export interface ExportInfo {
  size: number;
  transmissionFlags: number;
  minimumBlock?: number;
  preferredBlock?: number;
  maximumPayload?: number;
}

interface Pending {
  type: number;
  length: number;
  offset: number;
  data?: Buffer;
  descriptors?: BlockDescriptor[];
  error?: { errno: number; message: string };
  resolve: (v: { data?: Buffer; descriptors?: BlockDescriptor[] }) => void;
  reject: (e: Error) => void;
}

export class NbdClient {
  private readonly decoder: NbdClientDecoder;
  private frames: ServerFrame[] = [];
  private waiter: (() => void) | undefined;
  private failure: Error | undefined;
  private readonly pending = new Map<bigint, Pending>();
  private nextCookie = 1n;
  private transmission = false;
  private goAcked = false;
  info: ExportInfo = { size: 0, transmissionFlags: 0 };
  structured = false;
  metaContextId: number | undefined;

  constructor(private readonly sock: Duplex) {
    this.decoder = new NbdClientDecoder(
      { maxOptionReplyLength: 1 << 20, maxReplyPayload: (1 << 25) + 64 },
      (cookie) => {
        const p = this.pending.get(cookie);
        return p !== undefined && p.type === C.NBD_CMD_READ ? p.length : 0;
      },
    );
    sock.on('data', (chunk: Buffer) => {
      this.decoder.push(chunk);
      this.drain();
    });
    sock.on('error', (err: Error) => this.fail(err));
    sock.on('end', () => sock.end());
    sock.on('close', () => this.fail(new Error('connection closed')));
  }

  /** Handshake: greeting, client flags, optional structured replies and base:allocation, then GO. */
  async connect(opts: NbdClientOptions = {}): Promise<ExportInfo> {
    await this.greet();
    const name = opts.exportName ?? '';
    if (opts.structured !== false) {
      const r = await this.option(C.NBD_OPT_STRUCTURED_REPLY, Buffer.alloc(0));
      this.structured = r.final === C.NBD_REP_ACK;
      if (this.structured && opts.metaContext !== false) {
        const m = await this.option(
          C.NBD_OPT_SET_META_CONTEXT,
          encodeMetaContextRequest({ name, queries: [C.BASE_ALLOCATION] }),
        );
        for (const d of m.replies) if (d.type === C.NBD_REP_META_CONTEXT) this.metaContextId = decodeRepMetaContext(d.data).id;
      }
    }
    const go = await this.option(
      C.NBD_OPT_GO,
      encodeInfoRequest({ name, requests: [C.NBD_INFO_BLOCK_SIZE, C.NBD_INFO_NAME] }),
    );
    if (go.final !== C.NBD_REP_ACK) throw new NbdRequestError(go.final, `NBD_OPT_GO failed: ${go.message}`);
    for (const r of go.replies) {
      const i = decodeInfoReply(r.data);
      if (i.type === C.NBD_INFO_EXPORT) {
        this.info.size = Number(i.size);
        this.info.transmissionFlags = i.transmissionFlags;
      } else if (i.type === C.NBD_INFO_BLOCK_SIZE) {
        this.info.minimumBlock = i.minimum;
        this.info.preferredBlock = i.preferred;
        this.info.maximumPayload = i.maximum;
      }
    }
    this.transmission = true;
    this.decoder.startTransmission();
    this.drain();
    return this.info;
  }

  /** Greeting and client flags only (for tests that drive options by hand). */
  async greet(): Promise<number> {
    const g = await this.frame();
    if (g.kind !== 'greeting') throw new Error('expected greeting');
    this.sock.write(encodeClientFlags(C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES));
    return g.handshakeFlags;
  }

  /** Send one option; collect replies up to the final ACK or error. */
  async option(
    opt: number,
    data: Buffer,
  ): Promise<{ replies: { type: number; data: Buffer }[]; final: number; message: string }> {
    for (const b of encodeOption(opt, data)) this.sock.write(b);
    const replies: { type: number; data: Buffer }[] = [];
    for (;;) {
      const f = await this.frame();
      if (f.kind !== 'optionReply') throw new Error(`unexpected ${f.kind} during options`);
      if (f.option !== opt) throw new Error(`reply for option ${f.option}, expected ${opt}`);
      if (f.type === C.NBD_REP_ACK || (f.type & C.NBD_REP_FLAG_ERROR) !== 0) {
        return { replies, final: f.type, message: f.data.toString('utf8') };
      }
      replies.push({ type: f.type, data: Buffer.from(f.data) });
    }
  }

  /** NBD_OPT_LIST: export names and descriptions. */
  async list(): Promise<{ name: string; description: string }[]> {
    const r = await this.option(C.NBD_OPT_LIST, Buffer.alloc(0));
    if (r.final !== C.NBD_REP_ACK) throw new NbdRequestError(r.final, r.message);
    return r.replies.filter((x) => x.type === C.NBD_REP_SERVER).map((x) => decodeRepServer(x.data));
  }

  read(offset: number, length: number, flags = 0): Promise<Buffer> {
    return this.request(C.NBD_CMD_READ, flags, offset, length).then((r) => r.data ?? Buffer.alloc(0));
  }

  async write(offset: number, data: Buffer, flags = 0): Promise<void> {
    await this.request(C.NBD_CMD_WRITE, flags, offset, data.length, data);
  }

  async flush(): Promise<void> {
    await this.request(C.NBD_CMD_FLUSH, 0, 0, 0);
  }

  async trim(offset: number, length: number, flags = 0): Promise<void> {
    await this.request(C.NBD_CMD_TRIM, flags, offset, length);
  }

  async writeZeroes(offset: number, length: number, flags = 0): Promise<void> {
    await this.request(C.NBD_CMD_WRITE_ZEROES, flags, offset, length);
  }

  async cache(offset: number, length: number): Promise<void> {
    await this.request(C.NBD_CMD_CACHE, 0, offset, length);
  }

  async blockStatus(offset: number, length: number, flags = 0): Promise<BlockDescriptor[]> {
    const r = await this.request(C.NBD_CMD_BLOCK_STATUS, flags, offset, length);
    return r.descriptors ?? [];
  }

  /** NBD_CMD_DISC, then end our side. */
  disconnect(): void {
    this.sock.write(encodeRequest({ flags: 0, type: C.NBD_CMD_DISC, cookie: 0n, offset: 0n, length: 0 }));
    this.sock.end();
  }

  /** Any request, including invalid ones (tests); `payload` is sent after the header as given. */
  request(
    type: number,
    flags: number,
    offset: number | bigint,
    length: number,
    payload?: Buffer,
  ): Promise<{ data?: Buffer; descriptors?: BlockDescriptor[] }> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const cookie = this.nextCookie++;
    return new Promise((resolve, reject) => {
      this.pending.set(cookie, { type, length, offset: Number(offset), resolve, reject });
      this.sock.cork();
      this.sock.write(encodeRequest({ flags, type, cookie, offset: BigInt(offset), length }));
      if (payload !== undefined && payload.length > 0) this.sock.write(payload);
      this.sock.uncork();
    });
  }

  /** Number of requests awaiting replies. */
  get inFlight(): number {
    return this.pending.size;
  }

  private frame(): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      const tryTake = (): void => {
        const f = this.frames.shift();
        if (f !== undefined) {
          this.waiter = undefined;
          resolve(f);
        } else if (this.failure !== undefined) {
          this.waiter = undefined;
          reject(this.failure);
        } else this.waiter = tryTake;
      };
      tryTake();
    });
  }

  private drain(): void {
    try {
      for (;;) {
        // After GO's ACK the decoder must switch to replies before reading on (connect() does that).
        if (!this.transmission && this.goAcked) return;
        const f = this.decoder.next();
        if (f === undefined) return;
        if (this.transmission) {
          this.onReply(f);
          continue;
        }
        if (f.kind === 'optionReply' && f.option === C.NBD_OPT_GO && f.type === C.NBD_REP_ACK) this.goAcked = true;
        this.frames.push(f);
        this.waiter?.();
      }
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
      this.sock.destroy();
    }
  }

  private onReply(f: ServerFrame): void {
    if (f.kind === 'simpleReply') {
      const p = this.take(f.cookie);
      if (f.error !== 0) p.reject(new NbdRequestError(f.error, `request failed with errno ${f.error}`));
      else p.resolve(p.type === C.NBD_CMD_READ ? { data: Buffer.from(f.payload) } : {});
      return;
    }
    if (f.kind !== 'structuredChunk') throw new Error(`unexpected ${f.kind} in transmission`);
    const p = this.pending.get(f.cookie);
    if (p === undefined) throw new Error(`reply for unknown cookie ${f.cookie}`);
    const c = decodeStructuredChunk(f.type, f.payload);
    if (c.type === C.NBD_REPLY_TYPE_OFFSET_DATA || c.type === C.NBD_REPLY_TYPE_OFFSET_HOLE) {
      p.data ??= Buffer.alloc(p.length);
      const at = Number(c.offset) - p.offset;
      const n = c.type === C.NBD_REPLY_TYPE_OFFSET_DATA ? c.data.length : c.holeSize;
      if (at < 0 || at + n > p.length) throw new Error('content chunk outside the request');
      if (c.type === C.NBD_REPLY_TYPE_OFFSET_DATA) c.data.copy(p.data, at);
      else p.data.fill(0, at, at + n);
    } else if (c.type === C.NBD_REPLY_TYPE_BLOCK_STATUS) {
      p.descriptors = c.descriptors;
    } else if (c.type === C.NBD_REPLY_TYPE_ERROR || c.type === C.NBD_REPLY_TYPE_ERROR_OFFSET || c.type === 'unknownError') {
      p.error = { errno: c.error, message: c.message };
    } else if (c.type !== C.NBD_REPLY_TYPE_NONE) {
      throw new Error(`unexpected chunk type ${f.type}`);
    }
    if ((f.flags & C.NBD_REPLY_FLAG_DONE) === 0) return;
    this.take(f.cookie);
    if (p.error !== undefined) p.reject(new NbdRequestError(p.error.errno, p.error.message));
    else p.resolve({ ...(p.data !== undefined ? { data: p.data } : {}), ...(p.descriptors ? { descriptors: p.descriptors } : {}) });
  }

  private take(cookie: bigint): Pending {
    const p = this.pending.get(cookie);
    if (p === undefined) throw new Error(`reply for unknown cookie ${cookie}`);
    this.pending.delete(cookie);
    return p;
  }

  private fail(err: Error): void {
    if (this.failure !== undefined) return;
    this.failure = err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.waiter?.();
  }
}
