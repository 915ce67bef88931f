// SheepTransport: requests multiplexed over a small pool of pipelined connections to one gateway at a time,
// with a bound on requests in flight, per-request timeouts, reconnect and gateway failover.
//
// Failure model (seed 004: the client propagates disconnect/reconnect and reconnects by itself):
// - When a connection dies, the transport emits `disconnect` once per outage, reconnects to the same gateway,
//   then to the next gateways of the list in order (`failover`), until `reconnectTimeoutMs` has passed, and
//   emits `reconnect` when a connection is up again.
// - Requests that were in flight on the dead connection are re-sent if they are idempotent: object reads and
//   writes, CREATE_AND_WRITE (fact sheet §8.2: a create of the same bytes twice is harmless), lookups, stats.
// - Non-idempotent requests (LOCK_VDI, NEW_VDI, DEL_VDI, MAKE_FS, SHUTDOWN, ...) whose reply was lost are
//   NOT re-sent: they fail with SheepNetError EUNCERTAIN and the caller decides (re-check state, tell a human).
// - A gateway that accepts connections but does not answer (blackhole, one-way partition, frozen process) is
//   found by a probe: once a request has waited `probeAfterMs`, a fresh connection asks the gateway for
//   GET_NODE_LIST (answered from memory); no answer within `probeTimeoutMs` — or any request timing out — makes
//   the gateway *suspect* (`suspect` event): its connections are closed, idempotent requests in flight are
//   re-sent on the next gateway of the list (write fences still apply), and suspect gateways are skipped when
//   reconnecting until a background probe finds them answering again. A one-pass client (reconnectTimeoutMs
//   0, e.g. sheep-to-sheep) whose gateways are all suspect fails requests at once with ECONNECT.
import { EventEmitter } from 'node:events';
import * as C from '../proto/sheepdog/constants.js';
import { emptyReqArgs, makeRequest, opName, type SdRequest } from '../proto/sheepdog/index.js';
import { componentLogger, type Logger } from '../obs/log.js';
import { gatewayText, type GatewayAddr } from './address.js';
import { SheepConnection, type ConnectOptions, type SdReply } from './connection.js';
import type { Hello } from './hello.js';
import { SheepNetError } from './errors.js';
import { systemClock, type Clock, type ClockTimer } from '../util/clock.js';

export interface TransportOptions {
  /** Gateways in failover order (at least one). */
  gateways: GatewayAddr[];
  /** Connections kept to the current gateway (default 2). */
  poolSize?: number;
  /** Requests in flight over the whole pool; more wait in a queue (default 64). */
  maxInFlight?: number;
  /** Default per-request timeout (default 60 s; 0 = none). */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** How long to keep trying to reconnect (over all gateways) before failing requests (default 30 s; 0 = one pass). */
  reconnectTimeoutMs?: number;
  /** Like reconnectTimeoutMs, for the very first connection (default: reconnectTimeoutMs). */
  initialConnectTimeoutMs?: number;
  /** How many times one idempotent request is re-sent after losing its connection (default 5). */
  maxResends?: number;
  /** Target identity every connection announces first (HELLO, docs/fencing.md §3). */
  hello?: Hello;
  /**
   * Probe the gateway once a request has waited this long (0 = never; default 1500 ms with two or more
   * gateways, else 0: with nowhere to fail over to, a slow but live sheep is better waited for).
   */
  probeAfterMs?: number;
  /**
   * Stall the write fence (docs/fencing.md §4) also when ANY request stays unanswered this long (0 = only fenced
   * requests, at their deadline). A target sets its write fence here: commands that wait on a cut link before
   * their write reaches the client (a reservation check's read) are then fenced like the writes themselves.
   */
  stallAfterMs?: number;
  /** A probe not answered within this long makes the gateway suspect (default 2000 ms). */
  probeTimeoutMs?: number;
  logger?: Logger;
  /** Time source of timeouts, fences, probes and backoff (default: the system clock). */
  clock?: Clock;
}

export interface RequestOptions {
  /** Payload sent with SD_FLAG_CMD_WRITE (data_length is set from it unless given). */
  payload?: Buffer | null;
  /** Read the reply payload straight into this buffer when it fits (SheepConnection.send). */
  into?: Buffer;
  timeoutMs?: number;
  /** Override the opcode-derived idempotency. */
  idempotent?: boolean;
  /**
   * Write fence (the clock's now(), ms): the request is neither sent nor re-sent after this instant, and a reply not
   * received by then is not waited for. A write that timed out on one path can then never be re-sent later,
   * over a newer write made through another path (docs/fencing.md).
   */
  notAfter?: number;
  /** When the caller accepted the write (default: when it reached the transport); the stall fence compares it. */
  issuedAt?: number;
}

/** Opcodes that must never be re-sent blindly after a lost reply. */
const NON_IDEMPOTENT = new Set<number>([
  C.SD_OP_LOCK_VDI,
  C.SD_OP_NEW_VDI,
  C.SD_OP_DEL_VDI,
  C.SD_OP_MAKE_FS,
  C.SD_OP_SHUTDOWN,
  C.SD_OP_GET_VDI_ATTR,
  C.SD_OP_KILL_NODE,
  C.SD_OP_FORCE_RECOVER,
  C.SD_OP_ALTER_CLUSTER_COPY,
  C.SD_OP_ALTER_VDI_COPY,
  // A lost reply leaves it unknown whether the compare matched; a re-send would compare against its own data.
  C.SF_OP_CMP_WRITE,
]);

/** True if re-sending the request after a lost reply cannot change the outcome. */
export function isIdempotent(opcode: number): boolean {
  return !NON_IDEMPOTENT.has(opcode);
}

export interface TransportEvents {
  disconnect: [{ gateway: string; error: Error }];
  reconnect: [{ gateway: string }];
  failover: [{ from: string; to: string }];
  /** A gateway stopped answering (probe or request timeout); `ms` = how long the oldest request had waited. */
  suspect: [{ gateway: string; reason: string; ms: number }];
  /** A suspect gateway answered a probe again. */
  alive: [{ gateway: string }];
}

/** Probes run at most this often. */
const PROBE_TICK_MS = 250;


export class SheepTransport extends EventEmitter<TransportEvents> {
  readonly gateways: readonly GatewayAddr[];
  private gwIndex = 0;
  private readonly poolSize: number;
  private readonly maxInFlight: number;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  private readonly reconnectTimeoutMs: number;
  private readonly initialConnectTimeoutMs: number;
  private readonly maxResends: number;
  private readonly hello: Hello | undefined;
  private readonly log: Logger;
  private conns: SheepConnection[] = [];
  private connecting: Promise<SheepConnection> | null = null;
  private growing = false;
  private everConnected = false;
  private outage = false;
  private closed = false;
  private active = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly probeAfterMs: number;
  private readonly probeTimeoutMs: number;
  /** Requests on the wire: their gateway and when they were sent. */
  private readonly sent = new Set<{ gw: GatewayAddr; at: number }>();
  /** Gateways that stopped answering → since when. */
  private readonly suspects = new Map<GatewayAddr, number>();
  private readonly probing = new Set<GatewayAddr>();
  /** When each suspect gateway was last probed (suspects are re-probed at most once a second). */
  private readonly lastProbe = new Map<GatewayAddr, number>();
  private probeTimer: ClockTimer | null = null;
  /**
   * Write fence across requests (docs/fencing.md §4): set when a request with a deadline (`notAfter`) passed it
   * unanswered. An initiator that timed out one write fails the whole path over and re-issues every write it had
   * sent there, including younger ones whose own deadlines have not passed: so while stalled, and afterwards for
   * every request that entered before the link answered again (`stallBefore`), fenced requests are not sent.
   */
  private stalled = false;
  private stallBefore = 0;
  private readonly stallAfterMs: number;
  /** The time source of every timeout and fence of this transport (write fences are instants on it). */
  readonly clock: Clock;

  constructor(opts: TransportOptions) {
    super();
    if (opts.gateways.length === 0) throw new RangeError('at least one gateway is needed');
    this.gateways = opts.gateways;
    this.poolSize = Math.max(1, opts.poolSize ?? 2);
    this.maxInFlight = Math.max(1, opts.maxInFlight ?? 64);
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 5_000;
    this.reconnectTimeoutMs = opts.reconnectTimeoutMs ?? 30_000;
    this.initialConnectTimeoutMs = opts.initialConnectTimeoutMs ?? this.reconnectTimeoutMs;
    this.maxResends = opts.maxResends ?? 5;
    this.hello = opts.hello;
    this.probeAfterMs = opts.probeAfterMs ?? (opts.gateways.length > 1 ? 1500 : 0);
    this.stallAfterMs = Math.max(0, opts.stallAfterMs ?? 0);
    this.probeTimeoutMs = opts.probeTimeoutMs ?? 2000;
    this.log = opts.logger ?? componentLogger('sheep-client');
    this.clock = opts.clock ?? systemClock;
  }

  /** Gateways currently suspected dead. */
  get suspectGateways(): string[] {
    return [...this.suspects.keys()].map(gatewayText);
  }

  /** The gateway currently in use. */
  get gateway(): GatewayAddr {
    return this.gateways[this.gwIndex] ?? (this.gateways[0] as GatewayAddr);
  }

  /** Requests currently in flight (sent, awaiting a reply). */
  get inFlight(): number {
    return this.active;
  }

  /** Connect now (otherwise the first request connects); rejects with ECONNECT if no gateway answers. */
  async connect(): Promise<void> {
    await this.acquire();
  }

  /**
   * Send a request and resolve with the reply, whatever its result code (callers check `rsp.result`).
   * Transport failures reject with SheepNetError.
   */
  async request(req: SdRequest, opts: RequestOptions = {}): Promise<SdReply> {
    const payload = opts.payload ?? null;
    let r = req;
    if (payload !== null && (r.flags & C.SD_FLAG_CMD_WRITE) === 0) r = { ...r, flags: r.flags | C.SD_FLAG_CMD_WRITE };
    if (payload !== null && r.dataLength === 0) r = { ...r, dataLength: payload.length };
    const idempotent = opts.idempotent ?? isIdempotent(req.opcode);
    const timeoutMs = opts.timeoutMs ?? this.requestTimeoutMs;
    const enteredAt = Math.min(this.clock.now(), opts.issuedAt ?? this.clock.now());
    // Wherever it waits (in-flight limit, no usable gateway, on the wire), a fenced request still unanswered at
    // its deadline stalls the fence for every fenced request that entered before the sheep answers again.
    const stallIn = Math.min(
      opts.notAfter === undefined ? Infinity : Math.max(0, opts.notAfter - enteredAt),
      this.stallAfterMs > 0 ? this.stallAfterMs : Infinity,
    );
    const fenceTimer = Number.isFinite(stallIn) ? this.clock.setTimeout(() => this.markStalled(gatewayText(this.gateway)), stallIn) : undefined;
    await this.enter();
    let freeResends = 2 * this.gateways.length;
    try {
      for (let attempt = 0; ; attempt++) {
        const conn = await this.acquire();
        const left = opts.notAfter === undefined ? undefined : opts.notAfter - this.clock.now();
        if (left !== undefined && left <= 0) {
          this.markStalled(conn.label);
          throw new SheepNetError('ETIMEDOUT', conn.label, `${opName(req.opcode)} not sent: past its write fence`);
        }
        if (left !== undefined && (this.stalled || enteredAt < this.stallBefore)) {
          throw new SheepNetError('ETIMEDOUT', conn.label, `${opName(req.opcode)} not sent: an earlier write of this client missed its write fence`);
        }
        const mark = { gw: conn.gateway, at: this.clock.now() };
        this.sent.add(mark);
        this.startProbing();
        try {
          const reply = await conn.send(r, payload, left === undefined ? timeoutMs : timeoutMs > 0 ? Math.min(timeoutMs, left) : left, opts.into);
          this.clearStall(conn.label);
          return reply;
        } catch (err) {
          if (!(err instanceof SheepNetError) || this.closed) throw err;
          if (err.code === 'ETIMEDOUT' && opts.notAfter !== undefined && this.clock.now() >= opts.notAfter) this.markStalled(conn.label);
          // A request that timed out (not one cut short by its own write fence) condemns its gateway.
          if (err.code === 'ETIMEDOUT' && (opts.notAfter === undefined || this.clock.now() < opts.notAfter)) {
            this.suspect(conn.gateway, 'request timed out', this.clock.now() - mark.at);
          }
          if (!idempotent) {
            throw new SheepNetError(
              'EUNCERTAIN',
              conn.label,
              `${opName(req.opcode)} was sent to ${conn.label} but the reply was lost (${err.message}); its effect is unknown`,
              { cause: err },
            );
          }
          // Cut short because its gateway became suspect: the re-send on the next gateway is not a failed attempt.
          if (err.code === 'ECLOSED' && this.suspects.has(mark.gw) && freeResends-- > 0) attempt--;
          else if (attempt >= this.maxResends) throw err;
          this.log.debug({ op: opName(req.opcode), gateway: conn.label, attempt, err: err.message }, 'client.resend');
        } finally {
          this.sent.delete(mark);
        }
      }
    } finally {
      this.clock.clear(fenceTimer);
      this.leave();
    }
  }

  /** A fenced request missed its deadline: hold every fenced request that entered until the link answers again. */
  private markStalled(gateway: string): void {
    if (this.stalled) return;
    this.stalled = true;
    this.log.warn({ gateway }, 'client.write_fence_stalled');
  }

  /** A sheep answered again: fenced requests that entered before now stay unsent; new ones go out. */
  private clearStall(gateway: string): void {
    if (!this.stalled) return;
    this.stalled = false;
    this.stallBefore = this.clock.now();
    this.log.warn({ gateway }, 'client.write_fence_cleared');
  }

  /** Run probes while requests are on the wire (if probing is on) or a gateway is suspect. */
  private startProbing(): void {
    if (this.probeTimer !== null || (this.probeAfterMs <= 0 && this.suspects.size === 0) || this.closed) return;
    this.probeTimer = this.clock.setInterval(() => this.probeTick(), PROBE_TICK_MS);
  }

  private probeTick(): void {
    if (this.closed || (this.sent.size === 0 && this.suspects.size === 0)) {
      if (this.probeTimer !== null) this.clock.clear(this.probeTimer);
      this.probeTimer = null;
      return;
    }
    const now = this.clock.now();
    const waited = new Map<GatewayAddr, number>();
    for (const m of this.sent) waited.set(m.gw, Math.max(waited.get(m.gw) ?? 0, now - m.at));
    if (this.probeAfterMs > 0) for (const [gw, ms] of waited) if (ms >= this.probeAfterMs && !this.suspects.has(gw)) this.probe(gw, ms);
    for (const gw of this.suspects.keys()) {
      if (now - (this.lastProbe.get(gw) ?? 0) < 1000) continue;
      this.lastProbe.set(gw, now);
      this.probe(gw, 0);
    }
  }

  /** One probe of `gw` on a fresh connection: GET_NODE_LIST, answered from memory by any live sheep. */
  private probe(gw: GatewayAddr, waitedMs: number): void {
    if (this.probing.has(gw)) return;
    this.probing.add(gw);
    const t0 = this.clock.now();
    const ask = async (): Promise<void> => {
      const c = await SheepConnection.connect(gw, { connectTimeoutMs: this.probeTimeoutMs, clock: this.clock });
      try {
        await c.send(makeRequest(C.SD_OP_GET_NODE_LIST, emptyReqArgs('obj'), { dataLength: C.SD_NODE_SIZE }), null, this.probeTimeoutMs);
      } finally {
        c.close();
      }
    };
    ask()
      .then(() => {
        this.clearStall(gatewayText(gw));
        if (this.suspects.delete(gw)) {
          this.log.info({ gateway: gatewayText(gw) }, 'client.gateway_alive');
          this.emit('alive', { gateway: gatewayText(gw) });
        }
      })
      .catch((err: unknown) => {
        if (!this.closed) this.suspect(gw, `probe failed: ${err instanceof Error ? err.message : String(err)}`, waitedMs + (this.clock.now() - t0));
      })
      .finally(() => this.probing.delete(gw));
  }

  /**
   * `gw` stopped answering: remember it, and if it is the gateway in use, close its connections (idempotent
   * requests in flight are re-sent, on the next gateway when there is one).
   */
  private suspect(gw: GatewayAddr, reason: string, ms: number): void {
    if (this.closed || this.suspects.has(gw)) return;
    this.suspects.set(gw, this.clock.now());
    this.log.warn({ gateway: gatewayText(gw), reason, ms }, 'client.gateway_suspect');
    this.emit('suspect', { gateway: gatewayText(gw), reason, ms });
    this.startProbing();
    if (gw !== this.gateway) return;
    // The next connect skips suspect gateways (and announces the failover).
    for (const c of this.conns.splice(0)) c.close();
  }

  /** Close every connection; pending and future requests fail with ECLOSED. */
  close(): void {
    this.closed = true;
    if (this.probeTimer !== null) this.clock.clear(this.probeTimer);
    this.probeTimer = null;
    for (const c of this.conns.splice(0)) c.close();
    for (const w of this.waiters.splice(0)) w();
  }

  private async enter(): Promise<void> {
    while (this.active >= this.maxInFlight) {
      if (this.closed) break;
      await new Promise<void>((r) => this.waiters.push(r));
    }
    if (this.closed) throw new SheepNetError('ECLOSED', gatewayText(this.gateway), 'sheep client is closed');
    this.active++;
  }

  private leave(): void {
    this.active--;
    this.waiters.shift()?.();
  }

  /** A live connection: the least loaded one, growing the pool in the background when all are busy. */
  private async acquire(): Promise<SheepConnection> {
    if (this.closed) throw new SheepNetError('ECLOSED', gatewayText(this.gateway), 'sheep client is closed');
    // A one-pass client (reconnectTimeoutMs 0, e.g. sheep-to-sheep) fails fast while its gateway is suspect.
    if (this.reconnectTimeoutMs === 0 && this.suspects.size >= this.gateways.length) {
      const gw = gatewayText(this.gateway);
      throw new SheepNetError('ECONNECT', gw, `cannot connect to ${gw}: it does not answer (suspect; probing)`);
    }
    const live = this.conns.filter((c) => !c.closed);
    if (live.length > 0) {
      let best = live[0] as SheepConnection;
      for (const c of live) if (c.inFlight < best.inFlight) best = c;
      if (best.inFlight > 0 && live.length < this.poolSize) this.grow();
      return best;
    }
    this.connecting ??= this.connectWithFailover().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private grow(): void {
    if (this.growing || this.connecting !== null) return;
    this.growing = true;
    const gw = this.gateway;
    SheepConnection.connect(gw, this.connectOptions())
      .then((c) => {
        if (this.closed || gw !== this.gateway) c.close();
        else this.adopt(c);
      })
      .catch(() => undefined)
      .finally(() => {
        this.growing = false;
      });
  }

  private connectOptions(): ConnectOptions {
    return { connectTimeoutMs: this.connectTimeoutMs, clock: this.clock, ...(this.hello ? { hello: this.hello } : {}) };
  }

  private adopt(c: SheepConnection): void {
    this.conns.push(c);
    c.onClose((err) => {
      this.conns = this.conns.filter((x) => x !== c);
      if (this.closed || err.code === 'ECLOSED') return;
      if (!this.conns.some((x) => !x.closed) && !this.outage) {
        this.outage = true;
        this.log.warn({ gateway: c.label, err: err.message }, 'client.disconnect');
        this.emit('disconnect', { gateway: c.label, error: err });
      }
    });
  }

  /** Connect to the current gateway, else the next ones in order, until reconnectTimeoutMs has passed. */
  private async connectWithFailover(): Promise<SheepConnection> {
    const deadline = this.clock.now() + (this.everConnected ? this.reconnectTimeoutMs : this.initialConnectTimeoutMs);
    let lastErr: SheepNetError | null = null;
    let backoffMs = 50;
    for (;;) {
      for (let k = 0; k < this.gateways.length; k++) {
        if (this.closed) throw new SheepNetError('ECLOSED', gatewayText(this.gateway), 'sheep client is closed');
        const idx = (this.gwIndex + k) % this.gateways.length;
        const gw = this.gateways[idx] as GatewayAddr;
        if (this.suspects.has(gw) && this.suspects.size < this.gateways.length) continue;
        try {
          const c = await SheepConnection.connect(gw, this.connectOptions());
          if (this.closed) {
            c.close();
            throw new SheepNetError('ECLOSED', gatewayText(gw), 'sheep client is closed');
          }
          if (idx !== this.gwIndex) {
            const from = gatewayText(this.gateway);
            this.gwIndex = idx;
            for (const old of this.conns.splice(0)) old.close();
            this.log.warn({ from, to: gatewayText(gw) }, 'client.failover');
            this.emit('failover', { from, to: gatewayText(gw) });
          }
          this.adopt(c);
          if (this.everConnected && this.outage) {
            this.log.info({ gateway: c.label }, 'client.reconnect');
            this.emit('reconnect', { gateway: c.label });
          }
          this.outage = false;
          this.everConnected = true;
          return c;
        } catch (err) {
          if (err instanceof SheepNetError && err.code === 'ECLOSED') throw err;
          lastErr = err instanceof SheepNetError ? err : new SheepNetError('ECONNECT', gatewayText(gw), String(err));
        }
      }
      if (this.clock.now() + backoffMs > deadline) break;
      await this.clock.sleep(backoffMs);
      backoffMs = Math.min(backoffMs * 2, 1000);
    }
    throw lastErr ?? new SheepNetError('ECONNECT', gatewayText(this.gateway), 'no gateway');
  }
}
