// Recovery (fact sheet §10.5, seeds 003 and 004): after every live epoch change each node fetches the objects
// it owns under the new ring and does not hold a current copy of.
// 1. Plan: the object lists of every node of the epoch (GET_OBJ_LIST, the object-list cache), minus objects
//    of deleted VDIs (tombstones); keep the oids this node is a replica of. A local copy is trusted when this
//    node was a replica of the oid in the last epoch it was a member of, and no peer reports a change to it
//    since (dirty tracking); copies changed in exactly that epoch are verified by hash, not copied.
// 2. Fetch: READ_PEER (RECOVERY flag) from the replicas of the previous epochs, newest first, then from any
//    node listing the oid; store the whole object. A client request for a pending oid recovers it first
//    (waitFor); a CREATE claims it (the new data wins). Concurrency and pacing follow SET_RECOVERY.
// 3. Done: the node broadcasts `recovery_done`; once every node of the epoch has, copies this node no longer
//    owns are removed (never before, so a failed recovery can still find them).
// Per-oid work is serialized across runs, so a late fetch of an older run can never land after newer data.
import * as C from '../proto/sheepdog/constants.js';
import { emptyReqArgs } from '../proto/sheepdog/header.js';
import { nodeAddr, nodeIdEquals, type NodeId, type SdNode } from '../proto/sheepdog/node.js';
import { oidHex } from '../proto/sheepdog/oid.js';
import type { Ring } from '../proto/sheepdog/ring.js';
import type { Logger } from '../obs/log.js';
import { decodeDirtyReport } from './cluster/dirty.js';
import { resultOf } from './errors.js';
import { PeerPool } from './peer-pool.js';
import type { ObjectStore } from './store/store.js';

/** Internal opcode of the dirty report (an opcode sheepdog defines without a handler, §2.4). */
export const SF_OP_GET_DIRTY = 0xc3;

export interface RecoveryHost {
  self: NodeId;
  /** The store without dirty tracking (recovery copies data, it does not change it). */
  store: ObjectStore;
  peers: PeerPool;
  epoch(): number;
  ring(): Ring;
  /** The ring of an earlier epoch, if known. */
  ringOf(epoch: number): Ring | null;
  copiesOf(oid: bigint): number;
  objectSize(oid: bigint): number;
  tombstoned(oid: bigint): boolean;
  /** Broadcast that this node finished recovering `epoch`. */
  announceDone(epoch: number): Promise<void>;
  log: Logger;
}

export interface RecoveryStatus {
  epoch: number;
  inRecovery: boolean;
  /** 0 preparing the list, 1 recovering, 2 notifying / done */
  state: number;
  finished: number;
  total: number;
  /** Objects copied from a peer by the last run (for tests and `dog node recovery`). */
  transferred: number;
}

export interface Throttle {
  maxExecCount: number;
  intervalMs: number;
}

const DEFAULT_CONCURRENCY = 4;
const GET_OBJ_LIST_START = 4 * 1024 * 1024;
const GET_OBJ_LIST_MAX = 512 * 1024 * 1024;
/** How many earlier epochs' replicas are tried as sources. */
const SOURCE_EPOCHS = 8;

interface Run {
  epoch: number;
  pending: Set<bigint>;
  /** oids whose local copy changed in exactly the last member epoch: compare hashes first. */
  verify: Set<bigint>;
  /** oids removed cluster-wide while this node was away. */
  removed: Set<bigint>;
  holders: Map<bigint, NodeId[]>;
  planned: Promise<void>;
  status: RecoveryStatus;
}

export class Recovery {
  private run: Run | null = null;
  private readonly inflight = new Map<bigint, Promise<void>>();
  /** Local copies known not to be current (refreshed or removed by a later run). */
  private readonly suspect = new Set<bigint>();
  throttle: Throttle = { maxExecCount: 0, intervalMs: 0 };
  /** Progress observer (the event feed): called when a run starts, is planned, finishes an object, ends. */
  onProgress: ((s: RecoveryStatus) => void) | null = null;
  private lastStatus: RecoveryStatus = { epoch: 0, inRecovery: false, state: 2, finished: 0, total: 0, transferred: 0 };

  constructor(private readonly h: RecoveryHost) {}

  status(): RecoveryStatus {
    return this.run ? { ...this.run.status } : { ...this.lastStatus };
  }

  /** True while this node may not vouch for its local copy of `oid` (recovery reads answer NO_OBJ). */
  untrusted(oid: bigint): boolean {
    return this.suspect.has(oid) || (this.run?.pending.has(oid) ?? false);
  }

  /** Start recovering `epoch`; `lastMember` is the last earlier epoch this node was a member of (0: none). */
  start(epoch: number, lastMember: number): void {
    let ready!: () => void;
    const planned = new Promise<void>((r) => (ready = r));
    const run: Run = {
      epoch,
      pending: new Set(),
      verify: new Set(),
      removed: new Set(),
      holders: new Map(),
      planned,
      status: { epoch, inRecovery: true, state: 0, finished: 0, total: 0, transferred: 0 },
    };
    this.run = run;
    this.progress(run);
    void this.execute(run, lastMember, ready).catch((err: unknown) => this.h.log.error({ err, epoch }, 'recovery_failed'));
  }

  /** Forget everything (format). */
  reset(): void {
    this.run = null;
    this.suspect.clear();
    this.lastStatus = { epoch: 0, inRecovery: false, state: 2, finished: 0, total: 0, transferred: 0 };
  }

  /** Before a client-path read or write of a local object: recover it first if it is pending. */
  async waitFor(oid: bigint): Promise<void> {
    const run = this.run;
    if (!run) return;
    await run.planned;
    if (run.pending.has(oid)) await this.recoverOne(run, oid);
    else {
      const f = this.inflight.get(oid);
      if (f) await f;
    }
  }

  /** Before a CREATE or REMOVE of a local object: the client's data replaces whatever recovery would fetch. */
  async claim(oid: bigint): Promise<void> {
    const run = this.run;
    if (run) {
      await run.planned;
      if (run.pending.delete(oid)) {
        run.status.finished++;
        this.progress(run);
      }
    }
    const f = this.inflight.get(oid);
    if (f) await f;
    this.suspect.delete(oid);
  }

  private progress(run: Run): void {
    if (this.onProgress && this.run === run) this.onProgress({ ...run.status });
  }

  private current(run: Run): boolean {
    return this.run === run && this.h.epoch() === run.epoch;
  }

  private async execute(run: Run, lastMember: number, ready: () => void): Promise<void> {
    const h = this.h;
    const ring = h.ring();
    const self = h.self;
    const all = new Set<bigint>(h.store.list());
    try {
      for (const n of ring.nodes) {
        if (nodeIdEquals(n.nid, self)) continue;
        const oids = await this.objList(n.nid, run.epoch).catch(() => null);
        if (oids === null) continue;
        for (const oid of oids) {
          all.add(oid);
          const list = run.holders.get(oid);
          if (list) list.push(n.nid);
          else run.holders.set(oid, [n.nid]);
        }
      }
      const continuous = lastMember === run.epoch - 1;
      const dirty = new Map<bigint, { epoch: number; removed: boolean }>();
      let complete = true;
      if (!continuous && lastMember > 0) {
        for (const n of ring.nodes) {
          if (nodeIdEquals(n.nid, self)) continue;
          try {
            const r = await h.peers.call(
              n.nid,
              PeerPool.request(SF_OP_GET_DIRTY, { ...emptyReqArgs('obj'), tgtEpoch: lastMember - 1 }, run.epoch, 64 * 1024 * 1024),
            );
            const rep = decodeDirtyReport(r.data ?? Buffer.alloc(0));
            if (!rep.complete) complete = false;
            for (const e of rep.entries) {
              const d = dirty.get(e.oid);
              if (!d || e.epoch > d.epoch) dirty.set(e.oid, { epoch: e.epoch, removed: e.removed });
            }
          } catch {
            complete = false;
          }
        }
      }
      const prev = lastMember > 0 ? h.ringOf(lastMember) : null;
      const mine = (r: Ring, oid: bigint): boolean => r.oidToNodes(oid, h.copiesOf(oid)).some((n) => nodeIdEquals(n.nid, self));
      const sorted = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const oid of sorted) {
        if (h.tombstoned(oid)) continue;
        if (!mine(ring, oid)) continue;
        const local = h.store.exists(oid);
        const d = dirty.get(oid);
        let trusted = local && prev !== null && mine(prev, oid) && !this.suspect.has(oid) && (continuous || complete);
        if (trusted && d && d.epoch > lastMember) trusted = false;
        h.log.debug({ oid: oidHex(oid), local, trusted, dirtyEpoch: d?.epoch ?? null, suspect: this.suspect.has(oid) }, 'recovery_plan_object');
        if (trusted && d && d.epoch === lastMember && !d.removed) run.verify.add(oid);
        if (d?.removed && d.epoch > lastMember) run.removed.add(oid);
        if (!trusted || run.verify.has(oid)) {
          run.pending.add(oid);
          if (local && !run.verify.has(oid)) this.suspect.add(oid);
        }
      }
    } finally {
      run.status.total = run.pending.size;
      run.status.state = 1;
      ready();
      this.progress(run);
    }
    h.log.info({ epoch: run.epoch, total: run.pending.size, lastMember }, 'recovery_started');
    const queue = [...run.pending];
    const workers = Math.max(1, this.throttle.maxExecCount || DEFAULT_CONCURRENCY);
    await Promise.all(
      Array.from({ length: workers }, async () => {
        while (queue.length > 0 && this.current(run)) {
          const oid = queue.shift() as bigint;
          if (!run.pending.has(oid)) continue;
          await this.recoverOne(run, oid);
          if (this.throttle.intervalMs > 0) await new Promise((r) => setTimeout(r, this.throttle.intervalMs));
        }
      }),
    );
    if (!this.current(run)) return;
    run.status.state = 2;
    run.status.inRecovery = false;
    this.lastStatus = { ...run.status };
    this.progress(run);
    h.log.info({ epoch: run.epoch, transferred: run.status.transferred, total: run.status.total }, 'recovery_finished');
    await h.announceDone(run.epoch).catch((err: unknown) => h.log.warn({ err }, 'recovery_announce_failed'));
    if (this.run === run) this.run = null;
  }

  /** GET_OBJ_LIST from a peer, growing the buffer on BUFFER_SMALL. */
  private async objList(nid: NodeId, epoch: number): Promise<bigint[]> {
    for (let size = GET_OBJ_LIST_START; size <= GET_OBJ_LIST_MAX; size *= 2) {
      const r = await this.h.peers.send(nid, PeerPool.request(C.SD_OP_GET_OBJ_LIST, emptyReqArgs('obj'), epoch, size));
      if (r.result === C.SD_RES_BUFFER_SMALL) continue;
      if (r.result !== C.SD_RES_SUCCESS) throw new Error(`GET_OBJ_LIST: ${C.resultName(r.result)}`);
      const d = r.data ?? Buffer.alloc(0);
      const out: bigint[] = [];
      for (let off = 0; off + 8 <= d.length; off += 8) out.push(d.readBigUInt64LE(off));
      return out;
    }
    throw new Error('object list too large');
  }

  /** Recover one oid (serialized per oid across runs). */
  private recoverOne(run: Run, oid: bigint): Promise<void> {
    const prev = this.inflight.get(oid) ?? Promise.resolve();
    const p = prev.then(async () => {
      if (!run.pending.has(oid)) return;
      try {
        await this.fetch(run, oid);
      } catch (err) {
        this.h.log.warn({ oid: oidHex(oid), err }, 'recovery_object_failed');
      } finally {
        if (run.pending.delete(oid)) {
          run.status.finished++;
          this.progress(run);
        }
      }
    });
    const tracked = p.finally(() => {
      if (this.inflight.get(oid) === tracked) this.inflight.delete(oid);
    });
    this.inflight.set(oid, tracked);
    return tracked;
  }

  /** Candidate sources: replicas of earlier epochs (newest first), then nodes listing the oid. */
  private sources(run: Run, oid: bigint): NodeId[] {
    const h = this.h;
    const out: NodeId[] = [];
    const add = (nid: NodeId): void => {
      if (nodeIdEquals(nid, h.self) || out.some((x) => nodeIdEquals(x, nid))) return;
      out.push(nid);
    };
    const live = h.ring().nodes;
    const isLive = (nid: NodeId): boolean => live.some((n: SdNode) => nodeIdEquals(n.nid, nid));
    for (let e = run.epoch - 1; e >= 1 && e >= run.epoch - SOURCE_EPOCHS; e--) {
      const r = h.ringOf(e);
      if (!r) continue;
      for (const n of r.oidToNodes(oid, h.copiesOf(oid))) if (isLive(n.nid)) add(n.nid);
    }
    for (const nid of run.holders.get(oid) ?? []) add(nid);
    for (const n of h.ring().oidToNodes(oid, h.copiesOf(oid))) add(n.nid);
    return out;
  }

  private async fetch(run: Run, oid: bigint): Promise<void> {
    const h = this.h;
    const size = h.objectSize(oid);
    const local = h.store.exists(oid);
    // A copy changed in the last epoch this node saw: keep it if a current replica has the same bytes.
    const mine = run.verify.has(oid) && local ? await h.store.hash(oid, size).catch(() => null) : null;
    for (const src of this.sources(run, oid)) {
      if (!this.current(run)) return;
      try {
        if (mine !== null) {
          const digest = await this.peerHash(src, oid, run.epoch);
          h.log.debug({ oid: oidHex(oid), from: nodeAddr(src), same: digest?.equals(mine) ?? null }, 'recovery_verify');
          if (digest === null) continue;
          if (digest.equals(mine)) {
            this.suspect.delete(oid);
            return;
          }
        }
        const r = await h.peers.call(
          src,
          PeerPool.request(C.SD_OP_READ_PEER, { ...emptyReqArgs('obj'), oid, tgtEpoch: run.epoch - 1 }, run.epoch, size, C.SD_FLAG_CMD_RECOVERY),
        );
        const data = r.data ?? Buffer.alloc(0);
        await h.store.create(oid, size, data, 0);
        this.suspect.delete(oid);
        run.status.transferred++;
        h.log.debug({ oid: oidHex(oid), from: nodeAddr(src) }, 'object_recovered');
        return;
      } catch (err) {
        const res = resultOf(err);
        if (res !== C.SD_RES_NO_OBJ && res !== C.SD_RES_NETWORK_ERROR) h.log.warn({ oid: oidHex(oid), from: nodeAddr(src), err }, 'recovery_source_failed');
      }
    }
    if (run.removed.has(oid) || h.tombstoned(oid)) {
      if (h.store.exists(oid)) await h.store.remove(oid).catch(() => undefined);
      this.suspect.delete(oid);
      h.log.info({ oid: oidHex(oid) }, 'recovery_removed_deleted_object');
      return;
    }
    if (local) {
      // No other copy anywhere: the local one is the best there is.
      this.suspect.delete(oid);
      h.log.warn({ oid: oidHex(oid) }, 'recovery_kept_only_copy');
      return;
    }
    h.log.error({ oid: oidHex(oid), epoch: run.epoch }, 'recovery_object_unavailable');
  }

  /** GET_HASH of a peer's copy (null if it has none). */
  private async peerHash(src: NodeId, oid: bigint, epoch: number): Promise<Buffer | null> {
    const r = await this.h.peers.send(src, PeerPool.request(C.SD_OP_GET_HASH, { ...emptyReqArgs('obj'), oid, tgtEpoch: epoch }, epoch, 0));
    if (r.result !== C.SD_RES_SUCCESS || r.rsp.args.kind !== 'hash') return null;
    return Buffer.from(r.rsp.args.digest);
  }
}
