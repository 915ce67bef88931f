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
// - Compaction: the log is a chain of segments (`cluster.log`, `cluster.log.1`, ...). When the current segment
//   holds `compactEvery` records, the oldest member creates the next segment and appends a `seal` record to the
//   current one; everybody moves to the next segment at the first seal, and records after it are void (their
//   writer notices and appends them again). Passing the seal, the compactor writes `snapshot.json` — the applied
//   state (ClusterSnapshotter), membership and position — and removes the segments before the previous one. A
//   joiner loads the snapshot and reads on from its segment.
// Records: 16-byte header {magic u32, length u32, crc32 u32, reserved u32} + JSON body, little-endian.
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import type { Logger } from '../../obs/log.js';
import { componentLogger } from '../../obs/log.js';
import { deliverMessage, GroupCommit, oldestMember } from './delivery.js';
import type { ClusterDriver, ClusterEvent, ClusterMember, ClusterSnapshotter } from './driver.js';

export type { ClusterDriver, ClusterEvent, ClusterMember, ClusterSnapshotter } from './driver.js';

const REC_MAGIC = 0x5346434c; // 'SFCL'
const REC_HEADER = 16;
const MAX_RECORD = 4 * 1024 * 1024;

type Record =
  | { t: 'join'; id: string; node: string; pid: number; info: unknown; ts: number }
  | { t: 'leave'; id: string; reason: 'graceful' | 'failed'; by: string }
  | { t: 'msg'; from: string; n: number; payload: unknown }
  | { t: 'seal'; by: string };

export interface LocalDriverOptions {
  dir: string;
  heartbeatMs?: number;
  failTimeoutMs?: number;
  /** Records per log segment before a snapshot (compaction). */
  compactEvery?: number;
  log?: Logger;
}


/** What `snapshot.json` holds. */
interface LocalSnapshot {
  v: 1;
  /** Segment to read from, and the seq of its first record. */
  segment: number;
  seq: number;
  members: ClusterMember[];
  state: unknown;
}

export class LocalClusterDriver extends EventEmitter implements ClusterDriver {
  readonly name = 'local';
  private readonly dir: string;
  private readonly snapPath: string;
  private readonly hbDir: string;
  private readonly heartbeatMs: number;
  private readonly failTimeoutMs: number;
  private readonly log: Logger;
  private handler: (e: ClusterEvent) => void | Promise<void> = () => undefined;
  private readFd: fsp.FileHandle | null = null;
  private readOffset = 0;
  /** Segment being read, and bytes of it whose records have been applied (handlers awaited). */
  private readSeg = 0;
  private appliedOffset = 0;
  /** Records read in the current segment. */
  private segRecords = 0;
  /** Newest segment known to exist (appends go there). */
  private writeSeg = 0;
  /** Segment whose seal this member appended: it writes the snapshot when it passes that seal. */
  private compacting: number | null = null;
  private readonly compactEvery: number;
  private snapshotter: ClusterSnapshotter | null = null;
  /** When this member first found itself at the end of a segment that has a successor but no seal. */
  private unsealedSince: number | null = null;
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
  private readonly appends = new GroupCommit<Buffer>((bufs) => this.appendNow(bufs), 1024, 4 * 1024 * 1024, (b) => b.length);

  constructor(opts: LocalDriverOptions) {
    super();
    this.dir = opts.dir;
    this.snapPath = path.join(opts.dir, 'snapshot.json');
    // Off unless asked for: compaction of the shared-directory log still stalls under load (docs/cluster.md).
    this.compactEvery = opts.compactEvery ?? 0;
    if (!Number.isInteger(this.compactEvery) || this.compactEvery < 0) throw new Error(`bad compaction interval ${this.compactEvery}`);
    this.hbDir = path.join(opts.dir, 'heartbeat');
    this.heartbeatMs = opts.heartbeatMs ?? 200;
    this.failTimeoutMs = opts.failTimeoutMs ?? 1500;
    this.log = opts.log ?? componentLogger('cluster', { driver: 'local' });
  }

  onEvent(handler: (e: ClusterEvent) => void | Promise<void>): void {
    this.handler = handler;
  }

  setSnapshotter(s: ClusterSnapshotter): void {
    this.snapshotter = s;
  }

  /** Path of log segment `k`. */
  segPath(k: number): string {
    return path.join(this.dir, k === 0 ? 'cluster.log' : `cluster.log.${k}`);
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
    await this.openFromSnapshot();
    await this.touchHeartbeat();
    this.timers.push(setInterval(() => void this.touchHeartbeat(), this.heartbeatMs));
    this.timers.push(setInterval(() => void this.checkLiveness(), this.heartbeatMs));
    this.timers.push(setInterval(() => this.kick(), Math.max(20, this.heartbeatMs / 4)));
    try {
      this.watcher = fs.watch(this.dir, () => this.kick());
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
    const last = await this.newestSegment();
    const { size } = await fsp.stat(this.segPath(last));
    const deadline = Date.now() + 10_000;
    while ((this.readSeg < last || (this.readSeg === last && this.appliedOffset < size)) && !this.closed) {
      if (Date.now() > deadline) throw new Error(`cluster log sync stuck at segment ${this.readSeg} byte ${this.appliedOffset} (want ${last}:${size})`);
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

  /** Start reading where the snapshot (if any) says, delivering it first. */
  private async openFromSnapshot(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let snap: LocalSnapshot | null = null;
      try {
        snap = JSON.parse(await fsp.readFile(this.snapPath, 'utf8')) as LocalSnapshot;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new Error(`cluster snapshot ${this.snapPath}: ${(err as Error).message}`, { cause: err });
      }
      if (snap && (snap.v !== 1 || !Number.isInteger(snap.segment) || !Number.isInteger(snap.seq))) {
        throw new Error(`unknown cluster snapshot format in ${this.snapPath}`);
      }
      const seg = snap?.segment ?? 0;
      if (seg === 0) await fsp.appendFile(this.segPath(0), Buffer.alloc(0));
      try {
        this.readFd = await fsp.open(this.segPath(seg), 'r');
      } catch (err) {
        // A newer snapshot replaced this one and its segments went meanwhile: read the newer one.
        if ((err as NodeJS.ErrnoException).code === 'ENOENT' && attempt < 5) continue;
        throw err;
      }
      this.readSeg = seg;
      this.writeSeg = seg;
      if (snap) {
        this.seq = snap.seq;
        for (const m of snap.members) this.current.set(m.id, m);
        await this.handler({ type: 'snapshot', seq: snap.seq, historical: true, state: snap.state, members: this.members() });
        this.log.info({ segment: seg, seq: snap.seq, members: snap.members.length }, 'cluster_snapshot_loaded');
      }
      return;
    }
  }

  /** The newest existing segment (appends go there). */
  private async newestSegment(): Promise<number> {
    while (await exists(this.segPath(this.writeSeg + 1))) this.writeSeg++;
    return this.writeSeg;
  }

  /** Append one record (after every earlier append of this member), durably; concurrent ones share a write. */
  private append(rec: Record): Promise<void> {
    return this.appends.add(encodeRecord(rec));
  }

  /** Append records with a single write (atomic against other appenders) and fdatasync. */
  private async appendNow(recs: Buffer[], segment?: number): Promise<void> {
    const buf = recs.length === 1 ? recs[0]! : Buffer.concat(recs);
    for (;;) {
      const k = segment ?? (await this.newestSegment());
      const fh = await fsp.open(this.segPath(k), 'a+');
      try {
        await fh.write(buf, 0, buf.length);
        await fh.datasync();
        // A seal is only appended once the next segment exists: without one, nothing can precede our record.
        if (segment !== undefined || !(await exists(this.segPath(k + 1)))) return;
        if (await beforeSeal(fh, buf)) return;
      } finally {
        await fh.close();
      }
      // It landed after the seal, where every reader ignores it: append it again to the newer segment.
      this.log.debug({ segment: k }, 'cluster_record_after_seal');
    }
  }

  /** The oldest member starts a compaction once the segment it reads is full. */
  private async maybeCompact(): Promise<void> {
    if (this.compactEvery === 0 || !this.snapshotter || !this.self || this.expelled || this.compacting !== null || this.segRecords < this.compactEvery) return;
    const oldest = oldestMember(this.current.values());
    if (oldest?.id !== this.selfId) return;
    const k = this.readSeg;
    try {
      await (await fsp.open(this.segPath(k + 1), 'wx')).close();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return; // someone else is compacting it
      throw err;
    }
    this.compacting = k;
    await this.appendNow([encodeRecord({ t: 'seal', by: this.selfId })], k);
  }

  /** Passing the seal of segment `k` that we appended: the state here is that of the start of `k + 1`. */
  private async writeSnapshot(k: number): Promise<void> {
    const snapshotter = this.snapshotter;
    if (!snapshotter) return;
    const snap: LocalSnapshot = { v: 1, segment: k + 1, seq: this.seq, members: this.members(), state: snapshotter.export() };
    const body = JSON.stringify(snap);
    const tmp = `${this.snapPath}.${this.selfId}.tmp`;
    const fh = await fsp.open(tmp, 'w');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fsp.rename(tmp, this.snapPath);
    const dh = await fsp.open(this.dir, 'r');
    await dh.sync().finally(() => dh.close());
    // Keep segment k for members still reading it; earlier ones are covered by the snapshot.
    let removed = 0;
    for (let j = k - 1; j >= 0; j--) {
      try {
        await fsp.unlink(this.segPath(j));
        removed++;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') break;
        throw err;
      }
    }
    this.log.info({ segment: k + 1, seq: this.seq, bytes: body.length, removed }, 'cluster_snapshot_written');
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
    const chunk = Buffer.allocUnsafe(256 * 1024);
    for (;;) {
      const fd = this.readFd;
      if (!fd) return;
      const { bytesRead } = await fd.read(chunk, 0, chunk.length, this.readOffset);
      if (bytesRead === 0) {
        await this.maybeCompact();
        break;
      }
      this.readOffset += bytesRead;
      this.pendingBytes = Buffer.concat([this.pendingBytes, chunk.subarray(0, bytesRead)]);
      while (this.pendingBytes.length >= REC_HEADER) {
        const magic = this.pendingBytes.readUInt32LE(0);
        const len = this.pendingBytes.readUInt32LE(4);
        if (magic !== REC_MAGIC || len > MAX_RECORD) {
          throw new Error(`cluster log ${this.segPath(this.readSeg)} is corrupt at offset ${this.readOffset - this.pendingBytes.length}`);
        }
        if (this.pendingBytes.length < REC_HEADER + len) break;
        const body = this.pendingBytes.subarray(REC_HEADER, REC_HEADER + len);
        if (crc32(body) !== this.pendingBytes.readUInt32LE(8)) throw new Error('cluster log record checksum mismatch');
        const rec = JSON.parse(body.toString('utf8')) as Record;
        this.pendingBytes = this.pendingBytes.subarray(REC_HEADER + len);
        if (rec.t === 'seal') {
          await this.nextSegment();
          break;
        }
        await this.apply(rec, this.seq++);
        this.appliedOffset += REC_HEADER + len;
        this.segRecords++;
        if (this.closed) return;
      }
    }
  }

  /** The first seal of the segment being read: what follows it is void; go on with the next segment. */
  private async nextSegment(): Promise<void> {
    const k = this.readSeg;
    const next = await fsp.open(this.segPath(k + 1), 'r');
    await this.readFd?.close().catch(() => undefined);
    this.readFd = next;
    this.readSeg = k + 1;
    this.writeSeg = Math.max(this.writeSeg, k + 1);
    this.readOffset = 0;
    this.appliedOffset = 0;
    this.pendingBytes = Buffer.alloc(0);
    this.segRecords = 0;
    this.unsealedSince = null;
    if (this.compacting === k) {
      this.compacting = null;
      await this.writeSnapshot(k).catch((err: unknown) => this.log.warn({ err }, 'cluster_snapshot_failed'));
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
    if (rec.t !== 'msg') return; // seals are handled by the reader
    await deliverMessage(this.handler, rec, seq, historical, this.ownIds, this.waiters);
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
    await this.sealAbandoned(now);
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

  /**
   * A compactor that died between creating the next segment and sealing the current one would leave every
   * reader at the end of a segment whose successor takes the appends: after 5× the failure timeout, seal it.
   */
  private async sealAbandoned(now: number): Promise<void> {
    const fd = this.readFd;
    if (!fd || this.pumping || !(await exists(this.segPath(this.readSeg + 1)))) {
      this.unsealedSince = null;
      return;
    }
    const { size } = await fd.stat();
    if (size !== this.readOffset || this.pendingBytes.length > 0) {
      this.unsealedSince = null;
      return;
    }
    this.unsealedSince ??= now;
    // A live compactor seals right after creating the segment (one fdatasync); give it ample time.
    if (now - this.unsealedSince < 5 * this.failTimeoutMs) return;
    this.log.warn({ segment: this.readSeg }, 'cluster_segment_sealed_for_dead_compactor');
    this.unsealedSince = null;
    await this.appendNow([encodeRecord({ t: 'seal', by: this.selfId })], this.readSeg);
    this.kick();
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.access(p);
    return true;
  } catch {
    return false;
  }
}

function encodeRecord(rec: Record): Buffer {
  const body = Buffer.from(JSON.stringify(rec), 'utf8');
  if (body.length > MAX_RECORD) throw new Error(`cluster record of ${body.length} bytes exceeds ${MAX_RECORD}`);
  const buf = Buffer.alloc(REC_HEADER + body.length);
  buf.writeUInt32LE(REC_MAGIC, 0);
  buf.writeUInt32LE(body.length, 4);
  buf.writeUInt32LE(crc32(body), 8);
  body.copy(buf, REC_HEADER);
  return buf;
}

/**
 * Whether the write that starts with record `buf` (exact bytes; a batch is one write, so all or none of it)
 * lies in the segment open as `fh` before its first seal record.
 */
async function beforeSeal(fh: fsp.FileHandle, buf: Buffer): Promise<boolean> {
  const rec = buf.subarray(0, REC_HEADER + buf.readUInt32LE(4));
  const { size } = await fh.stat();
  const all = Buffer.alloc(size);
  await fh.read(all, 0, size, 0);
  for (let off = 0; off + REC_HEADER <= size; ) {
    const len = all.readUInt32LE(off + 4);
    if (all.readUInt32LE(off) !== REC_MAGIC || off + REC_HEADER + len > size) return true; // torn tail: no seal seen
    const body = all.subarray(off + REC_HEADER, off + REC_HEADER + len);
    if (len === rec.length - REC_HEADER && body.equals(rec.subarray(REC_HEADER))) return true;
    if ((JSON.parse(body.toString('utf8')) as Record).t === 'seal') return false;
    off += REC_HEADER + len;
  }
  return true;
}
