// Recovery (fact sheet §10.5): after every live epoch change each node makes every object it owns under the
// new ring current — holding every acknowledged write — by versions (currency.ts), never by trust.
// 1. Plan: the version list of every live member (SF_OP_GET_VERSIONS: each copy's ObjVersion and the member's
//    purge epoch), minus objects of deleted VDIs (tombstones); for each oid this node is a replica of, decide:
//    keep (current by continuity), fetch from the authoritative copy (or verify by hash when the versions are
//    equal), or unavailable (no live member can prove which content is current).
// 2. Fetch: READ_PEER (RECOVERY flag) from the chosen member; the copy is stored with the source's version,
//    made current in this epoch. A client request for a pending oid recovers it first (waitFor); a CREATE or
//    REMOVE claims it (the new data wins). Concurrency and pacing follow SET_RECOVERY.
// 3. Unavailable objects stay pending — client reads and writes of them wait (the gateway retries) — and are
//    planned again with fresh version lists until a member that can prove their content answers.
// 4. Done: only when every owned object is current the node broadcasts `recovery_done`; once every node of the
//    epoch has, copies this node no longer owns are removed (never before).
// Per-oid work is serialized across runs, so a late fetch of an older run can never land after newer data.
import * as C from '../proto/sheepdog/constants.js';
import { emptyReqArgs } from '../proto/sheepdog/header.js';
import { nodeAddr, nodeIdEquals, type NodeId } from '../proto/sheepdog/node.js';
import { oidHex } from '../proto/sheepdog/oid.js';
import type { Ring } from '../proto/sheepdog/ring.js';
import type { Logger } from '../obs/log.js';
import { decide, decodeVersionList, isReplica, type CopyInfo, type Decision, type History, type VersionList } from './currency.js';
import { resultOf } from './errors.js';
import { PeerPool } from './peer-pool.js';
import { compareVersion, type ObjectStore } from './store/store.js';

/** Internal opcode: this node's object versions and purge epoch (one sheepdog defines without a handler, §2.4). */
export const SF_OP_GET_VERSIONS = 0xc3;

export interface RecoveryHost {
  self: NodeId;
  /** The store without version bumping (recovery copies data, it does not change it). */
  store: ObjectStore;
  peers: PeerPool;
  epoch(): number;
  ring(): Ring;
  /** The ring of an earlier epoch, if known. */
  ringOf(epoch: number): Ring | null;
  copiesOf(oid: bigint): number;
  objectSize(oid: bigint): number;
  tombstoned(oid: bigint): boolean;
  /** Epoch of this node's last deletion of copies (currency.ts CopyInfo.purgeEpoch). */
  purgeEpoch(): number;
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

/** SET_RECOVERY's values as a client set them (GET_RECOVERY reports them unchanged). */
export interface Throttle {
  maxExecCount: number;
  intervalMs: bigint;
}

const DEFAULT_CONCURRENCY = 4;
/** Most objects recovered at once, and longest pause between two, whatever the throttle asks (docs/cluster.md). */
const MAX_CONCURRENCY = 64;
const MAX_INTERVAL_MS = 3_600_000n;
const VERSION_LIST_START = 4 * 1024 * 1024;
const VERSION_LIST_MAX = 1024 * 1024 * 1024;
/** Pause before unavailable objects are planned again with fresh version lists. */
const REPLAN_MS = 1_000;

interface Run {
  epoch: number;
  /** Objects still to make current, with what to do. */
  pending: Map<bigint, Decision>;
  /** Objects no live member can prove current yet: untrusted until a later plan resolves them. */
  unavailable: Set<bigint>;
  planned: Promise<void>;
  status: RecoveryStatus;
}

export class Recovery {
  private run: Run | null = null;
  private readonly inflight = new Map<bigint, Promise<void>>();
  throttle: Throttle = { maxExecCount: 0, intervalMs: 0n };
  /** Progress observer (the event feed): called when a run starts, is planned, finishes an object, ends. */
  onProgress: ((s: RecoveryStatus) => void) | null = null;
  private lastStatus: RecoveryStatus = { epoch: 0, inRecovery: false, state: 2, finished: 0, total: 0, transferred: 0 };

  constructor(private readonly h: RecoveryHost) {}

  status(): RecoveryStatus {
    return this.run ? { ...this.run.status } : { ...this.lastStatus };
  }

  /** Objects this node's run has not made current yet (pending or unavailable). */
  outstanding(): number {
    return this.run ? this.run.pending.size + this.run.unavailable.size : 0;
  }

  /** True while the local copy of `oid` is not known to be current (client I/O waits; RECOVERY reads refuse). */
  untrusted(oid: bigint): boolean {
    const run = this.run;
    return run !== null && (run.pending.has(oid) || run.unavailable.has(oid));
  }

  /** Start recovering `epoch` (every live epoch change that keeps this node a member). */
  start(epoch: number): void {
    let ready!: () => void;
    const planned = new Promise<void>((r) => (ready = r));
    const run: Run = {
      epoch,
      pending: new Map(),
      unavailable: new Set(),
      planned,
      status: { epoch, inRecovery: true, state: 0, finished: 0, total: 0, transferred: 0 },
    };
    this.run = run;
    this.progress(run);
    void this.execute(run, ready).catch((err: unknown) => this.h.log.error({ err, epoch }, 'recovery_failed'));
  }

  /** Forget everything (format). */
  reset(): void {
    this.run = null;
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
      if (run.pending.delete(oid) || run.unavailable.delete(oid)) {
        run.status.finished++;
        this.progress(run);
      }
    }
    const f = this.inflight.get(oid);
    if (f) await f;
  }

  private progress(run: Run): void {
    if (this.onProgress && this.run === run) this.onProgress({ ...run.status });
  }

  private current(run: Run): boolean {
    return this.run === run && this.h.epoch() === run.epoch;
  }

  private history(): History {
    return { ringOf: (e) => (e === this.h.epoch() ? this.h.ring() : this.h.ringOf(e)), copiesOf: (oid) => this.h.copiesOf(oid) };
  }

  /** The version lists of every other member of the epoch that answers (a silent one only adds no facts). */
  private async collect(run: Run): Promise<{ nid: NodeId; list: VersionList }[]> {
    const out: { nid: NodeId; list: VersionList }[] = [];
    for (const n of this.h.ring().nodes) {
      if (nodeIdEquals(n.nid, this.h.self)) continue;
      const list = await this.versionList(n.nid, run.epoch).catch((err: unknown) => {
        this.h.log.warn({ from: nodeAddr(n.nid), err }, 'recovery_versions_unavailable');
        return null;
      });
      if (list) out.push({ nid: n.nid, list });
    }
    return out;
  }

  /** Decide for `oids` (all this node holds or any member lists, when absent) from fresh version lists. */
  private async plan(run: Run, only: Set<bigint> | null): Promise<void> {
    const h = this.h;
    const lists = await this.collect(run);
    const hist = this.history();
    const ring = h.ring();
    const oids = new Set<bigint>(only ?? h.store.list());
    if (!only) for (const l of lists) for (const oid of l.list.entries.keys()) oids.add(oid);
    const sorted = [...oids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const counts = { keep: 0, fetch: 0, verify: 0, unavailable: 0 };
    for (const oid of sorted) {
      if (h.tombstoned(oid)) continue;
      if (!isReplica(ring, oid, h.self, h.copiesOf(oid))) continue;
      const mine: CopyInfo = { node: h.self, ver: h.store.version(oid), purgeEpoch: h.purgeEpoch() };
      const others: CopyInfo[] = lists.map((l) => ({ node: l.nid, ver: l.list.entries.get(oid) ?? null, purgeEpoch: l.list.purgeEpoch }));
      const d = decide(oid, run.epoch, mine, others, hist);
      h.log.debug({ oid: oidHex(oid), decision: d.kind, ver: mine.ver }, 'recovery_plan_object');
      run.unavailable.delete(oid);
      if (d.kind === 'none' || (d.kind === 'keep' && !d.mark)) {
        if (only) this.finish(run, oid);
        counts.keep++;
        continue;
      }
      if (d.kind === 'unavailable') {
        run.pending.delete(oid);
        run.unavailable.add(oid);
        counts.unavailable++;
        h.log.warn({ oid: oidHex(oid), epoch: run.epoch, currentThrough: d.best, gapFrom: d.gapFrom, gapTo: d.gapTo }, 'recovery_object_unproven');
        continue;
      }
      run.pending.set(oid, d);
      if (d.kind === 'keep') counts.keep++;
      else if (d.verify) counts.verify++;
      else counts.fetch++;
    }
    h.log.info({ epoch: run.epoch, ...counts, replan: only !== null }, 'recovery_planned');
  }

  private finish(run: Run, oid: bigint): void {
    const was = run.pending.delete(oid) || run.unavailable.delete(oid);
    if (was) {
      run.status.finished++;
      this.progress(run);
    }
  }

  private async execute(run: Run, ready: () => void): Promise<void> {
    const h = this.h;
    try {
      await this.plan(run, null);
    } finally {
      run.status.total = run.pending.size + run.unavailable.size;
      run.status.state = 1;
      ready();
      this.progress(run);
    }
    h.log.info({ epoch: run.epoch, total: run.status.total }, 'recovery_started');
    const workers = Math.min(MAX_CONCURRENCY, Math.max(1, this.throttle.maxExecCount || DEFAULT_CONCURRENCY));
    for (;;) {
      const queue = [...run.pending.keys()];
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (queue.length > 0 && this.current(run)) {
            const oid = queue.shift() as bigint;
            if (!run.pending.has(oid)) continue;
            await this.recoverOne(run, oid);
            const pause = this.throttle.intervalMs < MAX_INTERVAL_MS ? this.throttle.intervalMs : MAX_INTERVAL_MS;
            if (pause > 0n) await new Promise((r) => setTimeout(r, Number(pause)));
          }
        }),
      );
      if (!this.current(run)) return;
      if (run.pending.size > 0) continue;
      if (run.unavailable.size === 0) break;
      // Objects nobody could prove current: ask again (a member may have finished its own recovery, or a
      // fetch source may answer again); the epoch change a returning holder brings starts a new run anyway.
      await new Promise((r) => setTimeout(r, REPLAN_MS));
      if (!this.current(run)) return;
      await this.plan(run, new Set(run.unavailable));
    }
    run.status.state = 2;
    run.status.inRecovery = false;
    this.lastStatus = { ...run.status };
    this.progress(run);
    h.log.info({ epoch: run.epoch, transferred: run.status.transferred, total: run.status.total }, 'recovery_finished');
    await h.announceDone(run.epoch).catch((err: unknown) => h.log.warn({ err }, 'recovery_announce_failed'));
    if (this.run === run) this.run = null;
  }

  /** SF_OP_GET_VERSIONS from a peer, growing the buffer on BUFFER_SMALL. */
  private async versionList(nid: NodeId, epoch: number): Promise<VersionList> {
    for (let size = VERSION_LIST_START; size <= VERSION_LIST_MAX; size *= 2) {
      const r = await this.h.peers.send(nid, PeerPool.request(SF_OP_GET_VERSIONS, emptyReqArgs('obj'), epoch, size));
      if (r.result === C.SD_RES_BUFFER_SMALL) continue;
      if (r.result !== C.SD_RES_SUCCESS) throw new Error(`GET_VERSIONS: ${C.resultName(r.result)}`);
      const list = decodeVersionList(r.data ?? Buffer.alloc(0));
      if (!list) throw new Error('GET_VERSIONS: malformed reply');
      return list;
    }
    throw new Error('version list too large');
  }

  /** Recover one oid (serialized per oid across runs). */
  private recoverOne(run: Run, oid: bigint): Promise<void> {
    const prev = this.inflight.get(oid) ?? Promise.resolve();
    const p = prev.then(async () => {
      const d = run.pending.get(oid);
      if (!d) return;
      let ok = false;
      try {
        ok = await this.apply(run, oid, d);
      } catch (err) {
        this.h.log.warn({ oid: oidHex(oid), err }, 'recovery_object_failed');
      }
      if (!run.pending.has(oid)) return; // claimed meanwhile
      if (ok) this.finish(run, oid);
      else {
        run.pending.delete(oid);
        run.unavailable.add(oid);
      }
    });
    const tracked = p.finally(() => {
      if (this.inflight.get(oid) === tracked) this.inflight.delete(oid);
    });
    this.inflight.set(oid, tracked);
    return tracked;
  }

  /** Carry out a decision; false when the object is still not current (its source failed). */
  private async apply(run: Run, oid: bigint, d: Decision): Promise<boolean> {
    const h = this.h;
    if (!this.current(run)) return false;
    const local = h.store.version(oid);
    if (d.kind === 'keep') {
      if (local) await h.store.setVersion(oid, { ...local, current: run.epoch });
      return true;
    }
    if (d.kind !== 'fetch') return false;
    const size = h.objectSize(oid);
    try {
      if (d.verify && local) {
        const [mine, theirs] = await Promise.all([h.store.hash(oid, size).catch(() => null), this.peerHash(d.from, oid, run.epoch)]);
        h.log.debug({ oid: oidHex(oid), from: nodeAddr(d.from), same: mine && theirs ? mine.equals(theirs) : null }, 'recovery_verify');
        if (mine && theirs && mine.equals(theirs)) {
          await h.store.setVersion(oid, { ...local, current: run.epoch });
          return true;
        }
      }
      const r = await h.peers.call(
        d.from,
        PeerPool.request(C.SD_OP_READ_PEER, { ...emptyReqArgs('obj'), oid, tgtEpoch: run.epoch - 1 }, run.epoch, size, C.SD_FLAG_CMD_RECOVERY),
      );
      if (!this.current(run) || !run.pending.has(oid)) return false;
      const now = h.store.version(oid);
      // A local copy newer than the source holds writes that were never acknowledged (an acknowledged write
      // reached every replica of its epoch, the source included): the source's content is what was agreed.
      if (now && compareVersion(now, d.ver) > 0) h.log.warn({ oid: oidHex(oid), local: now, source: d.ver }, 'recovery_drops_unacknowledged');
      await h.store.create(oid, size, r.data ?? Buffer.alloc(0), 0, { epoch: d.ver.epoch, gen: d.ver.gen, current: run.epoch });
      run.status.transferred++;
      h.log.debug({ oid: oidHex(oid), from: nodeAddr(d.from), ver: d.ver }, 'object_recovered');
      return true;
    } catch (err) {
      const res = resultOf(err);
      h.log.warn({ oid: oidHex(oid), from: nodeAddr(d.from), err, result: res }, 'recovery_source_failed');
      return false;
    }
  }

  /** GET_HASH of a peer's copy (null if it has none). */
  private async peerHash(src: NodeId, oid: bigint, epoch: number): Promise<Buffer | null> {
    const r = await this.h.peers.send(src, PeerPool.request(C.SD_OP_GET_HASH, { ...emptyReqArgs('obj'), oid, tgtEpoch: epoch }, epoch, 0));
    if (r.result !== C.SD_RES_SUCCESS || r.rsp.args.kind !== 'hash') return null;
    return Buffer.from(r.rsp.args.digest);
  }
}
