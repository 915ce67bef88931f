// One NBD client connection: fixed-newstyle option haggling (with STARTTLS), then the transmission phase.
// Requests go through three named steps — validate → handle → reply — and run concurrently, replies leave
// in completion order. A bad request gets an error reply (its payload was drained by the decoder); only bad
// magic or a broken socket ends the connection. Reading pauses while `maxInFlight` requests are running or
// the reply backlog is over `maxReplyBacklogBytes`. Writes reach the device only after validation.
// Spec: proto.md "Fixed newstyle negotiation", "TLS support", "Transmission", "Request types".
import type net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Logger } from '../obs/log.js';
import type { BlockDevice, Extent } from '../block/device.js';
import type { ExportEntry, ExportTable } from '../block/export-table.js';
import * as C from '../proto/nbd/constants.js';
import { NbdProtocolError } from '../proto/nbd/errors.js';
import { NbdServerDecoder, nbdRequestCodec, type ClientFrame } from '../proto/nbd/decoder.js';
import { FrameEngine, type Frame } from '../proto/frame.js';
import type { Clock, ClockTimer } from '../util/clock.js';
import {
  decodeInfoRequest,
  decodeMetaContextRequest,
  encodeBlockStatus,
  encodeExportNameReply,
  encodeGreeting,
  encodeInfoReply,
  encodeOffsetDataHeader,
  encodeOffsetHole,
  encodeOptionReply,
  encodeOptionReplyHeader,
  encodeReplyError,
  encodeReplyNone,
  encodeRepMetaContext,
  encodeRepServer,
  encodeSimpleReply,
  type BlockDescriptor,
  type Request,
} from '../proto/nbd/messages.js';
import { nbdErrno } from './errors.js';
import type { BufferPool } from './pool.js';

export type TlsMode = 'off' | 'on' | 'require';

/** Every per-connection limit, by name (see DEFAULT_NBD_LIMITS). */
export interface NbdLimits {
  /** Requests handled at once per connection; reading pauses at this count. */
  maxInFlight: number;
  /** Largest READ/WRITE payload (advertised as the NBD_INFO_BLOCK_SIZE maximum). */
  maxPayload: number;
  /** READ/WRITE bytes of the requests in flight; reading pauses above it (one more request may pass). */
  maxInFlightBytes: number;
  /** Largest option data; larger options are drained and get NBD_REP_ERR_TOO_BIG. */
  maxOptionLength: number;
  /** Options accepted in one handshake before the connection is dropped. */
  maxOptions: number;
  /** Reply bytes queued on the socket above which reading pauses. */
  maxReplyBacklogBytes: number;
  /** Time allowed from accept to the transmission phase. */
  handshakeTimeoutMs: number;
  /** Time shutdown waits for in-flight requests before dropping the connection. */
  drainTimeoutMs: number;
}

export const DEFAULT_NBD_LIMITS: NbdLimits = {
  maxInFlight: 64,
  maxPayload: C.NBD_DEFAULT_MAX_PAYLOAD,
  maxInFlightBytes: 64 * 1024 * 1024,
  maxOptionLength: 64 * 1024,
  maxOptions: 1024,
  maxReplyBacklogBytes: 64 * 1024 * 1024,
  handshakeTimeoutMs: 60_000,
  drainTimeoutMs: 30_000,
};

/** What every connection of one server shares. */
export interface ConnectionContext {
  exports: ExportTable;
  limits: NbdLimits;
  tlsMode: TlsMode;
  secureContext: tls.SecureContext | undefined;
  /** Read buffers shared by the server's connections. */
  pool: BufferPool;
  /** True once the server is shutting down: options get ERR_SHUTDOWN, new requests ESHUTDOWN. */
  shuttingDown(): boolean;
  /** Time source of the handshake and drain timeouts. */
  clock: Clock;
}

/** Bytes of the handshake-phase read buffer of a connection on an `onread` socket (see userRead). */
const NBD_HANDSHAKE_READ_BYTES = 16 * 1024;

const BASE_ALLOCATION_ID = 1;
/** Reads at least this long on thin devices are answered with OFFSET_HOLE chunks for their holes. */
export const NBD_SPARSE_READ_MIN_BYTES = 64 * 1024;
const EMPTY = Buffer.alloc(0);
const KNOWN_CLIENT_FLAGS = C.NBD_FLAG_C_FIXED_NEWSTYLE | C.NBD_FLAG_C_NO_ZEROES;

/** Command flags each command accepts (FUA is accepted everywhere, as the spec requires). */
const ALLOWED_FLAGS: Readonly<Record<number, number>> = {
  [C.NBD_CMD_READ]: C.NBD_CMD_FLAG_FUA | C.NBD_CMD_FLAG_DF,
  [C.NBD_CMD_WRITE]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_DISC]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_FLUSH]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_TRIM]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_CACHE]: C.NBD_CMD_FLAG_FUA,
  [C.NBD_CMD_WRITE_ZEROES]: C.NBD_CMD_FLAG_FUA | C.NBD_CMD_FLAG_NO_HOLE | C.NBD_CMD_FLAG_FAST_ZERO,
  [C.NBD_CMD_BLOCK_STATUS]: C.NBD_CMD_FLAG_FUA | C.NBD_CMD_FLAG_REQ_ONE,
};

type Phase = 'handshake' | 'transmission' | 'closing' | 'closed';

/** A request error decided before or during handling: errno plus a message for the structured reply. */
interface Failure {
  errno: number;
  message: string;
}

export class NbdConnection {
  private sock: Duplex;
  private readonly decoder: NbdServerDecoder;
  private phase: Phase = 'handshake';
  private tlsActive = false;
  private fixedNewstyle = false;
  private noZeroes = false;
  private structured = false;
  private metaExport: string | undefined;
  private optionsSeen = 0;
  private export: ExportEntry | undefined;
  private baseAllocation = false;
  private inFlight = 0;
  private batching = false;
  private batchSock: Duplex | undefined;
  private inFlightBytes = 0;
  private paused = false;
  private discRequested = false;
  private handshakeTimer: ClockTimer | undefined;
  private idleWaiters: (() => void)[] = [];
  /** Set when the socket reads into our buffers (userRead); transmission then parses with `receiver`. */
  private userBuffers = false;
  private handshakeBuf: Buffer | undefined;
  /** Transmission-phase requests parsed from our own read buffers; WRITE payloads land in pooled buffers. */
  private receiver: FrameEngine<Request> | undefined;
  /** Requests parsed by `receiver` and not yet dispatched (over a limit); bounded by one read's bytes. */
  private backlog: Frame<Request>[] = [];
  private backlogHead = 0;
  private readonly onData = (chunk: Buffer): void => this.receive(chunk);
  /** Resolves once the connection is fully closed. */
  readonly closed: Promise<void>;
  private resolveClosed!: () => void;

  constructor(
    sock: Duplex,
    private readonly ctx: ConnectionContext,
    private readonly log: Logger,
  ) {
    this.sock = sock;
    this.decoder = new NbdServerDecoder({
      maxOptionLength: ctx.limits.maxOptionLength,
      maxPayload: ctx.limits.maxPayload,
    });
    this.closed = new Promise((r) => (this.resolveClosed = r));
  }

  /** Send the greeting and start reading. */
  start(): void {
    this.attach(this.sock);
    this.handshakeTimer = this.ctx.clock.setTimeout(() => {
      this.log.warn({ timeoutMs: this.ctx.limits.handshakeTimeoutMs }, 'nbd.handshake_timeout');
      this.destroy();
    }, this.ctx.limits.handshakeTimeoutMs);
    this.sock.write(encodeGreeting(C.NBD_FLAG_FIXED_NEWSTYLE | C.NBD_FLAG_NO_ZEROES));
  }

  /** Graceful stop: no new requests, wait for in-flight ones (bounded), then close the socket. */
  async shutdown(): Promise<void> {
    if (this.phase === 'closed') return;
    if (this.phase === 'handshake') {
      this.destroy();
      return;
    }
    this.phase = 'closing';
    this.sock.pause();
    const drained = this.waitIdle();
    const timeout = new Promise<void>((r) => this.ctx.clock.setTimeout(r, this.ctx.limits.drainTimeoutMs));
    await Promise.race([drained, timeout]);
    this.end();
    await this.closed;
  }

  // ---------------------------------------------------------------- socket plumbing

  private readonly onError = (err: Error): void => {
    this.log.debug({ err: err.message }, 'nbd.socket_error');
    this.destroy();
  };

  private readonly onClose = (): void => this.finish();

  private readonly onEnd = (): void => {
    // The client half-closed: no more requests; finish what is running, then close.
    this.discRequested = true;
    void this.waitIdle().then(() => this.end());
  };

  // Reading may have paused on the reply backlog alone; resume once the socket has drained.
  private readonly onDrain = (): void => {
    if (this.paused) this.pump();
  };

  private attach(s: Duplex): void {
    s.on('data', this.onData);
    s.on('drain', this.onDrain);
    s.on('error', this.onError);
    s.on('close', this.onClose);
    s.on('end', this.onEnd);
  }

  /** Remove our listeners (before a TLS upgrade hands the socket to TLSSocket); errors stay handled. */
  private detach(s: Duplex): void {
    s.removeListener('data', this.onData);
    s.removeListener('drain', this.onDrain);
    s.removeListener('close', this.onClose);
    s.removeListener('end', this.onEnd);
  }

  private finish(): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.ctx.clock.clear(this.handshakeTimer);
    this.decoder.reset('transmission');
    // A read may still target the half-received payload, so it is not pooled again.
    this.receiver?.reset();
    for (let i = this.backlogHead; i < this.backlog.length; i++) {
      const p = this.backlog[i]?.payload;
      if (p !== undefined) this.ctx.pool.release(p);
    }
    this.backlog = [];
    this.backlogHead = 0;
    this.resolveClosed();
  }

  private end(): void {
    if (this.sock.destroyed) {
      this.finish();
      return;
    }
    // Once our replies are flushed there is nothing left to say: close without waiting for the peer.
    this.sock.once('finish', () => this.destroy());
    this.sock.end();
    // A peer that never reads would keep our writes pending; do not wait for it forever.
    this.ctx.clock.setTimeout(() => this.destroy(), this.ctx.limits.drainTimeoutMs);
  }

  private destroy(): void {
    this.sock.destroy();
    this.finish();
  }

  private dead(): boolean {
    return this.phase === 'closed' || this.sock.destroyed;
  }

  private write(b: Buffer): void {
    if (this.dead()) return;
    this.batch();
    this.sock.write(b);
  }

  private writev(bufs: Buffer[]): void {
    if (this.dead()) return;
    this.batch();
    this.sock.cork();
    for (const b of bufs) this.sock.write(b);
    this.sock.uncork();
  }

  // In transmission, replies produced in the same tick (e.g. every request of one received chunk) leave in
  // one writev: cork at the first one, uncork after the current microtasks have run.
  private batch(): void {
    if (this.batching || this.phase !== 'transmission') return;
    this.batching = true;
    this.batchSock = this.sock;
    this.sock.cork();
    process.nextTick(this.endBatch);
  }

  private readonly endBatch = (): void => {
    this.batching = false;
    const s = this.batchSock;
    this.batchSock = undefined;
    if (s !== undefined && !s.destroyed) s.uncork();
  };

  private receive(chunk: Buffer): void {
    if (this.phase === 'closed' || this.phase === 'closing' || this.discRequested) return;
    this.decoder.push(chunk);
    this.pump();
  }

  /**
   * For a socket created with Node's `onread` option (the server does so for plain TCP): the buffer its next
   * read goes into. Before transmission a small reused buffer; then the receiver's (its reused receive buffer,
   * or the rest of a large WRITE payload, so bulk data is read in place).
   */
  nextReadBuffer(): Buffer {
    this.userBuffers = true;
    if (this.receiver !== undefined) return this.receiver.nextBuffer();
    this.handshakeBuf ??= Buffer.allocUnsafe(NBD_HANDSHAKE_READ_BYTES);
    return this.handshakeBuf;
  }

  /** The `onread` callback: `n` bytes were read into `buf` (from nextReadBuffer); false pauses reading. */
  userRead(n: number, buf: Buffer): boolean {
    if (this.phase === 'closed' || this.phase === 'closing' || this.discRequested) return false;
    const r = this.receiver;
    if (r === undefined) {
      // Handshake: the decoder keeps views of what it is given, and `buf` is reused, so hand it a copy.
      this.receive(Buffer.from(buf.subarray(0, n)));
      return !this.paused;
    }
    try {
      r.consume(buf, n);
    } catch (err) {
      this.protocolError(err);
      return false;
    }
    this.pump();
    return !this.paused;
  }

  private readonly onReceived = (f: Frame<Request>): void => {
    this.backlog.push(f);
  };

  // Dispatch received requests while under the limits; pause the socket when over them.
  private pumpBacklog(): void {
    while (this.backlogHead < this.backlog.length) {
      if (this.dead() || this.discRequested || this.phase !== 'transmission') return;
      if (this.overLimit()) {
        if (!this.paused) {
          this.paused = true;
          this.sock.pause();
        }
        return;
      }
      const f = this.backlog[this.backlogHead++] as Frame<Request>;
      this.dispatch(f.header, f.payload, f.drained, f.payload);
    }
    this.backlog.length = 0;
    this.backlogHead = 0;
    if (this.paused && !this.overLimit()) {
      this.paused = false;
      this.sock.resume();
    }
  }

  // Pull frames while under the limits; pause the socket when over them.
  private pump(): void {
    if (this.receiver !== undefined) {
      this.pumpBacklog();
      return;
    }
    while (!this.dead() && !this.discRequested && this.phase !== 'closing') {
      if (this.phase === 'transmission' && this.overLimit()) {
        if (!this.paused) {
          this.paused = true;
          this.sock.pause();
        }
        return;
      }
      let f: ClientFrame | undefined;
      try {
        f = this.decoder.next();
      } catch (err) {
        this.protocolError(err);
        return;
      }
      if (f === undefined) break;
      if (f.kind === 'request') this.dispatch(f.request, f.payload, f.oversize);
      else if (!this.handshakeFrame(f)) return;
    }
    if (this.paused && !this.overLimit()) {
      this.paused = false;
      this.sock.resume();
    }
  }

  private overLimit(): boolean {
    return (
      this.inFlight >= this.ctx.limits.maxInFlight ||
      this.inFlightBytes > this.ctx.limits.maxInFlightBytes ||
      this.sock.writableLength > this.ctx.limits.maxReplyBacklogBytes
    );
  }

  private protocolError(err: unknown): void {
    const code = err instanceof NbdProtocolError ? err.code : 'UNKNOWN';
    this.log.warn({ code, err: err instanceof Error ? err.message : String(err) }, 'nbd.protocol_error');
    this.destroy();
  }

  private waitIdle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  // ---------------------------------------------------------------- handshake

  /** Handle one handshake frame; false if the connection ended. */
  private handshakeFrame(f: Exclude<ClientFrame, { kind: 'request' }>): boolean {
    if (f.kind === 'clientFlags') {
      if ((f.flags & ~KNOWN_CLIENT_FLAGS) !== 0) {
        this.log.warn({ flags: f.flags }, 'nbd.bad_client_flags');
        this.destroy();
        return false;
      }
      this.fixedNewstyle = (f.flags & C.NBD_FLAG_C_FIXED_NEWSTYLE) !== 0;
      this.noZeroes = (f.flags & C.NBD_FLAG_C_NO_ZEROES) !== 0;
      if (this.ctx.tlsMode === 'require' && !this.fixedNewstyle) {
        this.log.warn('nbd.tls_needs_fixed_newstyle');
        this.destroy();
        return false;
      }
      return true;
    }
    if (++this.optionsSeen > this.ctx.limits.maxOptions) {
      this.log.warn({ maxOptions: this.ctx.limits.maxOptions }, 'nbd.too_many_options');
      this.destroy();
      return false;
    }
    return this.option(f.option, f.data, f.oversize);
  }

  private reply(option: number, type: number, data: Buffer = EMPTY): void {
    this.writev(encodeOptionReply(option, type, data));
  }

  private replyError(option: number, type: number, message: string): void {
    this.reply(option, type, Buffer.from(message, 'utf8'));
  }

  private option(opt: number, data: Buffer, oversize: boolean): boolean {
    this.log.debug({ op: opt, length: data.length }, 'nbd.option');
    if (opt === C.NBD_OPT_ABORT) {
      this.reply(opt, C.NBD_REP_ACK);
      this.end();
      return false;
    }
    if (oversize) {
      this.replyError(opt, C.NBD_REP_ERR_TOO_BIG, 'option data too large');
      return true;
    }
    if (this.ctx.shuttingDown()) {
      if (opt === C.NBD_OPT_EXPORT_NAME) return this.hardClose('export name during shutdown');
      this.replyError(opt, C.NBD_REP_ERR_SHUTDOWN, 'server is shutting down');
      return true;
    }
    const tlsRequired = this.ctx.tlsMode === 'require' && !this.tlsActive;
    if (tlsRequired && opt !== C.NBD_OPT_STARTTLS) {
      if (opt === C.NBD_OPT_EXPORT_NAME) return this.hardClose('export name without TLS');
      this.replyError(opt, C.NBD_REP_ERR_TLS_REQD, 'TLS is required');
      return true;
    }
    switch (opt) {
      case C.NBD_OPT_EXPORT_NAME:
        return this.optExportName(data);
      case C.NBD_OPT_LIST:
        this.optList(data);
        return true;
      case C.NBD_OPT_STARTTLS:
        return this.optStartTls(data);
      case C.NBD_OPT_INFO:
      case C.NBD_OPT_GO:
        this.optInfoGo(opt, data);
        return true;
      case C.NBD_OPT_STRUCTURED_REPLY:
        if (data.length !== 0) this.replyError(opt, C.NBD_REP_ERR_INVALID, 'no data expected');
        else if (this.structured) this.replyError(opt, C.NBD_REP_ERR_INVALID, 'already negotiated');
        else {
          this.structured = true;
          this.reply(opt, C.NBD_REP_ACK);
        }
        return true;
      case C.NBD_OPT_LIST_META_CONTEXT:
      case C.NBD_OPT_SET_META_CONTEXT:
        this.optMetaContext(opt, data);
        return true;
      default:
        this.replyError(opt, C.NBD_REP_ERR_UNSUP, `option ${opt} not supported`);
        return true;
    }
  }

  private hardClose(reason: string): false {
    this.log.info({ reason }, 'nbd.handshake_refused');
    this.destroy();
    return false;
  }

  /** The export for a requested name: the empty name selects the first (default) export. */
  private lookup(name: string): ExportEntry | undefined {
    if (name === '') {
      const named = this.ctx.exports.get('');
      if (named !== undefined) return named;
      return this.ctx.exports.values().next().value;
    }
    return this.ctx.exports.get(name);
  }

  private transmissionFlags(e: ExportEntry): number {
    let f =
      C.NBD_FLAG_HAS_FLAGS |
      C.NBD_FLAG_SEND_FLUSH |
      C.NBD_FLAG_SEND_FUA |
      C.NBD_FLAG_SEND_CACHE;
    if (e.readOnly) f |= C.NBD_FLAG_READ_ONLY;
    else f |= C.NBD_FLAG_SEND_TRIM | C.NBD_FLAG_SEND_WRITE_ZEROES | C.NBD_FLAG_SEND_FAST_ZERO;
    if (this.structured) f |= C.NBD_FLAG_SEND_DF;
    if (e.device.multiConn) f |= C.NBD_FLAG_CAN_MULTI_CONN;
    return f;
  }

  private optExportName(data: Buffer): boolean {
    const name = data.toString('utf8');
    const e = this.lookup(name);
    if (e === undefined) return this.hardClose(`unknown export '${name}'`);
    this.write(encodeExportNameReply(BigInt(e.device.size), this.transmissionFlags(e), this.noZeroes));
    this.enterTransmission(e, name);
    return true;
  }

  private optList(data: Buffer): void {
    if (data.length !== 0) {
      this.replyError(C.NBD_OPT_LIST, C.NBD_REP_ERR_INVALID, 'NBD_OPT_LIST takes no data');
      return;
    }
    for (const e of this.ctx.exports.values()) {
      this.reply(C.NBD_OPT_LIST, C.NBD_REP_SERVER, encodeRepServer(e.name, e.description));
    }
    this.reply(C.NBD_OPT_LIST, C.NBD_REP_ACK);
  }

  private optStartTls(data: Buffer): boolean {
    const opt = C.NBD_OPT_STARTTLS;
    if (this.ctx.tlsMode === 'off' || this.ctx.secureContext === undefined) {
      this.replyError(opt, C.NBD_REP_ERR_POLICY, 'TLS is not enabled on this server');
      return true;
    }
    if (this.tlsActive) {
      this.replyError(opt, C.NBD_REP_ERR_INVALID, 'TLS already active');
      return true;
    }
    if (data.length !== 0) {
      this.replyError(opt, C.NBD_REP_ERR_INVALID, 'NBD_OPT_STARTTLS takes no data');
      return true;
    }
    if (this.decoder.buffered !== 0 || this.decoder.draining !== 0) {
      // The client sent more before our ACK: it cannot be speaking TLS correctly.
      return this.hardClose('data after STARTTLS');
    }
    this.reply(opt, C.NBD_REP_ACK);
    const raw = this.sock;
    this.detach(raw);
    const secure = new tls.TLSSocket(raw as net.Socket, {
      isServer: true,
      secureContext: this.ctx.secureContext,
    });
    this.sock = secure;
    this.tlsActive = true;
    // Spec: no negotiation state survives STARTTLS.
    this.structured = false;
    this.metaExport = undefined;
    this.baseAllocation = false;
    this.decoder.reset('options');
    this.attach(secure);
    secure.once('secure', () => this.log.debug('nbd.tls_established'));
    return true;
  }

  private optInfoGo(opt: number, data: Buffer): void {
    let req;
    try {
      req = decodeInfoRequest(data);
    } catch (err) {
      this.replyError(opt, C.NBD_REP_ERR_INVALID, err instanceof Error ? err.message : 'bad request');
      return;
    }
    const e = this.lookup(req.name);
    if (e === undefined) {
      this.replyError(opt, C.NBD_REP_ERR_UNKNOWN, `unknown export '${req.name}'`);
      return;
    }
    const infos = [
      encodeInfoReply({ type: C.NBD_INFO_EXPORT, size: BigInt(e.device.size), transmissionFlags: this.transmissionFlags(e) }),
      encodeInfoReply({
        type: C.NBD_INFO_BLOCK_SIZE,
        minimum: 1,
        preferred: Math.max(512, e.device.preferredBlockSize),
        maximum: this.ctx.limits.maxPayload,
      }),
    ];
    if (req.requests.includes(C.NBD_INFO_NAME) || req.name !== e.name) {
      infos.push(encodeInfoReply({ type: C.NBD_INFO_NAME, name: e.name }));
    }
    if (req.requests.includes(C.NBD_INFO_DESCRIPTION) && e.description !== '') {
      infos.push(encodeInfoReply({ type: C.NBD_INFO_DESCRIPTION, description: e.description }));
    }
    const bufs: Buffer[] = [];
    for (const i of infos) bufs.push(encodeOptionReplyHeader(opt, C.NBD_REP_INFO, i.length), i);
    bufs.push(encodeOptionReplyHeader(opt, C.NBD_REP_ACK, 0));
    this.writev(bufs);
    if (opt === C.NBD_OPT_GO) this.enterTransmission(e, req.name);
  }

  private optMetaContext(opt: number, data: Buffer): void {
    const set = opt === C.NBD_OPT_SET_META_CONTEXT;
    if (set) {
      // Spec: SET replaces the previous selection even when it fails.
      this.metaExport = undefined;
      this.baseAllocation = false;
    }
    if (!this.structured) {
      this.replyError(opt, C.NBD_REP_ERR_INVALID, 'negotiate structured replies first');
      return;
    }
    let req;
    try {
      req = decodeMetaContextRequest(data);
    } catch (err) {
      this.replyError(opt, C.NBD_REP_ERR_INVALID, err instanceof Error ? err.message : 'bad request');
      return;
    }
    if (this.lookup(req.name) === undefined) {
      this.replyError(opt, C.NBD_REP_ERR_UNKNOWN, `unknown export '${req.name}'`);
      return;
    }
    let match: boolean;
    if (set) match = req.queries.includes(C.BASE_ALLOCATION);
    else match = req.queries.length === 0 || req.queries.some((q) => q === 'base:' || q === C.BASE_ALLOCATION);
    if (match) {
      this.reply(opt, C.NBD_REP_META_CONTEXT, encodeRepMetaContext(set ? BASE_ALLOCATION_ID : 0, C.BASE_ALLOCATION));
    }
    if (set && match) {
      this.metaExport = req.name;
      this.baseAllocation = true;
    }
    this.reply(opt, C.NBD_REP_ACK);
  }

  private enterTransmission(e: ExportEntry, requestedName: string): void {
    this.ctx.clock.clear(this.handshakeTimer);
    this.export = e;
    if (this.metaExport !== requestedName) this.baseAllocation = false;
    this.phase = 'transmission';
    this.decoder.startTransmission();
    // Parse in place from now on, unless the client already sent bytes the decoder holds (then stay on it).
    if (this.userBuffers && this.decoder.buffered === 0 && this.decoder.draining === 0) {
      this.receiver = new FrameEngine(nbdRequestCodec(this.ctx.limits.maxPayload), { payload: this.ctx.pool, onFrame: this.onReceived });
      this.handshakeBuf = undefined;
    }
    this.log.info(
      { export: e.name, tls: this.tlsActive, structured: this.structured, baseAllocation: this.baseAllocation },
      'nbd.transmission',
    );
  }

  // ---------------------------------------------------------------- transmission

  /** Run one request; a `pooled` payload goes back to the pool once the device has written it. */
  private dispatch(r: Request, payload: Buffer | undefined, oversize: boolean, pooled?: Buffer): void {
    if (r.type === C.NBD_CMD_DISC) {
      this.discRequested = true;
      this.log.debug('nbd.disc');
      void this.waitIdle().then(() => this.end());
      return;
    }
    // Only READ and WRITE hold buffers of the request's length; the rest cost a header.
    const bytes =
      r.type === C.NBD_CMD_READ || (r.type === C.NBD_CMD_WRITE && !oversize)
        ? Math.min(r.length, this.ctx.limits.maxPayload)
        : 0;
    this.inFlight++;
    this.inFlightBytes += bytes;
    void this.run(r, payload, oversize).then((ok) => {
      // After a failed write the device may still hold the buffer (e.g. a timed-out send): leave it to the GC.
      if (pooled !== undefined && ok) this.ctx.pool.release(pooled);
      this.inFlight--;
      this.inFlightBytes -= bytes;
      if (this.inFlight === 0 && this.idleWaiters.length > 0) {
        for (const w of this.idleWaiters.splice(0)) w();
      }
      if (this.paused) this.pump();
    });
  }

  /** Validate and handle one request; false if the device failed it. */
  private async run(r: Request, payload: Buffer | undefined, oversize: boolean): Promise<boolean> {
    const bad = this.validate(r, oversize);
    if (bad !== undefined) {
      this.log.debug({ op: r.type, errno: bad.errno, reason: bad.message }, 'nbd.request_invalid');
      this.replyFailure(r, bad);
      return true;
    }
    try {
      await this.handle(r, payload);
      return true;
    } catch (err) {
      const errno = nbdErrno(err);
      const message = err instanceof Error ? err.message : String(err);
      this.log.warn({ op: r.type, offset: Number(r.offset), length: r.length, errno, err: message }, 'nbd.request_failed');
      this.replyFailure(r, { errno, message });
      return false;
    }
  }

  /** Step 1: everything checkable without touching the device. */
  private validate(r: Request, oversize: boolean): Failure | undefined {
    const e = this.export;
    if (e === undefined) return { errno: C.NBD_EINVAL, message: 'no export selected' };
    if (this.ctx.shuttingDown() || this.phase === 'closing') {
      return { errno: C.NBD_ESHUTDOWN, message: 'server is shutting down' };
    }
    const allowed = ALLOWED_FLAGS[r.type];
    if (allowed === undefined) return { errno: C.NBD_EINVAL, message: `unknown command ${r.type}` };
    if ((r.flags & ~allowed) !== 0) {
      return { errno: C.NBD_EINVAL, message: `flags 0x${r.flags.toString(16)} not valid for command ${r.type}` };
    }
    if ((r.flags & C.NBD_CMD_FLAG_DF) !== 0 && !this.structured) {
      return { errno: C.NBD_EINVAL, message: 'DF without structured replies' };
    }
    const size = e.device.size;
    const writes = r.type === C.NBD_CMD_WRITE || r.type === C.NBD_CMD_TRIM || r.type === C.NBD_CMD_WRITE_ZEROES;
    if (oversize) return { errno: C.NBD_EINVAL, message: `payload ${r.length} exceeds ${this.ctx.limits.maxPayload}` };
    if (writes && e.readOnly) return { errno: C.NBD_EPERM, message: `export ${e.name} is read-only` };
    if (r.type === C.NBD_CMD_FLUSH) return undefined;
    if (r.offset + BigInt(r.length) > BigInt(size)) {
      const errno = r.type === C.NBD_CMD_WRITE || r.type === C.NBD_CMD_WRITE_ZEROES ? C.NBD_ENOSPC : C.NBD_EINVAL;
      return { errno, message: `range ${r.offset}+${r.length} beyond end of export (size ${size})` };
    }
    if (r.type === C.NBD_CMD_READ && r.length > this.ctx.limits.maxPayload) {
      return {
        errno: this.structured ? C.NBD_EOVERFLOW : C.NBD_EINVAL,
        message: `read of ${r.length} exceeds ${this.ctx.limits.maxPayload}`,
      };
    }
    if (r.type === C.NBD_CMD_BLOCK_STATUS) {
      if (!this.baseAllocation) return { errno: C.NBD_EINVAL, message: 'no metadata context selected' };
      if (r.length === 0) return { errno: C.NBD_EINVAL, message: 'zero-length block status' };
    }
    return undefined;
  }

  /** Step 2 and 3: perform the operation on the device and send the success reply. */
  private async handle(r: Request, payload: Buffer | undefined): Promise<void> {
    const dev = (this.export as ExportEntry).device;
    const offset = Number(r.offset);
    const fua = (r.flags & C.NBD_CMD_FLAG_FUA) !== 0;
    switch (r.type) {
      case C.NBD_CMD_READ:
        await this.read(r, offset);
        return;
      case C.NBD_CMD_WRITE:
        if (payload !== undefined) await dev.write(offset, payload, { fua });
        break;
      case C.NBD_CMD_FLUSH:
        await dev.flush();
        break;
      case C.NBD_CMD_TRIM:
        if (r.length > 0) await dev.discard(offset, r.length, { fua });
        break;
      case C.NBD_CMD_WRITE_ZEROES:
        if (r.length > 0) {
          await dev.writeZeroes(offset, r.length, {
            fua,
            mayTrim: (r.flags & C.NBD_CMD_FLAG_NO_HOLE) === 0,
            fastOnly: (r.flags & C.NBD_CMD_FLAG_FAST_ZERO) !== 0,
          });
        }
        break;
      case C.NBD_CMD_CACHE:
        // Devices here have no separate cache to warm; the range was validated.
        break;
      case C.NBD_CMD_BLOCK_STATUS:
        await this.blockStatus(r, offset);
        return;
    }
    this.write(encodeSimpleReply(0, r.cookie));
  }

  private async read(r: Request, offset: number): Promise<void> {
    const dev = (this.export as ExportEntry).device;
    const len = r.length;
    if (!this.structured) {
      if (len === 0) this.write(encodeSimpleReply(0, r.cookie));
      else await this.readAndSend(dev, offset, len, encodeSimpleReply(0, r.cookie));
      return;
    }
    if (len === 0) {
      this.write(encodeReplyNone(r.cookie));
      return;
    }
    const df = (r.flags & C.NBD_CMD_FLAG_DF) !== 0;
    let extents: Extent[] | undefined;
    // Small reads go out as data: a hole chunk saves little and the extent lookup costs a round trip.
    if (dev.thin && !df && len >= NBD_SPARSE_READ_MIN_BYTES) {
      extents = await dev.extents(offset, len);
      if (extents.length === 1 && extents[0]?.allocated !== false) extents = undefined;
    }
    if (extents === undefined) {
      await this.readAndSend(dev, offset, len, encodeOffsetDataHeader(C.NBD_REPLY_FLAG_DONE, r.cookie, r.offset, len));
      return;
    }
    // Sparse read: holes travel as OFFSET_HOLE chunks, data as OFFSET_DATA; read everything before sending
    // so no chunk is flagged DONE while an error could still happen.
    const parts = await Promise.all(
      extents.map((x) => (x.allocated ? dev.read(x.offset, x.length) : undefined)),
    );
    const bufs: Buffer[] = [];
    const last = extents.length - 1;
    extents.forEach((x, i) => {
      const flags = i === last ? C.NBD_REPLY_FLAG_DONE : 0;
      const data = parts[i];
      if (data === undefined) bufs.push(encodeOffsetHole(flags, r.cookie, BigInt(x.offset), x.length));
      else bufs.push(encodeOffsetDataHeader(flags, r.cookie, BigInt(x.offset), x.length), data);
    });
    this.writev(bufs);
  }

  /**
   * Read [offset, offset+len) and send it after `header`, by the cheapest path the device offers: lent views
   * (no copy), a pooled buffer, or a fresh one. The read completes before the header is queued, so an error
   * still gets an error reply.
   */
  private async readAndSend(dev: BlockDevice, offset: number, len: number, header: Buffer): Promise<void> {
    if (dev.readLent === undefined) {
      this.sendData(header, await this.readBuffer(dev, offset, len));
      return;
    }
    const lease = await dev.readLent(offset, len);
    if (this.dead()) {
      lease.release();
      return;
    }
    this.batch();
    this.sock.cork();
    this.sock.write(header);
    const last = lease.views.length - 1;
    lease.views.forEach((v, i) => {
      // Callbacks run in order: the last one means the socket is done with every view.
      if (i === last) this.sock.write(v, () => lease.release());
      else this.sock.write(v);
    });
    this.sock.uncork();
  }

  /** Read into a pooled buffer when the device can; the buffer returns to the pool after sendData. */
  private async readBuffer(dev: BlockDevice, offset: number, len: number): Promise<Buffer> {
    if (dev.readInto === undefined) return dev.read(offset, len);
    const buf = this.ctx.pool.get(len);
    try {
      await dev.readInto(offset, buf);
    } catch (err) {
      this.ctx.pool.release(buf);
      throw err;
    }
    return buf;
  }

  /** Header and data under one cork; the data buffer goes back to the pool once the socket is done with it. */
  private sendData(header: Buffer, data: Buffer): void {
    if (this.dead()) {
      this.ctx.pool.release(data);
      return;
    }
    this.batch();
    this.sock.cork();
    this.sock.write(header);
    this.sock.write(data, () => this.ctx.pool.release(data));
    this.sock.uncork();
  }

  private async blockStatus(r: Request, offset: number): Promise<void> {
    const dev = (this.export as ExportEntry).device;
    const extents = await dev.extents(offset, r.length);
    const reqOne = (r.flags & C.NBD_CMD_FLAG_REQ_ONE) !== 0;
    const descs: BlockDescriptor[] = [];
    for (const x of extents) {
      if (x.length === 0) continue;
      const flags = (x.allocated ? 0 : C.NBD_STATE_HOLE) | (x.zero ? C.NBD_STATE_ZERO : 0);
      const prev = descs[descs.length - 1];
      if (prev !== undefined && prev.flags === flags) prev.length += x.length;
      else descs.push({ length: x.length, flags });
      if (descs.length >= C.NBD_MAX_BLOCK_DESCRIPTORS) break;
    }
    if (descs.length === 0) descs.push({ length: r.length, flags: 0 });
    const out = reqOne ? descs.slice(0, 1) : descs;
    this.write(encodeBlockStatus(C.NBD_REPLY_FLAG_DONE, r.cookie, BASE_ALLOCATION_ID, out));
  }

  private replyFailure(r: Request, f: Failure): void {
    if (this.structured) this.write(encodeReplyError(C.NBD_REPLY_FLAG_DONE, r.cookie, f.errno, f.message));
    else this.write(encodeSimpleReply(f.errno, r.cookie));
  }
}
