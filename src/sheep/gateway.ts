// The gateway (fact sheet §2.1 GATEWAY class, §5.3–5.4, §7.1): serves client object I/O by routing it to the
// replicas a Placement chooses. Writes go to every replica and succeed only if all do; reads try the
// replicas in order (local first) until one answers. It also owns the object-level protocol rules:
// the inode-coherence checks for TGT requests, READONLY for snapshot data, copy-on-write creation, and the
// side effects of index-area inode writes (coherence invalidation, reclaim of objects no longer referenced).
// A request's lock identity is its target's (HELLO, io.who) or else this gateway sheep's; requests of a target
// incarnation that no longer holds its lock record are fenced with SF_RES_FENCED (docs/fencing.md §4).
// With one node the Placement returns only the local store; the cluster adds peer replicas behind ReplicaIo.
import {
  SD_FLAG_CMD_COW,
  SD_FLAG_CMD_TGT,
  SD_INODE_GREF_OFFSET,
  SD_INODE_HEADER_SIZE,
  SD_INODE_SIZE,
  SD_RES_INODE_INVALIDATED,
  SD_RES_INVALID_PARMS,
  SD_RES_KILLED,
  SD_RES_NETWORK_ERROR,
  SD_RES_NEW_NODE_VER,
  SD_RES_NODE_IN_RECOVERY,
  SD_RES_NO_OBJ,
  SD_RES_OLD_NODE_VER,
  SD_RES_READONLY,
  SD_RES_SHUTDOWN,
  SD_RES_WAIT_FOR_JOIN,
  LOCK_STATE_SHARED,
  SHARED_LOCK_STATE_INVALIDATED,
  SHARED_LOCK_STATE_MODIFIED,
  TGT_INODE_SIZE,
} from '../proto/sheepdog/constants.js';
import { isDataOid, isVdiOid, objectSize, oidHex, oidToIndex, oidToVid, vidToDataOid, vidToVdiOid } from '../proto/sheepdog/oid.js';
import type { NodeId } from '../proto/sheepdog/node.js';
import type { Logger } from '../obs/log.js';
import { SdError, resultOf } from './errors.js';
import { SF_RES_FENCED } from '../proto/sheepdog/target-id.js';
import type { LockTable, TargetIdentity } from './lock.js';
import type { Mutex } from './mutex.js';
import type { ClientStore } from './client-store.js';
import type { VdiNamespace } from './vdi.js';

/** One replica of an object: the local store, or (in a cluster) a peer reached with the *_PEER ops. */
export interface ReplicaIo {
  readonly label: string;
  create(oid: bigint, size: number, data: Buffer, offset: number, base: Buffer | undefined, epoch: number): Promise<void>;
  write(oid: bigint, data: Buffer, offset: number, epoch: number): Promise<void>;
  read(oid: bigint, offset: number, length: number, epoch: number): Promise<Buffer>;
  remove(oid: bigint, epoch: number): Promise<void>;
}

/** Chooses the replicas of an object for the current epoch (the ring, in a cluster). */
export interface Placement {
  replicas(oid: bigint, copies: number): ReplicaIo[];
}

/** The local store as a replica. */
export class LocalReplica implements ReplicaIo {
  readonly label = 'local';
  constructor(private readonly store: ClientStore) {}
  create(oid: bigint, size: number, data: Buffer, offset: number, base: Buffer | undefined): Promise<void> {
    return this.store.create(oid, size, data, offset, base);
  }
  write(oid: bigint, data: Buffer, offset: number): Promise<void> {
    return this.store.write(oid, data, offset);
  }
  read(oid: bigint, offset: number, length: number): Promise<Buffer> {
    return this.store.read(oid, offset, length);
  }
  remove(oid: bigint): Promise<void> {
    return this.store.remove(oid);
  }
}

/** Placement of a one-node cluster: every object lives in the local store. */
export class SinglePlacement implements Placement {
  private readonly local: ReplicaIo[];
  constructor(store: ClientStore) {
    this.local = [new LocalReplica(store)];
  }
  replicas(): ReplicaIo[] {
    return this.local;
  }
}

export interface GatewayDeps {
  placement: Placement;
  vdis: VdiNamespace;
  locks: LockTable;
  /** This sheep's identity (the lock participant whose coherence state is checked). */
  self: NodeId;
  epoch: () => number;
  /** Cluster defaults for VDIs the namespace does not know. */
  defaults: () => { copies: number; blockSizeShift: number };
  /** Run INODE_COHERENCE(vid, validate) as a cluster op from this node for `sender` (default: this node, §7.2). */
  coherence: (vid: number, validate: boolean, sender?: NodeId) => Promise<number>;
  /** Serializes reclaim with VDI namespace work (snapshot copies the index under it). */
  namespaceMutex: Mutex;
  log: Logger;
  /**
   * In a cluster: wait until the epoch moves past `seen` or `ms` pass. With it, replica failures that an
   * epoch change resolves (dead peer, OLD/NEW_NODE_VER, recovery) are retried inside the gateway (§1.8,
   * pitfall 5) instead of reaching the client.
   */
  waitEpoch?: (seen: number, ms: number) => Promise<void>;
  /** Told of every object reclaim removed (a cluster broadcasts a deleted VDI's objects, seed 003). */
  onReclaimed?: (oid: bigint) => void;
  /**
   * In a cluster: apply every cluster op acknowledged so far before judging coherence, so an invalidation
   * another gateway acknowledged to its target is seen here before this node answers a TGT request.
   */
  syncCluster?: () => Promise<void>;
}

/** Replica errors the gateway retries after the epoch moves (fact sheet §1.8). */
const RETRYABLE = new Set<number>([
  SD_RES_NETWORK_ERROR,
  SD_RES_OLD_NODE_VER,
  SD_RES_NEW_NODE_VER,
  SD_RES_NODE_IN_RECOVERY,
  SD_RES_KILLED,
  SD_RES_WAIT_FOR_JOIN,
  SD_RES_SHUTDOWN,
]);
/** How long the gateway keeps retrying one request through epoch changes before giving up with EIO. */
export const GATEWAY_RETRY_MS = 120_000;

export interface ObjIo {
  oid: bigint;
  cowOid: bigint;
  copies: number;
  offset: number;
  flags: number;
  /** The client's target identity (HELLO); absent: the lock identity is this gateway sheep. */
  who?: TargetIdentity;
}

const INDEX_START = SD_INODE_HEADER_SIZE;
const INDEX_END = SD_INODE_GREF_OFFSET;

export class Gateway {
  private readonly d: GatewayDeps;

  constructor(d: GatewayDeps) {
    this.d = d;
  }

  /** Size of an object: data objects take their VDI's block_size_shift. */
  objectSize(oid: bigint): number {
    if (isVdiOid(oid)) return SD_INODE_SIZE;
    const rec = this.d.vdis.get(oidToVid(oid));
    return objectSize(oid, rec?.blockSizeShift || this.d.defaults().blockSizeShift);
  }

  /** Copies of an object: the request's, else its VDI's, else the cluster default. */
  copiesFor(oid: bigint, requested: number): number {
    if (requested > 0) return requested;
    return this.d.vdis.get(oidToVid(oid))?.nrCopies || this.d.defaults().copies;
  }

  private checkRange(oid: bigint, offset: number, length: number): number {
    const size = this.objectSize(oid);
    if (offset < 0 || length < 0 || offset + length > size) {
      throw new SdError(SD_RES_INVALID_PARMS, `range ${offset}+${length} outside object ${oidHex(oid)} of ${size} bytes`);
    }
    return size;
  }

  /** The lock identity of a request: its target's synthetic node id, else this gateway sheep. */
  private idOf(io: Pick<ObjIo, 'who'>): NodeId {
    return io.who?.nid ?? this.d.self;
  }

  /**
   * The fence (docs/fencing.md §4): a request of a target incarnation that does not hold its lock record on the
   * object's VDI (taken over by a newer incarnation, released, broken by `dog vdi lock unlock`) is refused
   * before any replica is touched. The cluster log is applied first, so a takeover acknowledged through another
   * gateway is seen here.
   */
  private async checkFence(io: ObjIo): Promise<void> {
    const who = io.who;
    if (!who) return;
    const vid = oidToVid(io.oid);
    if (!this.d.locks.hasRecord(vid, who.targetId)) return;
    if (this.d.syncCluster) await this.d.syncCluster();
    if (this.d.locks.fenced(vid, who.targetId, who.incarnation)) {
      throw new SdError(SF_RES_FENCED, `target ${who.targetId} incarnation ${who.incarnation} no longer holds the lock of ${vid.toString(16)}`);
    }
  }

  /**
   * §7.1: a TGT request from a node whose copy of the inode is INVALIDATED must reload first. So must one of our
   * targets (HELLO) still participating in the shared lock of a VDI that has become a snapshot: its cached index
   * may map objects the other hosts have since copied on write into the new working VDI, or call holes what they
   * allocated there (docs/fencing.md §1). Its reload finds the new working VDI and releases this lock; tgtd
   * (no HELLO) keeps sheepdog's behaviour.
   */
  private async checkCoherence(io: ObjIo): Promise<void> {
    if ((io.flags & SD_FLAG_CMD_TGT) === 0) return;
    const vid = oidToVid(io.oid);
    if (this.d.syncCluster && this.d.locks.get(vid).state === LOCK_STATE_SHARED) await this.d.syncCluster();
    const id = this.idOf(io);
    const snapshotted = io.who !== undefined && this.d.vdis.get(vid)?.snapshot === true && this.d.locks.participantState(vid, id) !== null;
    if (snapshotted || this.d.locks.refreshRequired(vid, id)) {
      throw new SdError(SD_RES_INODE_INVALIDATED, `inode of ${vid.toString(16)} invalidated${snapshotted ? ' (now a snapshot)' : ''}`);
    }
  }

  private checkWritable(oid: bigint): void {
    if (isDataOid(oid) && this.d.vdis.get(oidToVid(oid))?.snapshot === true) {
      throw new SdError(SD_RES_READONLY, `object ${oidHex(oid)} belongs to a snapshot`);
    }
  }

  /**
   * Run `attempt` (one pass over the replicas of the current epoch); in a cluster, a retryable failure waits
   * for the next epoch (or a short pause) and runs it again, until GATEWAY_RETRY_MS have passed.
   */
  private async withRetry<T>(oid: bigint, attempt: () => Promise<T>): Promise<T> {
    const wait = this.d.waitEpoch;
    const deadline = Date.now() + GATEWAY_RETRY_MS;
    for (let n = 0; ; n++) {
      const seen = this.d.epoch();
      try {
        return await attempt();
      } catch (err) {
        const r = resultOf(err);
        if (!wait || r === null || !RETRYABLE.has(r) || Date.now() > deadline) throw err;
        this.d.log.debug({ oid: oidHex(oid), epoch: seen, attempt: n, err: (err as Error).message }, 'gateway_retry');
        await wait(seen, Math.min(1000, 50 * 2 ** Math.min(n, 5)));
      }
    }
  }

  /** Read from the first replica that has the object (local first). */
  readReplicas(oid: bigint, offset: number, length: number, copies: number): Promise<Buffer> {
    return this.withRetry(oid, async () => {
      let lastErr: unknown = new SdError(SD_RES_NO_OBJ, `no replica of ${oidHex(oid)}`);
      let retryable: unknown = null;
      for (const r of this.d.placement.replicas(oid, copies)) {
        try {
          return await r.read(oid, offset, length, this.d.epoch());
        } catch (err) {
          lastErr = err;
          const res = resultOf(err);
          if (res === null) throw err;
          if (RETRYABLE.has(res)) retryable = err;
        }
      }
      // A replica that could not answer may hold the object: retry rather than report NO_OBJ.
      throw retryable ?? lastErr;
    });
  }

  /** Apply a mutation to every replica in parallel; all must succeed (the last error wins). */
  private allReplicas(oid: bigint, copies: number, fn: (r: ReplicaIo) => Promise<void>): Promise<void> {
    return this.withRetry(oid, async () => {
      const results = await Promise.allSettled(this.d.placement.replicas(oid, copies).map(fn));
      let failure: PromiseRejectedResult | undefined;
      for (const r of results) {
        if (r.status !== 'rejected') continue;
        const res = resultOf(r.reason);
        // A retryable failure wins over a final one, so the whole write is redone on the next epoch.
        if (!failure || (res !== null && RETRYABLE.has(res))) failure = r;
      }
      if (failure) throw failure.reason;
    });
  }

  /** READ_OBJ (§2.3, §7.1, §7.3). */
  async read(io: ObjIo, length: number): Promise<Buffer> {
    const vid = oidToVid(io.oid);
    const refresh = isVdiOid(io.oid) && io.offset === 0 && length === TGT_INODE_SIZE;
    if (!refresh) await this.checkCoherence(io);
    // A refresh read validates its participant: a fenced incarnation must not validate its successor's state.
    else await this.checkFence(io);
    this.checkRange(io.oid, io.offset, length);
    // Validate BEFORE reading (docs/fencing.md §1): a writer whose index write is still landing then sees the
    // validation when it re-checks after its write (writeIndex) and invalidates again, so a refresh that read
    // the index just before that write can never leave its reader SHARED with a stale copy.
    if (refresh && this.d.locks.participantState(vid, this.idOf(io)) === SHARED_LOCK_STATE_INVALIDATED) {
      await this.d.coherence(vid, true, this.idOf(io));
    }
    return this.readReplicas(io.oid, io.offset, length, this.copiesFor(io.oid, io.copies));
  }

  /** CREATE_AND_WRITE_OBJ (§2.3, §5.4): replaces the object; COW fills it from cow_oid first. */
  async create(io: ObjIo, data: Buffer): Promise<void> {
    await this.checkClientWrite(io, data.length);
    await this.createUnchecked(io, data);
  }

  /**
   * The checks a client's object write passes before any replica is touched: coherence (§7.1), snapshot
   * data is read-only, range, the fence. Serialized ops (serial.ts) run them at the gateway the client talks to.
   */
  async checkClientWrite(io: ObjIo, length: number): Promise<void> {
    await this.checkCoherence(io);
    this.checkWritable(io.oid);
    this.checkRange(io.oid, io.offset, length);
    await this.checkFence(io);
  }

  /** CREATE_AND_WRITE_OBJ on the replicas, after checkClientWrite. */
  async createUnchecked(io: ObjIo, data: Buffer): Promise<void> {
    const size = this.checkRange(io.oid, io.offset, data.length);
    const copies = this.copiesFor(io.oid, io.copies);
    let base: Buffer | undefined;
    if ((io.flags & SD_FLAG_CMD_COW) !== 0 && io.cowOid !== 0n && data.length !== size) {
      const baseSize = Math.min(size, this.objectSize(io.cowOid));
      base = await this.readReplicas(io.cowOid, 0, baseSize, this.copiesFor(io.cowOid, 0));
    }
    await this.allReplicas(io.oid, copies, (r) => r.create(io.oid, size, data, io.offset, base, this.d.epoch()));
  }

  /** WRITE_OBJ (§2.3, §5.3): the object must exist. */
  async write(io: ObjIo, data: Buffer): Promise<void> {
    await this.checkClientWrite(io, data.length);
    await this.writeUnchecked(io, data);
  }

  /** WRITE_OBJ on the replicas (with the index-area side effects), after checkClientWrite. */
  async writeUnchecked(io: ObjIo, data: Buffer): Promise<void> {
    const copies = this.copiesFor(io.oid, io.copies);
    const end = io.offset + data.length;
    if (!isVdiOid(io.oid) || io.offset >= INDEX_END || end <= INDEX_START || data.length === 0) {
      await this.allReplicas(io.oid, copies, (r) => r.write(io.oid, data, io.offset, this.d.epoch()));
      return;
    }
    await this.writeIndex(io.oid, io.offset, data, copies, this.idOf(io));
  }

  /**
   * An inode write that touches data_vdi_id (§5.3): invalidate the other participants first, then write,
   * then reclaim every data object whose entry changed and that nothing references any more. After the
   * write, a writer that is no longer MODIFIED saw another participant validate while the write was landing
   * (a refresh read validates before it reads, see read()): that reader may hold the index without this
   * write, so the others are invalidated again before the write is acknowledged.
   */
  private async writeIndex(oid: bigint, offset: number, data: Buffer, copies: number, writer: NodeId): Promise<void> {
    const vid = oidToVid(oid);
    const st = this.d.locks.participantState(vid, writer);
    if (st !== null && st !== SHARED_LOCK_STATE_MODIFIED) {
      await this.d.coherence(vid, false, writer);
    }
    const first = Math.floor((Math.max(offset, INDEX_START) - INDEX_START) / 4);
    const last = Math.ceil((Math.min(offset + data.length, INDEX_END) - INDEX_START) / 4);
    const span = last - first;
    await this.d.namespaceMutex.run(async () => {
      const before = await this.readReplicas(oid, INDEX_START + 4 * first, 4 * span, copies);
      await this.allReplicas(oid, copies, (r) => r.write(oid, data, offset, this.d.epoch()));
      const after = await this.readReplicas(oid, INDEX_START + 4 * first, 4 * span, copies);
      for (let i = 0; i < span; i++) {
        const old = before.readUInt32LE(4 * i);
        if (old !== 0 && old !== after.readUInt32LE(4 * i)) await this.reclaim(old, first + i);
      }
    });
    if (st === null) return;
    if (this.d.syncCluster) await this.d.syncCluster();
    const now = this.d.locks.participantState(vid, writer);
    if (now !== null && now !== SHARED_LOCK_STATE_MODIFIED) await this.d.coherence(vid, false, writer);
  }

  /**
   * Remove data object (vid, idx) unless some VDI of its family still maps idx to it (§5.3 "DECREF"). Runs
   * under the namespace mutex. Failures are logged: a leaked object wastes space but loses nothing.
   */
  private async reclaim(vid: number, idx: number): Promise<void> {
    const oid = vidToDataOid(vid, idx);
    try {
      for (const v of this.d.vdis.familyFrom(vid)) {
        const entry = await this.readReplicas(vidToVdiOid(v), INDEX_START + 4 * idx, 4, 0).catch(() => null);
        if (entry !== null && entry.readUInt32LE(0) === vid) return;
      }
      await this.allReplicas(oid, this.copiesFor(oid, 0), (r) => r.remove(oid, this.d.epoch()));
      this.d.onReclaimed?.(oid);
      this.d.log.debug({ oid: oidHex(oid) }, 'object_reclaimed');
    } catch (err) {
      if (resultOf(err) !== SD_RES_NO_OBJ) this.d.log.warn({ oid: oidHex(oid), err }, 'object_reclaim_failed');
    }
  }

  /** Create an inode object for NEW_VDI: `body` is a prefix of the object, the rest reads as zeros. */
  async createInode(vid: number, body: Buffer, copies: number): Promise<void> {
    await this.createInodeLike(vidToVdiOid(vid), body, copies);
  }

  /** Create a fixed-size object (inode, attribute) from a prefix, without client-request checks. */
  async createInodeLike(oid: bigint, body: Buffer, copies: number): Promise<void> {
    const size = this.objectSize(oid);
    await this.allReplicas(oid, copies, (r) => r.create(oid, size, body, 0, undefined, this.d.epoch()));
  }

  /** Write object bytes on every replica without protocol side effects (namespace work inside the sheep). */
  async writeRaw(oid: bigint, data: Buffer, offset: number): Promise<void> {
    await this.allReplicas(oid, this.copiesFor(oid, 0), (r) => r.write(oid, data, offset, this.d.epoch()));
  }

  /** REMOVE_OBJ (§2.3). */
  async remove(oid: bigint, copies: number): Promise<void> {
    await this.allReplicas(oid, this.copiesFor(oid, copies), (r) => r.remove(oid, this.d.epoch()));
  }

  /** DISCARD_OBJ (§2.3): unmap index entry i of the data oid's VDI; the object goes when unreferenced. */
  async discard(oid: bigint, who?: TargetIdentity): Promise<void> {
    if (!isDataOid(oid)) throw new SdError(SD_RES_INVALID_PARMS, `discard of non-data object ${oidHex(oid)}`);
    const vid = oidToVid(oid);
    const idx = oidToIndex(oid);
    const inode = vidToVdiOid(vid);
    const entry = await this.readReplicas(inode, INDEX_START + 4 * idx, 4, 0);
    if (entry.readUInt32LE(0) === 0) return;
    await this.write({ oid: inode, cowOid: 0n, copies: 0, offset: INDEX_START + 4 * idx, flags: 0, ...(who ? { who } : {}) }, Buffer.alloc(4));
  }
}
