// VdiDevice: a BlockDevice on a Sheepdog VDI, through the sheep client (design.md "target ... holds a
// VdiDevice per export"). It mirrors what tgt's bs_sheepdog does (fact sheet §7, §8), minus tgt's bugs:
// - open: LOCK_VDI (NORMAL by default, SHARED for multipath) or, for a snapshot `NAME:TAG`, a plain lookup
//   and a read-only device; then the inode refresh read (4 198 968 bytes, TGT flag) into a cache.
// - I/O is split per object and pipelined (bounded by the client's in-flight limit). Unallocated objects read
//   as zeros (with a 1-byte inode probe under a SHARED lock so an invalidated cache is noticed, as tgt does).
// - Writes to an object this VDI owns are WRITE_OBJ; otherwise CREATE_AND_WRITE_OBJ, with COW from the
//   ancestor's object when inherited. Allocation is serialized per object; after a request's creates, ONE
//   index-area WRITE_OBJ covers the updated entries (built from the cache at send time; index writes are
//   serialized so a later one never reverts an earlier entry). A write to an object whose index entry is not
//   yet durable waits for it before it is acknowledged. Under a SHARED lock a creation is exclusive
//   cluster-wide (SF_OP_CREATE_EXCL, decided by the object's primary replica): when another host created the
//   object first, the write lands in that object instead of replacing it.
// - INODE_INVALIDATED: reload the inode (refresh read), keep our not-yet-durable entries, retry. Under a SHARED
//   lock the device also subscribes to its gateway's event feed: an invalidation of its own participant pushed
//   there makes the next request reload first (the refusal stays the safety net). READONLY: a
//   snapshot was taken under us; re-resolve the working VDI, move the lock, reload, retry (COW follows).
// - Sheep acknowledges writes only once durable on every replica, so FUA is free and flush() only waits for
//   the writes in flight. Discard zeroes index entries (serialized like allocations) and removes owned
//   objects; partial ranges are written as zeros. Identity derives from the cluster ctime and the vid.
import * as C from '../proto/sheepdog/constants.js';
import {
  dataVidOffset,
  decodeInode,
  encodeIndexRange,
  vidToDataOid,
  vidToVdiOid,
  type Inode,
} from '../proto/sheepdog/index.js';
import { SheepClient, SheepError, SheepNetError, describeVdi, type SheepClientOptions } from '../client/index.js';
import { FeedClient, type FeedEvent } from '../client/feed.js';
import { componentLogger, type Logger } from '../obs/log.js';
import { feedInvalidations, inodeReloads } from '../obs/metrics.js';
import { firstDifference } from '../util/bytes.js';
import type { ClockTimer } from '../util/clock.js';
import { BlockError, checkRange, identityFor } from './device.js';
import type { BlockDevice, BlockIdentity, Extent, WriteOptions, ZeroOptions } from './device.js';

export interface VdiDeviceOptions {
  /** An existing client (not closed by the device), or gateways to build one from (closed on close()). */
  client?: SheepClient;
  gateways?: SheepClientOptions['gateways'];
  /** VDI name. */
  vdi: string;
  /** Open a snapshot by tag (read-only). */
  tag?: string;
  /** Open a snapshot by id (read-only). */
  snapid?: number;
  /** Take a SHARED lock (multipath) instead of an exclusive NORMAL one. */
  shared?: boolean;
  /** Do not lock at all (tools that only read). */
  noLock?: boolean;
  readOnly?: boolean;
  /** Export name for identity.name (default: the VDI name). */
  name?: string;
  /** How many times one request is retried after INODE_INVALIDATED/READONLY (default 8). */
  maxReloads?: number;
  /** Target identity the built client's connections announce (HELLO, docs/fencing.md §3): locks and I/O are then
   * this target's, wherever its gateway is, and a restart with the same target id takes its lock back. */
  hello?: SheepClientOptions['hello'];
  /** Write fence for multipath (docs/fencing.md): a write that cannot start its sheep I/O within this many ms of
   * being submitted fails with EIO instead of landing after the initiator gave up on it (default: no fence). */
  writeFenceMs?: number;
  /** With a SHARED lock: subscribe to the gateway's event feed so a pushed invalidation of our inode copy makes
   * the next request reload it first, instead of being refused with INODE_INVALIDATED (default true). */
  feed?: boolean;
  logger?: Logger;
}

interface Piece {
  idx: number;
  /** offset inside the object */
  off: number;
  len: number;
  /** offset inside the request buffer */
  pos: number;
}

/** A promise that can be resolved from outside. */
interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

const IO_FLAGS = C.SD_FLAG_CMD_TGT;
/** checkReady: how long the sheep may take to answer the readiness probe, and how long an answer is reused. */
const READY_PROBE_MS = 3_000;
const READY_REUSE_MS = 1_000;

export class VdiDevice implements BlockDevice {
  readonly size: number;
  readonly blockSize = 512;
  readonly preferredBlockSize: number;
  readonly readOnly: boolean;
  readonly identity: BlockIdentity;
  readonly multiConn = true;
  readonly thin = true;

  private readonly client: SheepClient;
  private readonly ownsClient: boolean;
  private readonly opts: VdiDeviceOptions;
  private readonly log: Logger;
  private readonly lockType: number | null;
  private vid: number;
  private inode: Inode;
  private readonly objectSize: number;
  private readonly nrObjects: number;
  /** Per-object allocation/discard mutex: the tail of each object's chain. */
  private readonly objLocks = new Map<number, Promise<void>>();
  /** Entries set in the cache whose index write has not completed yet. */
  private readonly dirty = new Map<number, Deferred>();
  private indexChain: Promise<void> = Promise.resolve();
  private reloading: Promise<void> | null = null;
  /** The inode read of the reload in flight, if any (set from before its refresh read is sent until applied). */
  private loading: Promise<void> | null = null;
  private generation = 0;
  private readonly inflight = new Set<Promise<unknown>>();
  private closed = false;
  private closing: Promise<void> | null = null;
  private readyProbe: { at: number; done: Promise<void> } | null = null;
  /** Event feed subscription (SHARED lock): pushed invalidations set feedStale; the next request reloads first. */
  private feed: FeedClient | null = null;
  private feedStale = false;
  private feedRefresh: Promise<void> | null = null;
  private unfollow: (() => void) | null = null;

  private constructor(opts: VdiDeviceOptions, client: SheepClient, ownsClient: boolean, vid: number, inode: Inode, lockType: number | null, ctime: bigint) {
    this.opts = opts;
    this.client = client;
    this.ownsClient = ownsClient;
    this.vid = vid;
    this.inode = inode;
    this.lockType = lockType;
    const shift = inode.blockSizeShift || C.SD_DEFAULT_BLOCK_SIZE_SHIFT;
    this.objectSize = 2 ** shift;
    this.size = Number(inode.vdiSize) - (Number(inode.vdiSize) % this.blockSize);
    this.nrObjects = Math.ceil(this.size / this.objectSize);
    this.preferredBlockSize = this.objectSize;
    this.readOnly = opts.readOnly === true || opts.tag !== undefined || (opts.snapid ?? 0) !== 0 || inode.snapCtime !== 0n;
    const desc = `sheepdog VDI ${describeVdi(opts.vdi, opts)} (vid ${vid.toString(16)})`;
    const id = identityFor(`sheepdog:${ctime.toString(16)}:${vid.toString(16)}`, desc);
    this.identity = { ...id, name: opts.name ?? opts.vdi };
    this.log = (opts.logger ?? componentLogger('vdi')).child({ vdi: opts.vdi, vid });
  }

  /** Open (and lock) a VDI, read its inode and return the device. */
  static async open(opts: VdiDeviceOptions): Promise<VdiDevice> {
    const own = opts.client === undefined;
    if (own && opts.gateways === undefined) throw new BlockError('EINVAL', 'VdiDevice needs a client or gateways');
    const client =
      opts.client ??
      new SheepClient({
        gateways: opts.gateways ?? [],
        ...(opts.hello ? { hello: opts.hello } : {}),
        ...(opts.writeFenceMs !== undefined && opts.writeFenceMs > 0 ? { stallAfterMs: opts.writeFenceMs } : {}),
        requestTimeoutMs: 30_000,
        reconnectTimeoutMs: 60_000,
        initialConnectTimeoutMs: 10_000,
        maxInFlight: 64,
      });
    const log = opts.logger ?? componentLogger('vdi');
    if (own) {
      client.transport.on('disconnect', (e) => log.warn({ vdi: opts.vdi, gateway: e.gateway, err: e.error.message }, 'vdi.gateway_disconnect'));
      client.transport.on('failover', (e) => log.warn({ vdi: opts.vdi, from: e.from, to: e.to }, 'vdi.gateway_failover'));
      client.transport.on('reconnect', (e) => log.info({ vdi: opts.vdi, gateway: e.gateway }, 'vdi.gateway_reconnect'));
    }
    const snapshot = opts.tag !== undefined || (opts.snapid ?? 0) !== 0;
    const sel = { ...(opts.tag !== undefined ? { tag: opts.tag } : {}), ...(opts.snapid !== undefined ? { snapid: opts.snapid } : {}) };
    let lockType: number | null = null;
    let vid: number;
    try {
      if (snapshot || opts.noLock === true) {
        vid = (await client.getVdiInfo(opts.vdi, sel)).vid;
      } else {
        lockType = opts.shared === true ? C.LOCK_TYPE_SHARED : C.LOCK_TYPE_NORMAL;
        vid = (await client.lockVdi(opts.vdi, { type: lockType })).vid;
      }
    } catch (err) {
      if (own) client.close();
      throw toBlockError(err, `cannot open VDI ${describeVdi(opts.vdi, sel)}`);
    }
    try {
      const inode = decodeInode(await client.readObj(vidToVdiOid(vid), C.TGT_INODE_SIZE, { flags: IO_FLAGS }));
      const ci = await client.clusterInfo();
      if (inode.storePolicy !== C.STORE_POLICY_FLAT) throw new BlockError('ENOTSUP', `VDI ${opts.vdi} is a hyper volume (B-tree index), which is not supported`);
      const dev = new VdiDevice(opts, client, own, vid, inode, lockType, ci.ctime);
      if (lockType === C.LOCK_TYPE_SHARED && opts.feed !== false) dev.startFeed();
      dev.log.info({ size: dev.size, objectSize: dev.objectSize, lock: lockType, readOnly: dev.readOnly }, 'vdi.open');
      return dev;
    } catch (err) {
      if (lockType !== null) await client.releaseVdi(vid, lockType).catch(() => undefined);
      if (own) client.close();
      throw toBlockError(err, `cannot open VDI ${opts.vdi}`);
    }
  }

  /** The sheep client and VDI name of a shared (multipath) device, for cluster-wide state such as persistent
   * reservations; undefined for any other device. */
  sharedRef(): { client: SheepClient; vdi: string } | undefined {
    return this.lockType === C.LOCK_TYPE_SHARED ? { client: this.client, vdi: this.opts.vdi } : undefined;
  }

  /** The vid I/O currently goes to (changes after a snapshot is taken under us). */
  get currentVid(): number {
    return this.vid;
  }

  /** The cached owner vid of each object (copy). */
  indexSnapshot(): Uint32Array {
    return this.inode.dataVdiId.slice(0, this.nrObjects);
  }

  private pieces(offset: number, length: number): Piece[] {
    const out: Piece[] = [];
    let pos = 0;
    while (pos < length) {
      const abs = offset + pos;
      const idx = Math.floor(abs / this.objectSize);
      const off = abs % this.objectSize;
      const len = Math.min(this.objectSize - off, length - pos);
      out.push({ idx, off, len, pos });
      pos += len;
    }
    return out;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    const done = (): void => void this.inflight.delete(p);
    p.then(done, done);
    return p;
  }

  private checkOpen(): void {
    if (this.closed) throw new BlockError('ESHUTDOWN', `VDI ${this.opts.vdi} is closed`);
  }

  // ---- reads ----

  async read(offset: number, length: number): Promise<Buffer> {
    this.checkOpen();
    checkRange(this, offset, length);
    const list = this.pieces(offset, length);
    const one = list.length === 1 ? list[0] : undefined;
    if (one !== undefined && (this.inode.dataVdiId[one.idx] ?? 0) !== 0) {
      // Inside one allocated object: the reply's own buffer is the result, no gathering copy.
      return this.track(this.retrying(() => this.readWhole(one)));
    }
    const out = Buffer.allocUnsafe(length);
    await this.track(this.readPieces(list, out));
    return out;
  }

  /** BlockDevice.readInto: each piece is read by the socket straight into `target` (a front end's pooled buffer). */
  async readInto(offset: number, target: Buffer): Promise<void> {
    this.checkOpen();
    checkRange(this, offset, target.length);
    await this.track(this.readPieces(this.pieces(offset, target.length), target));
  }

  private async readPieces(list: readonly Piece[], out: Buffer): Promise<void> {
    // Under a shared lock another target may have allocated what we cache as holes: one probe per request
    // surfaces INODE_INVALIDATED (and reloads) before holes are answered with zeros.
    if (list.some((p) => (this.inode.dataVdiId[p.idx] ?? 0) === 0)) {
      await this.probeCoherence();
      await this.refreshHoles(list);
    }
    // Settle every piece before failing: `out` may be a pooled buffer that must not be written once we return.
    const done = await Promise.allSettled(list.map((p) => this.retrying(() => this.readPiece(p, out))));
    for (const d of done) if (d.status === 'rejected') throw d.reason;
  }

  /**
   * With a shared lock: the 1-byte inode read tgt uses to learn whether its inode cache is still valid. The
   * gateway validates us when a refresh read arrives, before it answers it, so a probe can pass while that
   * refresh is still in flight: the cache is trusted only once every reload in flight has been applied.
   */
  private async probeCoherence(): Promise<void> {
    if (this.lockType !== C.LOCK_TYPE_SHARED) return;
    await this.retrying(() => this.client.readObj(vidToVdiOid(this.vid), 1, { flags: IO_FLAGS }));
    while (this.loading) await this.loading.catch(() => undefined);
  }

  /**
   * Without a shared lock nothing pushes allocations made behind our back (`dog vdi write`, a tool on another
   * gateway), so before answering holes with zeros re-read those index entries (one small inode read) and adopt
   * objects allocated meanwhile.
   */
  private async refreshHoles(list: readonly Piece[]): Promise<void> {
    if (this.lockType === C.LOCK_TYPE_SHARED) return;
    const holes = list.filter((p) => (this.inode.dataVdiId[p.idx] ?? 0) === 0).map((p) => p.idx);
    if (holes.length === 0) return;
    const min = Math.min(...holes);
    const max = Math.max(...holes);
    const raw = await this.retrying(() =>
      this.client.readObj(vidToVdiOid(this.vid), 4 * (max - min + 1), { offset: dataVidOffset(min), flags: IO_FLAGS }),
    );
    for (const idx of holes) {
      const entry = raw.readUInt32LE(4 * (idx - min));
      if (entry !== 0 && (this.inode.dataVdiId[idx] ?? 0) === 0) this.inode.dataVdiId[idx] = entry;
    }
  }

  private async readPiece(p: Piece, out: Buffer): Promise<void> {
    const owner = this.inode.dataVdiId[p.idx] ?? 0;
    if (owner === 0) {
      out.fill(0, p.pos, p.pos + p.len);
      return;
    }
    const into = out.subarray(p.pos, p.pos + p.len);
    await this.client.readObjInto(vidToDataOid(owner, p.idx), into, { offset: p.off, copies: this.inode.nrCopies, flags: IO_FLAGS });
  }

  /** One piece as its own buffer: readObj's reply (always exactly p.len bytes). */
  private async readWhole(p: Piece): Promise<Buffer> {
    const owner = this.inode.dataVdiId[p.idx] ?? 0;
    if (owner === 0) return Buffer.alloc(p.len);
    return this.client.readObj(vidToDataOid(owner, p.idx), p.len, { offset: p.off, copies: this.inode.nrCopies, flags: IO_FLAGS });
  }

  // ---- writes ----

  async write(offset: number, data: Buffer, opts?: WriteOptions): Promise<void> {
    this.checkWritable();
    checkRange(this, offset, data.length);
    const notAfter = this.deadlineOf(opts);
    await this.track(this.writeRange(offset, data, notAfter));
  }

  /** A write's deadline: the caller's, else the device's write fence counted from when the write was accepted. */
  private deadlineOf(opts: WriteOptions | undefined): number | undefined {
    const fenceMs = this.opts.writeFenceMs;
    return opts?.notAfter ?? (fenceMs !== undefined && fenceMs > 0 ? (opts?.issuedAt ?? this.client.clock.now()) + fenceMs : undefined);
  }

  /**
   * The client options of a fenced write: its deadline, and when it was accepted (the deadline minus the
   * device's fence), so the client's stall fence can tell writes accepted before a stall (docs/fencing.md §4).
   */
  private fenceOf(notAfter: number | undefined): { notAfter?: number; issuedAt?: number } {
    if (notAfter === undefined) return {};
    const ms = this.opts.writeFenceMs;
    return ms !== undefined && ms > 0 ? { notAfter, issuedAt: notAfter - ms } : { notAfter };
  }

  /** The write fence: refuse to start sheep I/O for a write whose deadline has passed. */
  private fence(notAfter: number | undefined): void {
    if (notAfter !== undefined && this.client.clock.now() > notAfter) {
      throw new BlockError('EIO', `write fence: not started within its deadline on VDI ${this.opts.vdi}`);
    }
  }

  private checkWritable(): void {
    this.checkOpen();
    if (this.readOnly) throw new BlockError('EROFS', `VDI ${describeVdi(this.opts.vdi, this.opts)} is read-only`);
  }

  private async writeRange(offset: number, data: Buffer, notAfter?: number): Promise<void> {
    const created: number[] = [];
    const waits: Promise<void>[] = [];
    await Promise.all(
      this.pieces(offset, data.length).map((p) =>
        this.retrying(async () => {
          this.fence(notAfter);
          const r = await this.writePiece(p.idx, p.off, data.subarray(p.pos, p.pos + p.len), notAfter);
          if (r.created) created.push(p.idx);
          else if (r.wait) waits.push(r.wait);
        }),
      ),
    );
    if (created.length > 0) await this.writeIndex(Math.min(...created), Math.max(...created));
    await Promise.all(waits);
  }

  /** Write into one object: WRITE_OBJ if owned, else create it (COW if inherited) under the object's lock. */
  private async writePiece(idx: number, off: number, buf: Buffer, notAfter?: number): Promise<{ created: boolean; wait?: Promise<void> }> {
    const fence = this.fenceOf(notAfter);
    if ((this.inode.dataVdiId[idx] ?? 0) === this.vid) {
      await this.writeData(this.vid, idx, off, buf, fence);
      const d = this.dirty.get(idx);
      return d ? { created: false, wait: d.promise } : { created: false };
    }
    return this.withObjectLock(idx, async () => {
      const owner = this.inode.dataVdiId[idx] ?? 0;
      const vid = this.vid;
      if (owner === vid) {
        await this.writeData(vid, idx, off, buf, fence);
        const d = this.dirty.get(idx);
        return d ? { created: false, wait: d.promise } : { created: false };
      }
      const create = {
        offset: off,
        copies: this.inode.nrCopies,
        flags: IO_FLAGS | C.SD_FLAG_CMD_CACHE,
        ...(owner !== 0 ? { cowOid: vidToDataOid(owner, idx) } : {}),
        ...fence,
      };
      if (this.lockType !== C.LOCK_TYPE_SHARED) {
        await this.client.createAndWriteObj(vidToDataOid(vid, idx), buf, create);
      } else if (!(await this.client.createObjExcl(vidToDataOid(vid, idx), buf, create))) {
        // Another host created this object first (its primary replica decided): write into it instead of
        // replacing it, and record the same index entry it records.
        await this.writeData(vid, idx, off, buf, fence);
      }
      // A snapshot moved us to a new working vid while creating: redo the piece there (COW from the cache).
      if (vid !== this.vid) throw new SheepError(C.SD_OP_CREATE_AND_WRITE_OBJ, C.SD_RES_READONLY);
      this.inode.dataVdiId[idx] = vid;
      if (!this.dirty.has(idx)) this.dirty.set(idx, deferred());
      return { created: true };
    });
  }

  /**
   * BlockDevice.checkReady: one 1-byte inode read that must be answered within READY_PROBE_MS (shared by
   * concurrent callers and reused for READY_REUSE_MS, so a storm of TEST UNIT READYs costs one sheep read).
   */
  checkReady(): Promise<void> {
    this.checkOpen();
    const now = this.client.clock.now();
    const last = this.readyProbe;
    if (last && now - last.at < READY_REUSE_MS) return last.done;
    // The client may re-send through other gateways; the answer is due within READY_PROBE_MS whatever it does.
    let timer: ClockTimer | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = this.client.clock.setTimeout(() => reject(new BlockError('EIO', `VDI ${this.opts.vdi}: no answer from sheep within ${READY_PROBE_MS} ms`)), READY_PROBE_MS);
    });
    const read = this.client.readObj(vidToVdiOid(this.vid), 1, { timeoutMs: READY_PROBE_MS }).then(
      () => undefined,
      (err: unknown) => {
        throw toBlockError(err, `VDI ${this.opts.vdi} is not reachable`);
      },
    );
    read.catch(() => undefined);
    const done = Promise.race([read, late]).finally(() => this.client.clock.clear(timer));
    done.catch(() => undefined);
    this.readyProbe = { at: now, done };
    return done;
  }

  /**
   * Write into data object (vid, idx), which exists. Under a SHARED lock the write is ordered at the object's
   * primary replica (SF_OP_WRITE_SERIAL) against the other hosts' writes and COMPARE AND WRITEs, so every
   * replica applies overlapping writes of different hosts in one order.
   */
  private async writeData(vid: number, idx: number, off: number, buf: Buffer, fence: { notAfter?: number }): Promise<void> {
    const o = { offset: off, copies: this.inode.nrCopies, flags: IO_FLAGS | C.SD_FLAG_CMD_CACHE, ...fence };
    if (this.lockType === C.LOCK_TYPE_SHARED) await this.client.writeObjSerial(vidToDataOid(vid, idx), buf, o);
    else await this.client.writeObj(vidToDataOid(vid, idx), buf, o);
  }

  /**
   * COMPARE AND WRITE (SBC-4): write `data` at `offset` only if the device holds `expected` there. Resolves
   * null when written, else the offset of the first differing byte (nothing written). Within one object it is
   * atomic across every host sharing the VDI: the object's primary replica compares and writes (SF_OP_CMP_WRITE)
   * in order with every serialized write; an object not yet allocated is compared with what it reads as and
   * created exclusively with the new bytes. A range across two objects is compared and written by this host
   * only (atomic against this host's own writes through the caller's range lock).
   */
  async compareAndWrite(offset: number, expected: Buffer, data: Buffer, opts?: WriteOptions): Promise<number | null> {
    this.checkWritable();
    if (expected.length !== data.length) throw new BlockError('EINVAL', 'compare and write needs two buffers of one length');
    checkRange(this, offset, data.length);
    const notAfter = this.deadlineOf(opts);
    const list = this.pieces(offset, data.length);
    const one = list[0];
    if (list.length !== 1 || one === undefined) {
      const cur = await this.read(offset, data.length);
      const at = firstDifference(cur, expected);
      if (at >= 0) return at;
      await this.write(offset, data, notAfter !== undefined ? { notAfter } : {});
      return null;
    }
    return this.track(this.compareAndWritePiece(one, expected, data, notAfter));
  }

  private async compareAndWritePiece(p: Piece, expected: Buffer, data: Buffer, notAfter: number | undefined): Promise<number | null> {
    const fence = this.fenceOf(notAfter);
    if (this.lockType === C.LOCK_TYPE_SHARED) await this.probeCoherence();
    let created = false;
    const at = await this.retrying(() =>
      this.withObjectLock(p.idx, async (): Promise<number | null> => {
        this.fence(notAfter);
        const vid = this.vid;
        const owner = this.inode.dataVdiId[p.idx] ?? 0;
        const o = { offset: p.off, copies: this.inode.nrCopies, flags: IO_FLAGS | C.SD_FLAG_CMD_CACHE, ...fence };
        if (owner !== vid) {
          // Not ours yet: what it reads as now (zeros, or the ancestor's bytes) is what is compared.
          const cur = Buffer.alloc(p.len);
          await this.readPiece({ ...p, pos: 0 }, cur);
          const diff = firstDifference(cur, expected);
          if (diff >= 0) return diff;
          const cow = owner !== 0 ? { cowOid: vidToDataOid(owner, p.idx) } : {};
          const made =
            this.lockType === C.LOCK_TYPE_SHARED
              ? await this.client.createObjExcl(vidToDataOid(vid, p.idx), data, { ...o, ...cow })
              : (await this.client.createAndWriteObj(vidToDataOid(vid, p.idx), data, { ...o, ...cow }), true);
          if (vid !== this.vid) throw new SheepError(C.SD_OP_CREATE_AND_WRITE_OBJ, C.SD_RES_READONLY);
          this.inode.dataVdiId[p.idx] = vid;
          if (!this.dirty.has(p.idx)) this.dirty.set(p.idx, deferred());
          created = true;
          // Created by another host meanwhile: compare against what it holds, at its primary.
          if (made) return null;
        }
        if (this.lockType !== C.LOCK_TYPE_SHARED) {
          const cur = await this.client.readObj(vidToDataOid(vid, p.idx), p.len, { offset: p.off, copies: this.inode.nrCopies, flags: IO_FLAGS });
          const diff = firstDifference(cur, expected);
          if (diff >= 0) return diff;
          await this.client.writeObj(vidToDataOid(vid, p.idx), data, o);
          return null;
        }
        return this.client.cmpWriteObj(vidToDataOid(vid, p.idx), expected, data, o);
      }),
    );
    if (created) await this.writeIndex(p.idx, p.idx);
    const d = this.dirty.get(p.idx);
    if (d) await d.promise;
    return at;
  }

  /** Take object idx's allocation lock; resolves with its release function. */
  private async lockObject(idx: number): Promise<() => void> {
    const prev = this.objLocks.get(idx) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = prev.then(() => mine);
    this.objLocks.set(idx, tail);
    await prev;
    return () => {
      release();
      if (this.objLocks.get(idx) === tail) this.objLocks.delete(idx);
    };
  }

  /** Run `fn` holding object idx's allocation lock (never while holding another object's lock). */
  private async withObjectLock<T>(idx: number, fn: () => Promise<T>): Promise<T> {
    const release = await this.lockObject(idx);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  /** Run `fn` in the serialized index chain: index-area writes never overtake one another. */
  private indexOp<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.indexChain.then(fn, fn);
    this.indexChain = p.then(
      () => undefined,
      () => undefined,
    );
    return p;
  }

  /** Send the cached entries [min, max] in one index-area WRITE_OBJ (inside the chain) and settle dirty ones. */
  private async sendIndex(min: number, max: number): Promise<void> {
    try {
      await this.retrying(async () => {
        const covered = [...this.dirty.entries()].filter(([i]) => i >= min && i <= max);
        const payload = encodeIndexRange(this.inode.dataVdiId, min, max - min + 1);
        await this.client.writeObj(vidToVdiOid(this.vid), payload, { offset: dataVidOffset(min), copies: this.inode.nrCopies, flags: IO_FLAGS });
        for (const [i, d] of covered) {
          if (this.dirty.get(i) === d) this.dirty.delete(i);
          d.resolve();
        }
      }, true);
    } catch (err) {
      // Writers waiting for these entries to become durable fail with the same error.
      for (const [i, d] of [...this.dirty.entries()].filter(([k]) => k >= min && k <= max)) {
        this.dirty.delete(i);
        d.reject(err);
      }
      throw err;
    }
  }

  /**
   * Persist the cached entries [min, max] with one index-area WRITE_OBJ. The payload is built when the write
   * is sent, inside the chain, so the newest cache state always lands last.
   */
  private writeIndex(min: number, max: number): Promise<void> {
    return this.indexOp(() => this.sendIndex(min, max));
  }

  // ---- flush, discard, zeroes ----

  async flush(): Promise<void> {
    this.checkOpen();
    // Every acknowledged sheep write is already durable on all replicas; wait for those still in flight.
    await Promise.allSettled([...this.inflight]);
  }

  async discard(offset: number, length: number, _opts?: WriteOptions): Promise<void> {
    this.checkWritable();
    checkRange(this, offset, length);
    await this.track(this.zeroRange(offset, length, true));
  }

  async writeZeroes(offset: number, length: number, opts: ZeroOptions = {}): Promise<void> {
    this.checkWritable();
    checkRange(this, offset, length);
    if (opts.fastOnly === true && opts.mayTrim !== true) {
      // Zeroing allocated data needs real writes; only already-unallocated ranges are fast.
      if (this.pieces(offset, length).some((p) => (this.inode.dataVdiId[p.idx] ?? 0) !== 0)) {
        throw new BlockError('ENOTSUP', 'fast zeroing of allocated VDI data is not supported');
      }
    }
    await this.track(this.zeroRange(offset, length, opts.mayTrim === true));
  }

  /**
   * Make a range read as zeros. Unallocated pieces need nothing. Whole objects are unmapped when trimming is
   * allowed (index entries zeroed, our own objects removed), else replaced by an empty CREATE (a zero object,
   * no COW, no data on the wire). Partial pieces are written with zeros (COW if inherited).
   */
  private async zeroRange(offset: number, length: number, mayTrim: boolean): Promise<void> {
    const list = this.pieces(offset, length);
    const whole = (p: Piece): boolean => p.off === 0 && (p.len === this.objectSize || p.idx * this.objectSize + p.len >= this.size);
    const trims = mayTrim ? list.filter(whole).map((p) => p.idx) : [];
    const created: number[] = [];
    const waits: Promise<void>[] = [];
    await Promise.all(
      list
        .filter((p) => !(mayTrim && whole(p)))
        .map((p) =>
          this.retrying(async () => {
            if ((this.inode.dataVdiId[p.idx] ?? 0) === 0) return;
            if (whole(p)) {
              if (await this.zeroObject(p.idx)) created.push(p.idx);
              return;
            }
            const r = await this.writePiece(p.idx, p.off, Buffer.alloc(p.len));
            if (r.created) created.push(p.idx);
            else if (r.wait) waits.push(r.wait);
          }),
        ),
    );
    if (created.length > 0) await this.writeIndex(Math.min(...created), Math.max(...created));
    await Promise.all(waits);
    if (trims.length > 0) await this.trim(trims);
  }

  /** Replace a whole object by zeros with an empty CREATE; true if the index entry changed to ours. */
  private zeroObject(idx: number): Promise<boolean> {
    return this.withObjectLock(idx, async () => {
      const owner = this.inode.dataVdiId[idx] ?? 0;
      if (owner === 0) return false;
      const vid = this.vid;
      await this.client.createAndWriteObj(vidToDataOid(vid, idx), Buffer.alloc(0), { copies: this.inode.nrCopies, flags: IO_FLAGS });
      if (vid !== this.vid) throw new SheepError(C.SD_OP_CREATE_AND_WRITE_OBJ, C.SD_RES_READONLY);
      if (owner === vid) return false;
      this.inode.dataVdiId[idx] = vid;
      if (!this.dirty.has(idx)) this.dirty.set(idx, deferred());
      return true;
    });
  }

  /**
   * Unmap whole objects: under their allocation locks (taken in ascending order), one index write zeroes the
   * entries, then the objects this VDI owned are removed (an ancestor's objects are never touched).
   */
  private async trim(idxs: number[]): Promise<void> {
    const sorted = [...new Set(idxs)].sort((a, b) => a - b);
    const releases: (() => void)[] = [];
    try {
      for (const i of sorted) releases.push(await this.lockObject(i));
      await this.indexOp(async () => {
        const changed = sorted.filter((i) => (this.inode.dataVdiId[i] ?? 0) !== 0);
        if (changed.length === 0) return;
        const vid = this.vid;
        const owned = changed.filter((i) => this.inode.dataVdiId[i] === vid);
        const prev = changed.map((i) => this.inode.dataVdiId[i] ?? 0);
        for (const i of changed) {
          this.inode.dataVdiId[i] = 0;
          if (!this.dirty.has(i)) this.dirty.set(i, deferred());
        }
        try {
          await this.sendIndex(changed[0] as number, changed[changed.length - 1] as number);
        } catch (err) {
          changed.forEach((i, k) => (this.inode.dataVdiId[i] = prev[k] ?? 0));
          throw err;
        }
        await Promise.all(owned.map((i) => this.client.removeObj(vidToDataOid(vid, i), { missingOk: true }).catch(() => undefined)));
      });
    } finally {
      for (const r of releases) r();
    }
  }

  async extents(offset: number, length: number): Promise<Extent[]> {
    this.checkOpen();
    checkRange(this, offset, length);
    // Another target may have allocated objects: trust the cached index only after the coherence probe.
    await this.probeCoherence();
    const list = this.pieces(offset, length);
    await this.refreshHoles(list);
    const out: Extent[] = [];
    for (const p of list) {
      const allocated = (this.inode.dataVdiId[p.idx] ?? 0) !== 0;
      const last = out[out.length - 1];
      if (last !== undefined && last.allocated === allocated) last.length += p.len;
      else out.push({ offset: offset + p.pos, length: p.len, allocated, zero: !allocated });
    }
    return out;
  }

  /** New requests fail from now on; those in flight finish, then the lock is released. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      await Promise.allSettled([...this.inflight]);
      await this.indexChain;
      if (this.lockType !== null) {
        await this.client.releaseVdi(this.vid, this.lockType).catch((err: unknown) => this.log.warn({ err: String(err) }, 'vdi.release_failed'));
      }
      this.log.info({}, 'vdi.close');
      this.unfollow?.();
      if (this.ownsClient) this.client.close();
    })();
    return this.closing;
  }

  // ---- coherence: reload on INODE_INVALIDATED / READONLY, or first when the event feed said so ----

  /**
   * Subscribe to the current gateway's event feed for this VDI's lock events (with a snapshot at every connect,
   * so an invalidation during a reconnect is not missed); follow the client to another gateway on failover.
   */
  private startFeed(): void {
    const feed = new FeedClient({
      gateway: () => this.client.transport.gateway,
      query: () => ({ types: ['lock', 'invalidate'], vids: [this.vid], snapshot: true }),
      logger: this.log,
    });
    this.feed = feed;
    feed.on('event', (e) => this.onFeedEvent(e));
    const follow = (): void => feed.reconnect();
    this.client.transport.on('failover', follow);
    this.client.transport.on('reconnect', follow);
    this.unfollow = () => {
      this.client.transport.off('failover', follow);
      this.client.transport.off('reconnect', follow);
      feed.close();
    };
    feed.start();
  }

  /**
   * True if a participant named by the feed is this device's lock identity: its target id when the participant
   * is a target (HELLO), else the gateway sheep the feed (like our I/O) is connected to.
   */
  private ownParticipant(p: { node: string; target?: string }): boolean {
    if (p.target !== undefined) return p.target === (this.opts as { hello?: { targetId?: string } }).hello?.targetId;
    return this.feed?.node !== null && p.node === this.feed?.node;
  }

  private onFeedEvent(e: FeedEvent): void {
    if (this.closed) return;
    const mine =
      (e.type === 'invalidate' && e.vid === this.vid && this.ownParticipant({ node: e.participant, ...(e.target !== undefined ? { target: e.target } : {}) })) ||
      (e.type === 'lock' && e.snapshot === true && e.vid === this.vid && e.participants.some((p) => p.state === 'invalidated' && this.ownParticipant(p)));
    if (!mine) return;
    feedInvalidations.inc();
    this.log.debug({ seq: e.seq }, 'vdi.feed_invalidated');
    this.feedStale = true;
  }

  /**
   * Reload the inode because the feed said our copy is invalidated; requests wait for it instead of being
   * refused. A reload already running may have read before the invalidation: wait for it, then reload again.
   * Failures are left to the INODE_INVALIDATED path.
   */
  private refreshFromFeed(): Promise<void> {
    this.feedRefresh ??= (async () => {
      try {
        while (this.feedStale && !this.closed) {
          this.feedStale = false;
          if (this.reloading) await this.reloading.catch(() => undefined);
          await this.reload(this.generation, false, false, 'feed');
        }
      } catch (err) {
        this.log.debug({ err: String(err) }, 'vdi.feed_reload_failed');
      } finally {
        this.feedRefresh = null;
      }
    })();
    return this.feedRefresh;
  }

  /**
   * Run one step, reloading the inode and retrying on INODE_INVALIDATED or READONLY. `inChain` is true for
   * steps that already run inside the index chain (index writes), which then reload directly.
   */
  private async retrying<T>(step: () => Promise<T>, inChain = false): Promise<T> {
    // A feed reload clears feedStale when it starts: later requests wait for it too, not only the first.
    if ((this.feedStale || this.feedRefresh !== null) && !inChain) await this.refreshFromFeed();
    const max = this.opts.maxReloads ?? 8;
    for (let attempt = 0; ; attempt++) {
      const gen = this.generation;
      try {
        return await step();
      } catch (err) {
        const r = err instanceof SheepError ? err.result : -1;
        // Shared: an object our cache maps may have been discarded by another host after our coherence check
        // passed; the reloaded index says what to do (allocate again, or read zeros).
        const gone = r === C.SD_RES_NO_OBJ && this.lockType === C.LOCK_TYPE_SHARED;
        if ((r !== C.SD_RES_INODE_INVALIDATED && r !== C.SD_RES_READONLY && !gone) || attempt >= max) throw toBlockError(err, `VDI ${this.opts.vdi} I/O failed`);
        if (r === C.SD_RES_READONLY && this.readOnly) throw toBlockError(err, `VDI ${this.opts.vdi} is read-only`);
        await this.reload(gen, r === C.SD_RES_READONLY, inChain, r === C.SD_RES_READONLY ? 'snapshot' : 'invalidated');
      }
    }
  }

  /**
   * Reload once per generation; concurrent refusals share one reload. Reloads run inside the index chain, so
   * no index write (nor trim) completes while the inode is being read: every local change made meanwhile is
   * still in `dirty` and survives the merge.
   */
  private async reload(seenGen: number, snapshotTaken: boolean, inChain: boolean, reason: ReloadReason): Promise<void> {
    if (this.generation !== seenGen) return;
    if (inChain) {
      await this.reloadOnce(seenGen, snapshotTaken, reason);
      return;
    }
    this.reloading ??= this.indexOp(() => this.reloadOnce(seenGen, snapshotTaken, reason)).finally(() => {
      this.reloading = null;
    });
    await this.reloading;
  }

  private async reloadOnce(seenGen: number, snapshotTaken: boolean, reason: ReloadReason): Promise<void> {
    if (this.generation !== seenGen) return;
    inodeReloads.inc({ reason });
    const load = this.doReload(snapshotTaken);
    this.loading = load;
    try {
      await load;
    } finally {
      if (this.loading === load) this.loading = null;
      this.generation++;
    }
  }

  private async doReload(snapshotTaken: boolean): Promise<void> {
    let ino = decodeInode(await this.client.readObj(vidToVdiOid(this.vid), C.TGT_INODE_SIZE, { flags: IO_FLAGS }));
    if (snapshotTaken || ino.snapCtime !== 0n) {
      // Our vid became a snapshot: find the new working VDI, move the lock to it, and read its inode.
      const old = this.vid;
      const info = this.lockType !== null ? await this.client.lockVdi(this.opts.vdi, { type: this.lockType }) : await this.client.getVdiInfo(this.opts.vdi);
      if (this.lockType !== null && info.vid !== old) await this.client.releaseVdi(old, this.lockType).catch(() => undefined);
      this.vid = info.vid;
      // The feed subscription follows the working VDI.
      this.feed?.reconnect();
      const snap = ino;
      ino = decodeInode(await this.client.readObj(vidToVdiOid(this.vid), C.TGT_INODE_SIZE, { flags: IO_FLAGS }));
      // An index write of ours that landed in the old inode just after the snapshot copied it is missing from
      // the new working inode: re-apply such entries (owned by the old vid there, unset here) to it.
      let min = -1;
      let max = -1;
      for (let i = 0; i < this.nrObjects; i++) {
        if (snap.dataVdiId[i] === old && (ino.dataVdiId[i] ?? 0) === 0) {
          ino.dataVdiId[i] = old;
          if (min < 0) min = i;
          max = i;
        }
      }
      if (min >= 0) {
        const payload = encodeIndexRange(ino.dataVdiId, min, max - min + 1);
        await this.client.writeObj(vidToVdiOid(this.vid), payload, { offset: dataVidOffset(min), copies: ino.nrCopies, flags: IO_FLAGS });
      }
      this.log.info({ oldVid: old, newVid: this.vid, reapplied: min < 0 ? 0 : max - min + 1 }, 'vdi.snapshot_reload');
    } else this.log.debug({}, 'vdi.inode_reload');
    // Keep entries we changed whose index write has not landed yet.
    for (const i of this.dirty.keys()) ino.dataVdiId[i] = this.inode.dataVdiId[i] ?? 0;
    this.inode = ino;
  }
}

type ReloadReason = 'feed' | 'invalidated' | 'snapshot';

/** Map client failures to BlockError codes (one table, at the device edge). */
export function toBlockError(err: unknown, context: string): BlockError {
  if (err instanceof BlockError) return err;
  if (err instanceof SheepError) {
    const code = err.result === C.SD_RES_NO_SPACE ? 'ENOSPC' : err.result === C.SD_RES_READONLY ? 'EROFS' : err.result === C.SD_RES_VDI_LOCKED ? 'ECONFLICT' : 'EIO';
    return new BlockError(code, `${context}: ${err.message}`, { cause: err });
  }
  if (err instanceof SheepNetError) return new BlockError(err.code === 'ECLOSED' ? 'ESHUTDOWN' : 'EIO', `${context}: ${err.message}`, { cause: err });
  return new BlockError('EIO', `${context}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
}
