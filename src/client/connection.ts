// One client connection to a sheep (TCP or unix socket). Requests are pipelined: each gets a fresh `id`, is
// written at once (header + payload under cork), and is matched to its response by id, in whatever order the
// sheep completes them (fact sheet §1.1, §1.8). A response with an unknown id is dropped (it belongs to a
// request that timed out). Any socket error, EOF or protocol violation fails every request in flight with a
// SheepNetError and closes the connection for good; reconnecting is the transport's job.
import net from 'node:net';
import {
  SD_INODE_SIZE,
  SD_REQ_SIZE,
  SdProtocolError,
  opName,
  sdResponseCodec,
  writeRequestHeader,
  type SdRequest,
  type SdResponse,
} from '../proto/sheepdog/index.js';
import { gatewayText, type GatewayAddr } from './address.js';
import { SheepNetError, describeSocketError } from './errors.js';
import { FrameEngine } from '../proto/frame.js';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.js';
import { sayHello, type Hello } from './hello.js';

/** A decoded reply: header plus payload (null when data_length is 0). */
export interface SdReply {
  rsp: SdResponse;
  data: Buffer | null;
}

/** Largest reply payload accepted: 2^31 (an object with block_size_shift 31) or a full inode. */
export const MAX_REPLY_PAYLOAD = Math.max(2 ** 31, SD_INODE_SIZE);

interface Pending {
  opcode: number;
  resolve: (r: SdReply) => void;
  reject: (e: Error) => void;
  timer: ClockTimer | undefined;
  /** The caller's buffer for the reply payload (read in place when it fits). */
  into: Buffer | undefined;
}

export interface ConnectOptions {
  /** Give up connecting after this long. */
  connectTimeoutMs: number;
  /** Say HELLO (target identity, docs/fencing.md §3) before the connection is handed out. */
  hello?: Hello;
  /** Time source of the connect and request timeouts (default: the system clock). */
  clock?: Clock;
}

export class SheepConnection {
  readonly gateway: GatewayAddr;
  readonly label: string;
  private readonly socket: net.Socket;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private dead: SheepNetError | null = null;
  private readonly closeListeners: ((err: SheepNetError) => void)[] = [];
  /** True when a HELLO bound this connection to a target identity (false: none asked, or the sheep lacks it). */
  targetBound = false;
  private readonly clock: Clock;

  private constructor(gateway: GatewayAddr, socket: net.Socket, rx: FrameEngine<SdResponse>, clock: Clock) {
    this.clock = clock;
    this.gateway = gateway;
    this.label = gatewayText(gateway);
    this.socket = socket;
    socket.setNoDelay(true);
    rx.onFrame = (f) => this.onReply(f.header, f.payload ?? null);
    socket.on('error', (err) => this.fail(new SheepNetError('ECONNLOST', this.label, `connection to ${this.label} lost: ${describeSocketError(err)}`, { cause: err })));
    socket.on('close', () => this.fail(new SheepNetError('ECONNLOST', this.label, `connection to ${this.label} closed by peer`)));
  }

  /** Open a connection (and say HELLO if asked); rejects with SheepNetError ECONNECT ("cannot connect to H:P: ..."). */
  static async connect(gateway: GatewayAddr, opts: ConnectOptions): Promise<SheepConnection> {
    const c = await SheepConnection.open(gateway, opts);
    if (opts.hello === undefined) return c;
    try {
      c.targetBound = await sayHello(c, opts.hello, opts.connectTimeoutMs);
    } catch (err) {
      c.close();
      throw new SheepNetError('ECONNECT', c.label, `cannot connect to ${c.label}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    return c;
  }

  private static open(gateway: GatewayAddr, opts: ConnectOptions): Promise<SheepConnection> {
    const label = gatewayText(gateway);
    return new Promise((resolve, reject) => {
      // Replies are read into buffers the engine chooses (one reused receive buffer; a large payload is read in
      // place, into the request's own buffer when it brought one, else into a fresh one).
      let conn: SheepConnection | undefined;
      const rx = new FrameEngine(
        sdResponseCodec(MAX_REPLY_PAYLOAD, (rsp) => conn?.replyDestination(rsp)),
        { payload: 'copy' },
      );
      const onread = {
        buffer: () => rx.nextBuffer(),
        callback: (n: number, buf: Uint8Array): boolean => {
          try {
            rx.consume(buf as Buffer, n);
          } catch (err) {
            const text = err instanceof SdProtocolError ? err.message : String(err);
            conn?.fail(new SheepNetError('EPROTO', label, `protocol error from ${label}: ${text}`, { cause: err }));
            if (conn === undefined) socket.destroy();
            return false;
          }
          return true;
        },
      };
      const socket =
        gateway.kind === 'unix'
          ? net.createConnection({ path: gateway.path, onread })
          : net.createConnection({ host: gateway.host, port: gateway.port, onread });
      const clock = opts.clock ?? systemClock;
      const timer = clock.setTimeout(() => {
        socket.destroy();
        reject(new SheepNetError('ECONNECT', label, `cannot connect to ${label}: connection timed out`));
      }, opts.connectTimeoutMs);
      socket.once('error', (err) => {
        clock.clear(timer);
        socket.destroy();
        reject(new SheepNetError('ECONNECT', label, `cannot connect to ${label}: ${describeSocketError(err)}`, { cause: err }));
      });
      socket.once('connect', () => {
        clock.clear(timer);
        socket.removeAllListeners('error');
        conn = new SheepConnection(gateway, socket, rx, clock);
        resolve(conn);
      });
    });
  }

  /** Where a reply's payload goes: the buffer its request brought, if any. */
  private replyDestination(rsp: SdResponse): Buffer | undefined {
    return this.dead ? undefined : this.pending.get(rsp.id)?.into;
  }

  /** Requests awaiting a reply. */
  get inFlight(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.dead !== null;
  }

  /** Called once when the connection dies (with the reason). */
  onClose(fn: (err: SheepNetError) => void): void {
    if (this.dead) fn(this.dead);
    else this.closeListeners.push(fn);
  }

  /**
   * Send one request (its `id` is assigned here) and resolve with the reply. A timeout rejects with ETIMEDOUT
   * and kills the connection: a sheep that does not answer is treated as dead. With `into`, a reply payload that
   * fits is read straight into it (the reply's data is then a view of `into`); nothing is written to `into` once
   * the promise settled (a failed request kills its connection first).
   */
  send(req: SdRequest, payload: Buffer | null, timeoutMs: number, into?: Buffer): Promise<SdReply> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.allocId();
    const header = Buffer.allocUnsafe(SD_REQ_SIZE);
    writeRequestHeader({ ...req, id }, header, 0);
    return new Promise<SdReply>((resolve, reject) => {
      const p: Pending = { opcode: req.opcode, resolve, reject, timer: undefined, into };
      if (timeoutMs > 0 && Number.isFinite(timeoutMs)) {
        p.timer = this.clock.setTimeout(() => {
          this.fail(new SheepNetError('ETIMEDOUT', this.label, `${opName(req.opcode)} to ${this.label} timed out after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.pending.set(id, p);
      this.socket.cork();
      this.socket.write(header);
      if (payload !== null && payload.length > 0) this.socket.write(payload);
      this.socket.uncork();
    });
  }

  /** Close the connection; requests in flight fail with ECLOSED. */
  close(): void {
    this.fail(new SheepNetError('ECLOSED', this.label, `connection to ${this.label} closed`));
  }

  private allocId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private onReply(rsp: SdResponse, data: Buffer | null): void {
    if (this.dead) return;
    const p = this.pending.get(rsp.id);
    if (p === undefined) return;
    this.pending.delete(rsp.id);
    this.clock.clear(p.timer);
    // The payload is its own buffer or a view of the request's `into` (the frame engine never reuses either).
    p.resolve({ rsp, data });
  }

  private fail(err: SheepNetError): void {
    if (this.dead) return;
    this.dead = err;
    this.socket.destroy();
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) {
      this.clock.clear(p.timer);
      p.reject(err);
    }
    for (const fn of this.closeListeners.splice(0)) fn(err);
  }
}
