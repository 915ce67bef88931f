// The `local` cluster driver: sheep processes on one host share a cluster directory and agree on one total
// order of events (joins, leaves, broadcast messages) through an append-only log file in it.
//
// - Order: every record is appended with one O_APPEND write() and fdatasync'd; every member reads the same
//   file from the start, so all members deliver the same events in the same order (state-machine
//   replication: apply-time determinism replaces sheepdog's "block" ops).
// - Membership: a `join` record adds an incarnation (a fresh id per process start), a `leave` record removes
//   it. Delivered events carry the membership after the event.
// - Failure detection: members touch a heartbeat file every `heartbeatMs`; every member checks the others
//   every `heartbeatMs`. A member whose process is gone (kill(pid, 0) fails: a SIGKILLed sheep is noticed at
//   the next check) or whose heartbeat is older than `failTimeoutMs` (SIGSTOP, hang) is removed by a `leave`
//   record that any live member may append (duplicates are ignored when applied). A member that reads its own
//   removal is expelled: it gets an `expelled` event and must rejoin as a new incarnation.
// Records: 16-byte header {magic u32, length u32, crc32 u32, reserved u32} + JSON body, little-endian.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../obs/log.js';
import { componentLogger } from '../../obs/log.js';

const REC_MAGIC = 0x5346434c; // 'SFCL'
const REC_HEADER = 16;
const MAX_RECORD = 4 * 1024 * 1024;

/** One process incarnation in the cluster. */
export interface ClusterMember {
  /** Unique per process start. */
  id: string;
  /** Stable node name (e.g. "127.0.0.1:7000"): the same across restarts of one sheep. */
  node: string;
  pid: number;
  /** Opaque node information (address, zone, space ...) as the sheep layer encodes it. */
  info: unknown;
  /** Log sequence number of the join record. */
  joinedAt: number;
  /** Wall-clock ms when the join was appended. */
  joinedMs: number;
}

/** `historical` events were appended before our own join: they are replayed history, not news. */
export type ClusterEvent =
  | { type: 'join'; seq: number; historical: boolean; member: ClusterMember; members: ClusterMember[] }
  | {
      type: 'leave';
      seq: number;
      historical: boolean;
      member: ClusterMember;
      members: ClusterMember[];
      reason: 'graceful' | 'failed';
    }
  | { type: 'message'; seq: number; historical: boolean; from: string; payload: unknown }
  | { type: 'expelled'; seq: number; historical: false };

type Record =
  | { t: 'join'; id: string; node: string; pid: number; info: unknown; ts: number }
  | { t: 'leave'; id: string; reason: 'graceful' | 'failed'; by: string }
  | { t: 'msg'; from: string; n: number; payload: unknown };

export interface LocalDriverOptions {
  dir: string;
  heartbeatMs?: number;
  failTimeoutMs?: number;
  log?: Logger;
}

/** The cluster driver contract the sheep uses; `local` implements it for one host. */
export interface ClusterDriver {
  readonly name: string;
  /** Join as a new incarnation; resolves once our own join has been delivered (all earlier events first). */
  join(node: string, info: unknown): Promise<ClusterMember>;
  /** Append a message to the total order; resolves with its seq once it has been delivered locally. */
  broadcast(payload: unknown): Promise<number>;
  /** Leave gracefully. */
  leave(): Promise<void>;
  /** After `expelled`: join again as a new incarnation with the same node name and info. */
  rejoin?(): Promise<ClusterMember>;
  /** Current membership as of the last delivered event. */
  members(): ClusterMember[];
  /** Events in total order; the driver awaits each handler before delivering the next. */
  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void;
  /**
   * Deliver every event appended before this call (a read barrier): after it resolves, this member has
   * applied everything any member had acknowledged when the call began. Optional for single-node drivers.
   */
  sync?(): Promise<void>;
  close(): Promise<void>;
}

export class LocalClusterDriver extends EventEmitter implements ClusterDriver {
  readonly name = 'local';
  private readonly dir: string;
  private readonly logPath: string;
  private readonly hbDir: string;
  private readonly heartbeatMs: number;
  private readonly failTimeoutMs: number;
  private readonly log: Logger;
  private handler: (e: ClusterEvent) => void | Promise<void> = () => undefined;
  private readFd: fsp.FileHandle | null = null;
  private readOffset = 0;
  /** Log bytes whose records have been applied (handlers awaited). */
  private appliedOffset = 0;
  private seq = 0;
  private pendingBytes = Buffer.alloc(0);
  private current = new Map<string, ClusterMember>();
  private self: ClusterMember | null = null;
  private selfId = randomUUID();
  /** Every incarnation id this process used (a message sent before an expulsion still reaches its waiter). */
  private readonly ownIds = new Set<string>([this.selfId]);
  private msgCounter = 0;
  private waiters = new Map<number, (seq: number) => void>();
  private joinWaiter: ((m: ClusterMember) => void) | null = null;
  private timers: NodeJS.Timeout[] = [];
  private watcher: fs.FSWatcher | null = null;
  private pumping: Promise<void> | null = null;
  private pumpAgain = false;
  private closed = false;
  private expelled = false;
  /** Appends from this member are serialized so its messages keep their send order in the log. */
  private appendChain: Promise<void> = Promise.resolve();

  constructor(opts: LocalDriverOptions) {
    super();
    this.dir = opts.dir;
    this.logPath = path.join(opts.dir, 'cluster.log');
    this.hbDir = path.join(opts.dir, 'heartbeat');
    this.heartbeatMs = opts.heartbeatMs ?? 200;
    this.failTimeoutMs = opts.failTimeoutMs ?? 1500;
    this.log = opts.log ?? componentLogger('cluster', { driver: 'local' });
  }

  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void {
    this.handler = handler;
  }

  members(): ClusterMember[] {
    return [...this.current.values()];
  }

  /** Our incarnation once joined. */
  get member(): ClusterMember | null {
    return this.self;
  }

  async join(node: string, info: unknown): Promise<ClusterMember> {
    await fsp.mkdir(this.hbDir, { recursive: true });
    await fsp.appendFile(this.logPath, Buffer.alloc(0));
    this.readFd = await fsp.open(this.logPath, 'r');
    await this.touchHeartbeat();
    this.timers.push(setInterval(() => void this.touchHeartbeat(), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.checkLiveness(), this.heartbeatMs));
    this.timers.push(setInterval(() => this.kick(), Math.max(20, this.heartbeatMs / 4)));
    try {
      this.watcher = fs.watch(this.logPath, () => this.kick());
    } catch {
      this.watcher = null; // polling above still delivers
    }
    const joined = new Promise<ClusterMember>((resolve) => (this.joinWaiter = resolve));
    await this.append({ t: 'join', id: this.selfId, node, pid: process.pid, info, ts: Date.now() });
    this.kick();
    return joined;
  }

  async broadcast(payload: unknown): Promise<number> {
    if (!this.self || this.expelled) throw new Error('not a cluster member');
    const n = ++this.msgCounter;
    const delivered = new Promise<number>((resolve) => this.waiters.set(n, resolve));
    await this.append({ t: 'msg', from: this.selfId, n, payload });
    this.kick();
    return delivered;
  }

  async rejoin(): Promise<ClusterMember> {
    const old = this.self;
    if (!old || !this.expelled || this.closed) throw new Error('rejoin is only for an expelled member');
    this.selfId = randomUUID();
    this.ownIds.add(this.selfId);
    this.expelled = false;
    const joined = new Promise<ClusterMember>((resolve) => (this.joinWaiter = resolve));
    await this.touchHeartbeat();
    await this.append({ t: 'join', id: this.selfId, node: old.node, pid: process.pid, info: old.info, ts: Date.now() });
    this.log.warn({ member: this.selfId }, 'cluster_rejoin');
    this.kick();
    return joined;
  }

  async sync(): Promise<void> {
    if (!this.readFd || this.closed) return;
    const { size } = await fsp.stat(this.logPath);
    const deadline = Date.now() + 10_000;
    while (this.appliedOffset < size && !this.closed) {
      if (Date.now() > deadline) throw new Error(`cluster log sync stuck at ${this.appliedOffset} of ${size} bytes`);
      this.kick();
      await (this.pumping ?? new Promise((r) => setTimeout(r, 1)));
    }
  }

  async leave(): Promise<void> {
    if (!this.self || this.expelled) return;
    await this.append({ t: 'leave', id: this.selfId, reason: 'graceful', by: this.selfId });
    this.kick();
    await this.pumping;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.watcher?.close();
    await this.pumping?.catch(() => undefined);
    await this.readFd?.close().catch(() => undefined);
    this.readFd = null;
    await fsp.rm(path.join(this.hbDir, this.selfId), { force: true }).catch(() => undefined);
  }

  /** Append one record (after every earlier append of this member) with a single write, durably. */
  private append(rec: Record): Promise<void> {
    const next = this.appendChain.then(() => this.appendNow(rec));
    this.appendChain = next.catch(() => undefined);
    return next;
  }

  private async appendNow(rec: Record): Promise<void> {
    const body = Buffer.from(JSON.stringify(rec), 'utf8');
    if (body.length > MAX_RECORD) throw new Error(`cluster record of ${body.length} bytes exceeds ${MAX_RECORD}`);
    const buf = Buffer.alloc(REC_HEADER + body.length);
    buf.writeUInt32LE(REC_MAGIC, 0);
    buf.writeUInt32LE(body.length, 4);
    buf.writeUInt32LE(crc32(body), 8);
    body.copy(buf, REC_HEADER);
    const fh = await fsp.open(this.logPath, 'a');
    try {
      await fh.write(buf, 0, buf.length);
      await fh.datasync();
    } finally {
      await fh.close();
    }
  }

  /** Schedule a read of new log records (coalesced). */
  private kick(): void {
    if (this.closed || !this.readFd) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump()
      .catch((err: unknown) => this.log.error({ err }, 'cluster_log_read_failed'))
      .finally(() => {
        this.pumping = null;
        if (this.pumpAgain) {
          this.pumpAgain = false;
          this.kick();
        }
      });
  }

  private async pump(): Promise<void> {
    const fd = this.readFd;
    if (!fd) return;
    const chunk = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const { bytesRead } = await fd.read(chunk, 0, chunk.length, this.readOffset);
      if (bytesRead === 0) break;
      this.readOffset += bytesRead;
      this.pendingBytes = Buffer.concat([this.pendingBytes, chunk.subarray(0, bytesRead)]);
      while (this.pendingBytes.length >= REC_HEADER) {
        const magic = this.pendingBytes.readUInt32LE(0);
        const len = this.pendingBytes.readUInt32LE(4);
        if (magic !== REC_MAGIC || len > MAX_RECORD) {
          throw new Error(`cluster log ${this.logPath} is corrupt at offset ${this.readOffset - this.pendingBytes.length}`);
        }
        if (this.pendingBytes.length < REC_HEADER + len) break;
        const body = this.pendingBytes.subarray(REC_HEADER, REC_HEADER + len);
        if (crc32(body) !== this.pendingBytes.readUInt32LE(8)) throw new Error('cluster log record checksum mismatch');
        const rec = JSON.parse(body.toString('utf8')) as Record;
        this.pendingBytes = this.pendingBytes.subarray(REC_HEADER + len);
        await this.apply(rec, this.seq++);
        this.appliedOffset += REC_HEADER + len;
        if (this.closed) return;
      }
    }
  }

  /** Apply one record in log order and deliver the resulting event. */
  private async apply(rec: Record, seq: number): Promise<void> {
    const historical = this.self === null;
    if (rec.t === 'join') {
      const m: ClusterMember = {
        id: rec.id,
        node: rec.node,
        pid: rec.pid,
        info: rec.info,
        joinedAt: seq,
        joinedMs: rec.ts,
      };
      this.current.set(m.id, m);
      if (m.id === this.selfId) this.self = m;
      // Members seen before our own join are delivered too: the sheep layer replays history.
      await this.handler({ type: 'join', seq, historical: historical && m.id !== this.selfId, member: m, members: this.members() });
      if (m.id === this.selfId && this.joinWaiter) {
        this.joinWaiter(m);
        this.joinWaiter = null;
      }
      return;
    }
    if (rec.t === 'leave') {
      const m = this.current.get(rec.id);
      if (!m) return; // duplicate or unknown: ignored by every member alike
      this.current.delete(rec.id);
      if (rec.id === this.selfId && rec.reason === 'failed' && !this.expelled) {
        this.expelled = true;
        this.log.warn({ seq }, 'cluster_expelled');
        await this.handler({ type: 'expelled', seq, historical: false });
        return;
      }
      await this.handler({ type: 'leave', seq, historical, member: m, members: this.members(), reason: rec.reason });
      return;
    }
    await this.handler({ type: 'message', seq, historical, from: rec.from, payload: rec.payload });
    if (this.ownIds.has(rec.from)) {
      const w = this.waiters.get(rec.n);
      if (w) {
        this.waiters.delete(rec.n);
        w(seq);
      }
    }
  }

  private async touchHeartbeat(): Promise<void> {
    if (this.closed || this.expelled) return;
    const p = path.join(this.hbDir, this.selfId);
    const now = new Date();
    try {
      await fsp.utimes(p, now, now);
    } catch {
      await fsp.writeFile(p, String(process.pid)).catch(() => undefined);
    }
  }

  /** Remove members whose process is gone or whose heartbeat is stale. */
  private async checkLiveness(): Promise<void> {
    if (this.closed || !this.self || this.expelled) return;
    const now = Date.now();
    for (const m of this.current.values()) {
      if (m.id === this.selfId) continue;
      let dead = false;
      try {
        process.kill(m.pid, 0);
      } catch (err) {
        dead = (err as NodeJS.ErrnoException).code === 'ESRCH';
      }
      if (!dead) {
        try {
          const st = await fsp.stat(path.join(this.hbDir, m.id));
          dead = now - st.mtimeMs > this.failTimeoutMs;
        } catch {
          // No heartbeat file: a fresh member gets the timeout to create one; an old one is gone.
          dead = now - m.joinedMs > this.failTimeoutMs;
        }
      }
      if (dead && this.current.has(m.id)) {
        this.log.warn({ node: m.node, member: m.id }, 'cluster_member_failed');
        await this.append({ t: 'leave', id: m.id, reason: 'failed', by: this.selfId });
        await fsp.rm(path.join(this.hbDir, m.id), { force: true }).catch(() => undefined);
        this.kick();
      }
    }
  }
}
